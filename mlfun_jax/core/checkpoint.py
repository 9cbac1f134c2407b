"""Orbax checkpoints of a train state plus a JSON `meta` record (config, class names, ...).

Saves are atomic (orbax writes a temporary folder and renames it when complete), so a killed run
never leaves a half-written step behind that looks finished. With `asynchronous=True` (the training
loop's) a save returns once orbax holds the arrays and writes them in a background thread while
training goes on; the next save, `wait` and `close` wait for it, and a write that failed there is
reported as a synchronous one would be. Each step's meta record holds a CRC-32
of every saved array (`checksums`), and every restore checks them: a step that cannot be read back
whole, or whose arrays do not match their sums (flipped bytes), is reported in one line naming its
folder and the array. Steps saved before checksums existed are read without that check.

The state is saved as host (numpy) arrays, so a checkpoint does not depend on the device layout it
was trained on. With many processes every process calls save and restore (orbax synchronises
them; its primary process writes) and the folder must be one they all see: a shared file system or
a bucket (gs://..., with gcsfs installed).
"""

from collections.abc import Callable, Mapping
import contextlib
import dataclasses
import json
import logging as logging_lib
import os
import shutil
import time
from typing import Any

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from mlfun_jax.core import checksums
from mlfun_jax.core import config as config_lib
from mlfun_jax.core.errors import environment_cause
from mlfun_jax.core.errors import UserError


CHECKSUMS = "checksums"  # The meta record's field of array checksums.


class DamagedCheckpointError(UserError):
  """A checkpoint step that cannot be read back whole, or whose arrays fail their checksums."""


def _first_line(error: Exception) -> str:
  text = str(error).strip() or type(error).__name__
  return text.splitlines()[0][:300]


class _DropOrbaxThreadErrors(logging_lib.Filter):
  """Drops the traceback orbax logs when a save's writer thread fails: the error reaches the
  caller, who reports it (one line for a full disk or a read-only folder)."""

  def filter(self, record: logging_lib.LogRecord) -> bool:
    return not (record.levelno >= logging_lib.ERROR and "orbax" in record.pathname
                and "future" in os.path.basename(record.pathname))


@contextlib.contextmanager
def _thread_errors_unlogged():
  drop = _DropOrbaxThreadErrors()
  logging_lib.getLogger("absl").addFilter(drop)
  try:
    yield
  finally:
    logging_lib.getLogger("absl").removeFilter(drop)


class Checkpointer:
  """Keeps the last `max_to_keep` checkpoints of a run in `directory` (one sub-folder per step).

  `asynchronous`: `save` returns while orbax writes in the background (see the module docstring).
  """

  def __init__(self, directory: str, *, max_to_keep: int = 3, create: bool = True,
               asynchronous: bool = False):
    self.directory = directory if "://" in directory else os.path.abspath(directory)
    self._options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, create=create, enable_async_checkpointing=asynchronous)
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)
    self._writing: int | None = None  # The step an asynchronous save is still writing.
    self._unlogged = contextlib.ExitStack()
    if asynchronous:  # orbax's writer thread would log a failed write's traceback.
      self._unlogged.enter_context(_thread_errors_unlogged())

  def _reload(self):
    self._manager.close()
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def steps(self) -> list[int]:
    """Steps with a finished checkpoint folder, oldest first (not yet verified)."""
    return sorted(self._manager.all_steps())

  def save(self, step: int, state: Any, meta: dict[str, Any]) -> None:
    """Writes `state` (a pytree of numpy/JAX arrays) and `meta` (JSON-able, plus the arrays'
    checksums) as step `step`."""
    self.wait()
    meta = {**meta, CHECKSUMS: {"algorithm": checksums.ALGORITHM,
                                "arrays": checksums.of_tree(state)}}
    with self._failed_write(step), _thread_errors_unlogged():
      self._manager.save(
          step,
          args=ocp.args.Composite(
              state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
          force=True)
      if not self._options.enable_async_checkpointing:
        self._manager.wait_until_finished()
        return
    self._writing = step

  def wait(self) -> None:
    """Waits until an asynchronous save has written its step (UserError if it failed)."""
    step, self._writing = self._writing, None
    if step is not None:
      with self._failed_write(step):
        self._manager.wait_until_finished()

  @contextlib.contextmanager
  def _failed_write(self, step: int):
    """Turns a failed write of `step` caused by the environment (a full disk, a read-only
    folder) into one UserError, after removing what the write left behind."""
    try:
      yield
    except Exception as e:  # pylint: disable=broad-except
      cause = environment_cause(e)
      if cause is None:
        raise
      self._remove_unfinished(step)
      raise UserError(f"cannot write checkpoint {os.path.join(self.directory, str(step))}: "
                      f"{cause}; the same command resumes from the last good checkpoint once "
                      "the cause is gone") from e

  def _remove_unfinished(self, step: int) -> None:
    """Removes what a failed save of `step` left (orbax's temporary folder), in process 0."""
    with contextlib.suppress(Exception):  # Joins orbax's writer threads: nothing writes after.
      self._manager.close()
    if jax.process_index() == 0:
      for _ in range(50):
        leftovers = list(epath.Path(self.directory).glob(f"{step}.orbax-checkpoint-tmp*"))
        if not leftovers:
          break
        for path in leftovers:
          shutil.rmtree(path, ignore_errors=True)
        time.sleep(0.02)
    self._manager = ocp.CheckpointManager(self.directory, options=self._options)

  def _verified(self, step: int, state: Any, meta: dict[str, Any]) -> Any:
    """`state` as read from `step`, after checking it against the checksums in `meta`."""
    record = meta.get(CHECKSUMS)
    if record is None:  # Saved before checksums existed.
      return state
    path = os.path.join(self.directory, str(step))
    if not isinstance(record, dict) or record.get("algorithm") != checksums.ALGORITHM:
      raise DamagedCheckpointError(f"checkpoint {path} is damaged: its checksum record is unreadable")
    bad = checksums.mismatches(state, record.get("arrays", {}))
    if bad:
      raise DamagedCheckpointError(
          f"checkpoint {path} is damaged: array {bad[0]} does not match its checksum"
          + (f" (nor do {len(bad) - 1} more)" if len(bad) > 1 else ""))
    return state

  def _read(self, step: int, **items) -> Any:
    """orbax's restore of the named items of `step`; any failure is a DamagedCheckpointError."""
    try:
      return self._manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as e:  # pylint: disable=broad-except
      raise DamagedCheckpointError(f"checkpoint {os.path.join(self.directory, str(step))} is "
                                   f"damaged or unreadable: {_first_line(e)}") from e

  def read_meta(self, step: int) -> dict[str, Any]:
    """The JSON record saved beside the state at `step`."""
    meta = self._read(step, meta=ocp.args.JsonRestore()).meta
    if not isinstance(meta, dict):
      path = os.path.join(self.directory, str(step))
      raise DamagedCheckpointError(
          f"checkpoint {path} is damaged: its meta record is not a JSON object")
    return meta

  def restore(self, template: Any, step: int,
              check_meta: Callable[[dict[str, Any]], None] | None = None
              ) -> tuple[Any, dict[str, Any]]:
    """Reads step `step` into the structure, shapes and dtypes of `template` (numpy leaves).

    Args:
      template: pytree with the structure, shapes and dtypes of the saved state.
      step: the step to read.
      check_meta: called with the meta record before the state is read; raises UserError when
        the checkpoint does not belong to this run (e.g. another model config).

    Raises:
      DamagedCheckpointError: naming the step's folder, when it cannot be read back whole.
    """
    meta = self.read_meta(step)
    if check_meta is not None:
      check_meta(meta)
    state = self._read(step, state=ocp.args.StandardRestore(template)).state
    return self._verified(step, state, meta), meta

  def restore_as_saved(self, step: int) -> Any:
    """The state of step `step` in the saved structure (nested dicts and lists of numpy arrays),
    for reading another run's weights without building its train state."""
    meta = self.read_meta(step)
    return self._verified(step, self._read(step, state=ocp.args.StandardRestore()).state, meta)

  def restore_latest_good(
      self, template: Any, check_meta: Callable[[dict[str, Any]], None] | None = None
  ) -> tuple[Any, dict[str, Any], int] | None:
    """Restores the newest step that reads back whole; None when there is no checkpoint.

    Damaged newer steps are renamed `<step>.damaged` (kept for inspection, out of the way of new
    saves) with a warning. When every step is damaged the newest one's error is raised.
    """
    steps = self.steps()
    first_error = None
    for step in reversed(steps):
      try:
        state, meta = self.restore(template, step, check_meta)
      except DamagedCheckpointError as e:
        first_error = first_error or e
        logging.warning("Skipping %s", e)
        continue
      if step != steps[-1]:
        self._set_aside([s for s in steps if s > step])
      return state, meta, step
    if first_error is not None:
      raise first_error
    return None

  def _set_aside(self, steps: list[int]) -> None:
    for step in steps:
      path = os.path.join(self.directory, str(step))
      if jax.process_index() == 0:
        epath.Path(path).rename(path + ".damaged")
      logging.warning("Moved damaged checkpoint %s to %s.damaged", path, path)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("mlfun_jax: damaged checkpoints set aside")
    self._reload()

  def close(self) -> None:
    """Waits for a pending asynchronous save, then stops orbax's background machinery; call when
    done (or use `with Checkpointer(...)`)."""
    try:
      self.wait()
    finally:
      self._manager.close()
      self._unlogged.close()

  def __enter__(self) -> "Checkpointer":
    return self

  def __exit__(self, error_type, *unused) -> None:
    if error_type is None:
      self.close()
      return
    try:  # Another error is on its way out: it is the one to report.
      self.close()
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("Also, the last checkpoint was not written: %s", _first_line(e))


def latest_meta(directory: str) -> tuple[dict[str, Any], int]:
  """The meta record and step of the newest checkpoint in `directory` (for predict and tools).

  Raises:
    UserError: when the folder has no checkpoint or the newest one is damaged.
  """
  if not epath.Path(directory).is_dir():
    raise UserError(f"no checkpoints in {directory}: the folder does not exist (check --workdir)")
  with Checkpointer(directory, create=False) as checkpointer:
    steps = checkpointer.steps()
    if not steps:
      raise UserError(f"no checkpoints in {directory} (check --workdir)")
    return checkpointer.read_meta(steps[-1]), steps[-1]


def latest_run(workdir: str, task: str, noun: str,
               fields_added_later: Mapping[str, Any] | None = None
               ) -> tuple[dict[str, Any], int, ml_collections.ConfigDict]:
  """(meta record, step, config as a ConfigDict) of the newest checkpoint in WORKDIR/checkpoints.

  The config has the family's `fields_added_later` (dotted name -> value) filled in where the
  run was saved before they existed.

  Raises:
    UserError: no checkpoint, a damaged one, or one of another task (`noun` names the wanted one).
  """
  if not str(workdir).strip():
    raise UserError("--workdir is empty: give the folder of a trained run")
  if "://" not in str(workdir) and not os.path.isdir(workdir):
    why = "is a file, not a run's folder" if os.path.exists(workdir) else "does not exist"
    raise UserError(f"--workdir={workdir} {why}")
  directory = os.path.join(workdir, "checkpoints")
  meta, step = latest_meta(directory)
  if meta.get("task") != task:
    raise UserError(f"checkpoint in {directory} is not {noun} (task {meta.get('task')!r})")
  saved = config_lib.with_fields_added(meta["config"], fields_added_later or {})
  return meta, step, ml_collections.ConfigDict(saved)


def restore_step(workdir: str, step: int, make_state: Callable[[], Any]) -> Any:
  """Step `step` of WORKDIR/checkpoints read into the structure `make_state()` would build (only
  its shapes are computed, with jax.eval_shape)."""
  shapes = jax.eval_shape(make_state)
  template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
  with Checkpointer(os.path.join(workdir, "checkpoints"), create=False) as checkpointer:
    state, _ = checkpointer.restore(template, step)
  return state


@dataclasses.dataclass(frozen=True)
class RestoredRun:
  """The newest checkpoint of a finished or running workdir, read back for inference.

  Attributes:
    meta: the checkpoint's meta record (config, class names, input stats, ...).
    step: the checkpoint's step.
    config: the run's config (with the family's fields added later filled in).
    state: the train state, as numpy arrays in the structure `make_state` builds.
  """
  meta: dict[str, Any]
  step: int
  config: ml_collections.ConfigDict
  state: Any


def restore_run(workdir: str, *, task: str, noun: str,
                make_state: Callable[[ml_collections.ConfigDict, dict[str, Any]], Any],
                fields_added_later: Mapping[str, Any] | None = None) -> RestoredRun:
  """The newest checkpoint of the `task` run in `workdir`; the one restore of every inference class.

  Args:
    workdir: the run's folder (its checkpoints sit in WORKDIR/checkpoints).
    task: the family name the run must have (config field `task`).
    noun: what the caller wants, for the error (e.g. 'a classifier').
    make_state: (config, meta) -> a fresh train state of the saved structure (only its shapes are
      computed).
    fields_added_later: the family's `config.FIELDS_ADDED_LATER`.

  Raises:
    UserError: no checkpoint, a damaged one (checksums included), one of another task, or one
      whose state holds NaN or inf.
  """
  meta, step, config = latest_run(workdir, task, noun, fields_added_later)
  state = restore_step(workdir, step, lambda: make_state(config, meta))
  _check_finite(state, os.path.join(workdir, "checkpoints", str(step)))
  return RestoredRun(meta=meta, step=step, config=config, state=state)


def _check_finite(state: Any, path: str) -> None:
  """UserError naming the first float array of `state` that holds NaN or inf."""
  bad = checksums.first_non_finite(state)
  if bad is not None:
    raise UserError(f"checkpoint {path} holds NaN or inf in {checksums.path_name(bad)}: its "
                    "answers would be meaningless")


def as_json(value: Any) -> Any:
  """`value` after a JSON round trip (tuples become lists), for comparing with saved records."""
  return json.loads(json.dumps(value, default=str))


def config_differences(saved: dict[str, Any], current: dict[str, Any],
                       allowed: frozenset[str] = frozenset(), prefix: str = "",
                       added_later: dict[str, Any] | None = None) -> list[str]:
  """Dotted names of config fields whose values differ between two config dicts.

  Values are compared after a JSON round trip (tuples and lists are the same). Fields named in
  `allowed` (dotted) are ignored. A field of `added_later` (dotted name -> value) missing from
  `saved` counts as that value: the one that does what runs saved before the field existed did.
  """
  added_later = added_later or {}
  differences = []
  for key in sorted(set(saved) | set(current)):
    name = prefix + key
    if name in allowed:
      continue
    a, b = saved.get(key, added_later.get(name)), current.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      differences += config_differences(a, b, allowed, name + ".", added_later)
    elif as_json(a) != as_json(b):
      differences.append(f"{name}: {a!r} -> {b!r}")
  return differences
