"""The one generic training loop, shared by every experiment family.

A family supplies a `Task`: how to initialise its train state, a pure per-device train step and
eval step, and its data streams. The loop maps the steps over all devices (axis 'batch') with
`jax.pmap` or, with `config.parallelism = 'shard_map'`, with `jax.shard_map` inside `jax.jit`
(`parallel.map_over_devices`; the same numbers, and a checkpoint of either resumes under the
other), keeps at most `config.max_inflight_steps` steps in flight (XLA's CPU collectives
abort the process when the dispatch queue runs deep), evaluates every `config.eval_every` steps,
checkpoints atomically every `config.checkpoint_every` steps and at the end (written in the
background while training goes on), resumes from the latest
good checkpoint in the workdir (every array checked against its checksum), and logs to
metrics.jsonl, TensorBoard and the console (both cut back to the resumed step). The workdir is
locked for the run (`workdir_lock`); a finished run, run again, changes nothing in it.
SIGTERM or Ctrl-C stop the run after the current step with a checkpoint (in every process, even
when only one of them got the signal). A NaN or infinite train metric stops the run with an error
naming the step; no checkpoint is written after it. `config.profile_steps = (first, last)` writes
a `jax.profiler` trace of those steps beside the TensorBoard events; each log line and
metrics.jsonl give the share of wall time the loop waited for its next batch (`input_wait_share`).

With many processes (`parallel.initialize_processes`) every process runs this same loop on its
own local devices and its own share of each batch; process 0 alone writes metrics and pictures,
and checkpoints (replicated state, saved as host arrays by orbax's primary process) restore on any
number of devices.
"""

import collections
import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
import dataclasses
import functools
import math
import os
import signal
import threading
import time
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np

from mlfun_jax.core import checkpoint
from mlfun_jax.core import config_checks
from mlfun_jax.core import checksums
from mlfun_jax.core import layout as layout_lib
from mlfun_jax.core import metrics_writer
from mlfun_jax.core import parallel
from mlfun_jax.core import progress
from mlfun_jax.core import warm_start
from mlfun_jax.core import workdir_lock
from mlfun_jax.core.errors import UserError

Batch = dict[str, Any]
Metrics = dict[str, jax.Array]

# Config fields that may change when a run is resumed (they do not change what is computed).
RESUMABLE_FIELDS = frozenset({
    "num_epochs", "num_steps", "log_every", "eval_every", "checkpoint_every",
    "keep_checkpoints", "max_inflight_steps", "parallelism", "profile_steps",
    "input_pipeline", "input_workers",  # The streamed and in-memory inputs draw the same batches.
})


@dataclasses.dataclass(frozen=True)
class Task:
  """What an experiment family gives the loop. Steps are written for ONE device.

  Attributes:
    init: rng -> train state (a flax struct with an integer `step` field).
    train_step: (state, batch, rng) -> (state, metrics). Runs mapped over the devices (pmap or
      shard_map, `parallel.map_over_devices`): it must average its
      gradients and metrics over the axis `parallel.AXIS` itself (`lax.pmean`). `rng` is the
      step's key, the same on every device: `parallel.device_key(rng)` makes it per device,
      `parallel.example_keys(rng, n)` per example of the global batch.
    eval_step: (state, batch) -> metric sums over the device's batch (padding masked out); the loop
      adds them over devices and batches and hands the totals to `summarize_eval`.
    summarize_eval: totals -> named eval metrics (e.g. {'loss': ..., 'accuracy': ...}).
    train_batches: start_step -> iterator of batches laid out [local_devices, per_device, ...].
    eval_batches: () -> one pass over the evaluation data, or None for no evaluation.
    num_steps: total train steps of the run.
    examples_per_step: global batch size (for throughput).
    meta: JSON-able facts saved with each checkpoint (class names, input shape, ...).
    on_eval: optional (host state, step, workdir) -> None, run by process 0 after each periodic
      evaluation before the last step (pictures of progress).
    on_end: optional (host state, workdir) -> None, run by process 0 after training (pictures...).
    meta_from_eval: optional eval metrics -> JSON-able entries merged into the meta of every
      checkpoint saved after that evaluation (e.g. a threshold picked on validation data).
    fields_added_later: the family's config fields added after older runs were saved (dotted
      name -> the value those runs had); a saved config without such a field still resumes.
  """

  init: Callable[[jax.Array], Any]
  train_step: Callable[[Any, Batch, jax.Array], tuple[Any, Metrics]]
  eval_step: Callable[[Any, Batch], Metrics]
  summarize_eval: Callable[[dict[str, float]], dict[str, float]]
  train_batches: Callable[[int], Iterator[Batch]]
  eval_batches: Callable[[], Iterable[Batch]] | None
  num_steps: int
  examples_per_step: int
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)
  on_eval: Callable[[Any, int, str], None] | None = None
  on_end: Callable[[Any, str], None] | None = None
  meta_from_eval: Callable[[dict[str, float]], dict[str, Any]] | None = None
  fields_added_later: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class _StopRequest:
  """Turns SIGTERM (preemption) and the first Ctrl-C into a polite request to stop."""

  def __init__(self):
    self.requested = False
    self._previous = {}

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    logging.warning("Signal %d: stopping after this step with a checkpoint.", signum)
    self.requested = True
    signal.signal(signum, self._previous[signum])  # A second signal acts as usual.

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for signum in (signal.SIGTERM, signal.SIGINT):
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *unused):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


class _BoundedQueue:
  """Holds device results of in-flight steps; fetching the oldest bounds how many are in flight.

  Results are fetched in the order they were put, at the same loop iterations in every process,
  so anything derived from them (stop votes, a non-finite loss) is seen by all processes at once.
  """

  def __init__(self, max_inflight: int, on_fetch: Callable[[int, Any], None] | None = None):
    self._max = max(1, max_inflight)
    self._pending = collections.deque()
    self._on_fetch = on_fetch
    self.done = []

  def put(self, step: int, device_outputs) -> None:
    self._pending.append((step, device_outputs))
    while len(self._pending) >= self._max:
      self._fetch_oldest()

  def _fetch_oldest(self) -> None:
    step, device_outputs = self._pending.popleft()
    outputs = _first_replica(device_outputs)
    if self._on_fetch is not None:
      outputs = self._on_fetch(step, outputs)
    self.done.append(outputs)

  def flush(self) -> None:
    """Waits for every pending result (they stay in `done`)."""
    while self._pending:
      self._fetch_oldest()

  def drain(self) -> list[Any]:
    """Waits for every pending result and hands over all results not yet handed over."""
    self.flush()
    done, self.done = self.done, []
    return done


def _first_replica(device_outputs):
  """Blocks until a mapped result is ready; returns the first local device's copy as numpy."""
  return jax.device_get(parallel.unreplicate(device_outputs))


class TrainingDivergedError(UserError):
  """A train metric (the loss) became NaN or infinite."""


class _TrainOutputs:
  """Checks each fetched step's metrics and collects the processes' stop votes."""

  def __init__(self, checkpoint_dir: str):
    self.stop_voted = False
    self._checkpoint_dir = checkpoint_dir
    self.last_good_checkpoint: int | None = None

  def __call__(self, step: int, outputs) -> dict[str, np.ndarray]:
    metrics, stop_votes = outputs
    self.stop_voted |= bool(stop_votes)
    bad = [name for name, value in metrics.items() if not np.all(np.isfinite(value))]
    if bad:
      kept = (f"the last good checkpoint, step {self.last_good_checkpoint}, is kept in "
              f"{self._checkpoint_dir}" if self.last_good_checkpoint is not None
              else "no checkpoint was written")
      raise TrainingDivergedError(
          f"train {bad[0]} is {float(np.ravel(metrics[bad[0]])[0])} at step {step}: training "
          f"diverged, stopping ({kept}); try a lower learning rate")
    return metrics


def _mean(records: list[dict[str, np.ndarray]]) -> dict[str, float]:
  return {name: float(np.mean([r[name] for r in records])) for name in records[0]}


def _check_finite(host_state, step: int, outputs: _TrainOutputs) -> None:
  """Raises TrainingDivergedError when a float leaf of the state holds NaN or inf."""
  bad = checksums.first_non_finite(host_state)
  if bad is not None:
    kept = (f"step {outputs.last_good_checkpoint}" if outputs.last_good_checkpoint is not None
            else "none")
    raise TrainingDivergedError(
        f"the train state {jax.tree_util.keystr(bad)} holds NaN or inf at step {step}: "
        f"training diverged; not saving it (last good checkpoint: {kept})")


def evaluate(p_eval_step, replicated_state, batches: Iterable[Batch],
             summarize: Callable[[dict[str, Any]], dict[str, float]],
             max_inflight: int) -> dict[str, float]:
  """Runs the pmapped eval step over every batch and summarises the summed metrics.

  Scalar sums reach `summarize` as floats, array-valued sums (histograms) as float64 arrays.
  """
  queue = _BoundedQueue(max_inflight)
  total = len(batches) if hasattr(batches, "__len__") else None
  with progress.Counter("evaluation", total=total, unit="batches") as counter:
    for i, batch in enumerate(batches):
      queue.put(i, p_eval_step(replicated_state, batch))
      counter.add()
    records = queue.drain()
  if not records:
    raise UserError("the evaluation split is empty")
  totals = {}
  for name in records[0]:
    total = np.sum([np.asarray(r[name], np.float64) for r in records], axis=0)
    totals[name] = float(total) if total.ndim == 0 else total
  return summarize(totals)


def _step_with_step_key(train_step, rng, state, batch):
  return train_step(state, batch, jax.random.fold_in(rng, state.step))


def _step_with_stop_vote(train_step, rng, state, batch, stop_vote):
  state, metrics = _step_with_step_key(train_step, rng, state, batch)
  return state, (metrics, jax.lax.pmax(stop_vote, parallel.AXIS))


def _summed_over_devices(eval_step, state, batch):
  return jax.lax.psum(eval_step(state, batch), parallel.AXIS)


def pmap_train_step(train_step, rng: jax.Array, devices=None, parallelism: str = "pmap"):
  """Maps a one-device train step over `devices` (default: all), donating the state.

  The mapped function takes (replicated state, batch [D, per_device, ...]) and gives each device
  the step's key `fold_in(rng, state.step)` (the same on every device). `parallelism`: 'pmap' or
  'shard_map' (`parallel.map_over_devices`).
  """
  return parallel.map_over_devices(functools.partial(_step_with_step_key, train_step, rng),
                                   parallelism, devices, donate_argnums=(0,))


def _loop_step(train_step, rng: jax.Array, parallelism: str):
  """Like `pmap_train_step`, plus a stop vote: (state, batch, votes int32 [D]) -> (state,
  (metrics, max vote over all devices of all processes))."""
  return parallel.map_over_devices(functools.partial(_step_with_stop_vote, train_step, rng),
                                   parallelism, donate_argnums=(0,))


def pmap_eval_step(eval_step, devices=None, parallelism: str = "pmap"):
  """Maps a one-device eval step over `devices`; its sums come back added over all devices."""
  return parallel.map_over_devices(functools.partial(_summed_over_devices, eval_step),
                                   parallelism, devices)


class _Profile:
  """Traces steps `first`..`last` (`config.profile_steps`, 1-based; (0, 0): none) with
  `jax.profiler` into the workdir's TensorBoard folder (its profile plugin opens them).

  Process 0 alone traces (processes on one host would write the same file names). The trace
  starts before step `first` is dispatched and stops once step `last` has finished.
  """

  def __init__(self, profile_steps, workdir: str, queue: "_BoundedQueue"):
    self.first, self.last = (int(s) for s in profile_steps)
    self.directory = os.path.join(workdir, metrics_writer.TENSORBOARD_DIR)
    self._queue = queue
    self._tracing = False
    self._enabled = self.first > 0 and parallel.is_chief()

  def before(self, step: int) -> None:
    if self._enabled and step == self.first and not self._tracing:
      logging.info("Tracing steps %d..%d into %s", self.first, self.last, self.directory)
      jax.profiler.start_trace(self.directory)
      self._tracing = True

  def after(self, step: int) -> None:
    if self._tracing and step >= self.last:
      self._stop()

  def _stop(self) -> None:
    self._queue.flush()  # The traced steps have run to the end.
    jax.profiler.stop_trace()
    self._tracing = False
    logging.info("Wrote the trace of steps %d..%d to %s", self.first, self.last, self.directory)

  def __enter__(self) -> "_Profile":
    return self

  def __exit__(self, *unused) -> None:
    if self._tracing:  # Stopped (signal, error, end of run) before `last`: keep what ran.
      self._tracing = False
      jax.profiler.stop_trace()


def _check_resumable(config: ml_collections.ConfigDict, workdir: str,
                     added_later: Mapping[str, Any]):
  def check(meta: dict[str, Any]) -> None:
    differences = checkpoint.config_differences(
        meta.get("config", {}), config.to_dict(), RESUMABLE_FIELDS, added_later=added_later)
    if differences:
      raise UserError(
          f"workdir {workdir} holds a run with another config ({'; '.join(differences[:4])}); "
          "use a new --workdir or the same config")
  return check


def batch_layout(global_batch_size: int) -> dict[str, int]:
  """This process' share of each global batch, as keywords of `mlfun_jax.data.train_batches` and
  `eval_batches`; UserError unless the batch divides by all devices of all processes."""
  layout = dict(global_batch_size=global_batch_size, process_index=jax.process_index(),
                process_count=jax.process_count(), local_device_count=jax.local_device_count())
  layout_lib.check_batch_size(global_batch_size, process_count=layout["process_count"],
                        local_device_count=layout["local_device_count"])
  return layout


def num_train_steps(config: ml_collections.ConfigDict, num_train_examples: int) -> int:
  """`config.num_steps` if set, else enough steps for `config.num_epochs` epochs."""
  if config.get("num_steps") is not None:
    return int(config.num_steps)
  return max(1, math.ceil(config.num_epochs * num_train_examples / config.batch_size))


def check_loop_config(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first loop field out of range (`config_checks.LOOP_RULES`): the
  run length (`num_steps` an integer >= 1 when set, else `num_epochs` a finite number > 0),
  `batch_size` >= 1, the intervals. A missing field counts as None."""
  loop = {name: config.get(name) for name in ("batch_size", "num_steps", "log_every", "eval_every",
                                               "checkpoint_every", "keep_checkpoints",
                                               "max_inflight_steps", "dtype", "parallelism",
                                               "grad_accum_steps", "profile_steps")}
  if loop["num_steps"] is None:
    loop["num_epochs"] = config.get("num_epochs")
  config_checks.check_fields(loop, config_checks.LOOP_RULES)
  first, last = loop["profile_steps"]
  if first > last or (last and not first):
    raise UserError(f"config field profile_steps={tuple(loop['profile_steps'])!r} must be "
                    "(first, last) with 1 <= first <= last, or (0, 0) for no trace")


def check_workdir_paths(workdir: str) -> None:
  """UserError when a path the loop writes in `workdir` exists as the wrong kind (a file where
  a folder belongs, or the other way round): found at the start, not at the first checkpoint."""
  if "://" in workdir:
    return
  for name, folder in (("checkpoints", True), (metrics_writer.TENSORBOARD_DIR, True),
                       (metrics_writer.METRICS_FILE, False)):
    path = os.path.join(workdir, name)
    if os.path.exists(path) and os.path.isdir(path) != folder:
      raise UserError(f"{path} must be a {'folder' if folder else 'file'}, not a "
                      f"{'file' if folder else 'folder'}: move it away or use another --workdir")


def _restore(checkpointer: checkpoint.Checkpointer, state: Any, config: ml_collections.ConfigDict,
             workdir: str, added_later: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
  """(The latest good checkpoint's state and meta) if there is one, else (`state`, {})."""
  restored = checkpointer.restore_latest_good(state,
                                              _check_resumable(config, workdir, added_later))
  if restored is None:
    return state, {}
  state, saved_meta, saved_step = restored
  logging.info("Resumed from step %d in %s", saved_step, checkpointer.directory)
  saved_config = saved_meta["config"]
  if (saved_config.get("num_steps"), saved_config.get("num_epochs")) != (
      config.get("num_steps"), config.get("num_epochs")):
    logging.warning("The run length changed since the checkpoint: learning-rate schedules "
                    "follow the new length from step %d on.", saved_step)
  return state, saved_meta


def run(task: Task, config: ml_collections.ConfigDict, workdir: str,
        stop_after_step: int | None = None,
        init_from: str | None = None) -> tuple[Any, dict[str, float]]:
  """Trains `task` to `task.num_steps`, resuming from `workdir` if it holds a checkpoint.

  `stop_after_step` ends this call early at that step with a checkpoint, as a preemption would;
  calling again resumes exactly where it stopped. `init_from` (another run's workdir) starts a new
  run from that run's weights with a fresh step count and optimizer (`warm_start`); once `workdir`
  has a checkpoint of its own, the run resumes from it instead.

  Returns:
    (the final train state as numpy arrays, the last logged train metrics and latest eval metrics
    as {'train_*': ..., 'eval_*': ...}).
  """
  check_loop_config(config)
  is_chief = parallel.is_chief()
  one_process = jax.process_count() == 1
  init_rng, step_rng = jax.random.split(jax.random.key(config.seed))
  meta = {"config": config.to_dict(), **task.meta}
  max_inflight = config.max_inflight_steps
  p_train_step = _loop_step(task.train_step, step_rng, config.parallelism)
  p_eval_step = pmap_eval_step(task.eval_step, parallelism=config.parallelism)

  with contextlib.ExitStack() as resources:
    resources.enter_context(workdir_lock.held(workdir))
    check_workdir_paths(workdir)
    checkpointer = resources.enter_context(checkpoint.Checkpointer(
        os.path.join(workdir, "checkpoints"), max_to_keep=config.keep_checkpoints,
        asynchronous=True))
    state = jax.device_get(task.init(init_rng))
    saved_meta = {}
    if init_from and not checkpointer.steps():
      state, meta["init_from"] = warm_start.weights_from(state, meta, init_from)
      logging.info("Starting from the weights of %s (step %d).", init_from,
                   meta["init_from"]["step"])
    else:
      state, saved_meta = _restore(checkpointer, state, config, workdir,
                                   task.fields_added_later)
      if "init_from" in saved_meta:  # Where a warm-started run's weights first came from.
        meta["init_from"] = saved_meta["init_from"]
    start_step = step = int(state.step)
    saved_position = saved_meta.get("input_position")
    if saved_position and saved_position["examples_read"] != start_step * task.examples_per_step:
      raise UserError(f"the checkpoint of step {start_step} in {workdir} read "
                      f"{saved_position['examples_read']} examples, but this run would resume "
                      f"after {start_step * task.examples_per_step}: the global batch changed")
    finished = start_step >= task.num_steps  # Then nothing in the workdir changes.
    outputs = _TrainOutputs(checkpointer.directory)
    outputs.last_good_checkpoint = start_step if checkpointer.steps() else None
    writer = resources.enter_context(
        metrics_writer.MetricWriter(workdir, enabled=is_chief and not finished))
    writer.truncate_after(start_step)
    replicated_state = parallel.replicate(state, config.parallelism)
    del state

    def evaluate_and_log(step, write=True):
      metrics = evaluate(p_eval_step, replicated_state, task.eval_batches(), task.summarize_eval,
                         max_inflight)
      if task.meta_from_eval is not None:
        meta.update(task.meta_from_eval(metrics))
      eval_metrics = {"eval_" + k: v for k, v in metrics.items()}
      if write:
        writer.write(step, eval_metrics)
      logging.info("step %d | %s", step, " ".join(f"{k} {v:.4f}" for k, v in eval_metrics.items()))
      return eval_metrics

    clock = progress.Progress(start_step, task.num_steps, task.examples_per_step)
    if start_step < task.num_steps:
      logging.info("Training steps %d..%d on %d devices (%d processes), global batch %d.",
                   start_step + 1, task.num_steps, jax.device_count(), jax.process_count(),
                   task.examples_per_step)
    summary: dict[str, float] = {}
    queue = _BoundedQueue(max_inflight, on_fetch=outputs)
    batches = parallel.prefetch_to_devices(task.train_batches(start_step), config.parallelism)
    no_vote = np.zeros(jax.local_device_count(), np.int32)
    profile = resources.enter_context(_Profile(config.profile_steps, workdir, queue))
    with _StopRequest() as stop:
      while step < task.num_steps:
        # A signal may reach only some processes: each votes through the step's collectives and
        # all stop together once a step with a vote has been fetched (max_inflight_steps later).
        votes = no_vote + stop.requested
        profile.before(step + 1)
        waiting_since = time.perf_counter()
        batch = next(batches)
        clock.waited_for_input(time.perf_counter() - waiting_since)
        replicated_state, device_outputs = p_train_step(replicated_state, batch, votes)
        del batch
        step += 1
        queue.put(step, device_outputs)
        profile.after(step)
        stopping = (outputs.stop_voted or (one_process and stop.requested)
                    or step == stop_after_step)
        last = step == task.num_steps or stopping
        if step % config.log_every == 0 or last:
          train_metrics = {"train_" + k: v for k, v in _mean(queue.drain()).items()}
          rates = clock.tick(step)
          writer.write(step, {**train_metrics, **rates})
          summary.update(train_metrics)
          logging.info("%s", clock.line(step, rates, train_metrics))
        if task.eval_batches is not None and (
            (config.eval_every and step % config.eval_every == 0) or step == task.num_steps):
          summary.update(evaluate_and_log(step))
          if is_chief and task.on_eval is not None and step < task.num_steps:
            task.on_eval(parallel.to_host(replicated_state), step, workdir)
        if (config.checkpoint_every and step % config.checkpoint_every == 0) or last:
          queue.flush()  # Every step up to this one has a finite loss...
          host_state = parallel.to_host(replicated_state)
          _check_finite(host_state, step, outputs)  # ... and the state is finite too.
          checkpointer.save(step, host_state, {**meta, "step": step, "input_position": {
              "examples_read": step * task.examples_per_step}})
          outputs.last_good_checkpoint = step
        if stopping:
          break

    if step > start_step:
      logging.info("Stopped at step %d after %s.", step, progress.format_duration(clock.elapsed()))
    else:
      if finished:
        logging.info("The run in %s is already finished (step %d of %d); nothing to train.",
                     workdir, step, task.num_steps)
        summary.update(metrics_writer.last_summary(workdir))  # What it reported at its end.
      if task.eval_batches is not None and not any(name.startswith("eval_") for name in summary):
        summary.update(evaluate_and_log(step, write=False))
    final_state = parallel.to_host(replicated_state)
    if step == task.num_steps and not finished and is_chief and task.on_end is not None:
      task.on_end(final_state, workdir)
  return final_state, summary

