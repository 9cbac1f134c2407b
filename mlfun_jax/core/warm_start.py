"""Starting a run from the weights of another run (`mlfun-train --init_from=WORKDIR`).

A warm start takes every array of the other run's newest checkpoint (parameters, BatchNorm
statistics, averaged generators, ...) except its step counter and optimizer states: the new run
counts from step 0 with fresh optimizer moments, so its own learning-rate schedule, optimizer and
length apply in full (fine-tuning, a decay phase after a constant-rate run, a longer run with a
new schedule). The two runs must have the same task, the same array shapes and the same meaning of
inputs and outputs (image shape, class names, vocabularies, tokenisers); the data may differ
(fine-tuning on other images of the same classes). Anything else is a one-line UserError.
"""

import os
from typing import Any

import jax
import numpy as np

from mlfun_jax.core import checkpoint
from mlfun_jax.core.errors import UserError

# The meta entries that say what the weights' inputs and outputs mean: both runs must agree on
# those they both have (other entries, such as the dataset's name or size, may differ).
MEANING_ENTRIES = ("image_shape", "class_names", "vocabulary", "source_tokenizer",
                   "target_tokenizer", "languages", "num_features")


def _is_fresh(path: tuple[Any, ...]) -> bool:
  """Leaves the new run keeps from its own initialisation: the step and optimizer states."""
  names = [_name(key) for key in path]
  return names == ["step"] or any(str(name).endswith("opt_state") for name in names)


def _name(key: Any) -> Any:
  for attribute in ("name", "key", "idx"):
    if hasattr(key, attribute):
      return getattr(key, attribute)
  raise TypeError(f"unexpected pytree key {key!r}")


def _lookup(saved: Any, path: tuple[Any, ...]) -> Any:
  node = saved
  for key in path:
    name = _name(key)
    if isinstance(node, dict):
      node = node[name] if name in node else node[str(name)]
    elif isinstance(node, (list, tuple)):
      node = node[int(name)]
    else:
      raise KeyError(name)
  return node


def weights_from(state: Any, meta: dict[str, Any], workdir: str) -> tuple[Any, dict[str, Any]]:
  """`state` with its weights replaced by those of the newest checkpoint in WORKDIR/checkpoints.

  Args:
    state: the new run's freshly initialised train state (host arrays).
    meta: the new run's meta record (its 'task' and data facts are checked against the other run).
    workdir: the other run's workdir.

  Returns:
    (the warm state, {'workdir': ..., 'step': ...} naming where its weights came from).

  Raises:
    UserError: no checkpoint there, a damaged one, another task, other data facts, or an array
      missing or of another shape or dtype (named by its path).
  """
  directory = os.path.join(workdir, "checkpoints")
  saved_meta, step = checkpoint.latest_meta(directory)
  culprit = f"--init_from={workdir}"
  if saved_meta.get("task") != meta.get("task"):
    raise UserError(f"{culprit}: its checkpoint is of task {saved_meta.get('task')!r}, "
                    f"this run is {meta.get('task')!r}")
  for name in (n for n in MEANING_ENTRIES if n in meta and n in saved_meta):
    if checkpoint.as_json(saved_meta[name]) != checkpoint.as_json(meta[name]):
      raise UserError(f"{culprit}: its checkpoint's {name!r} differs from this run's "
                      "(other classes, vocabulary or tokeniser)")
  with checkpoint.Checkpointer(directory, create=False) as checkpointer:
    saved = checkpointer.restore_as_saved(step)  # Read only once the cheap checks have passed.

  def take(path, fresh):
    if _is_fresh(path):
      return fresh
    where = jax.tree_util.keystr(path)
    try:
      value = np.asarray(_lookup(saved, path))
    except (KeyError, IndexError, ValueError) as e:
      raise UserError(f"{culprit}: its checkpoint has no {where} (another model config?)") from e
    fresh = np.asarray(fresh)
    if value.shape != fresh.shape or value.dtype != fresh.dtype:
      raise UserError(f"{culprit}: {where} is {value.dtype}{list(value.shape)} there, "
                      f"{fresh.dtype}{list(fresh.shape)} here (another model config?)")
    return value

  warm = jax.tree_util.tree_map_with_path(take, state)
  return warm, {"workdir": os.path.abspath(workdir) if "://" not in workdir else workdir,
                "step": step}
