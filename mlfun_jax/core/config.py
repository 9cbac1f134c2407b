"""Config defaults of the generic loop and the optimizer, shared by every family's `defaults()`.

A family's `config.defaults()` starts from `loop_defaults()` and adds its own fields; experiment
config files start from a family's `defaults()` and set only what differs.
"""

from collections.abc import Mapping
import copy
from typing import Any

import ml_collections
from ml_collections import config_dict

# Loop and optimizer fields added after older runs were saved, with the value those runs had.
FIELDS_ADDED_LATER = {
    "optimizer.warmup_steps": 0,
    "optimizer.weight_decay": 0.0,
    "optimizer.grad_clip_norm": 0.0,
    "dtype": "float32",
    "parallelism": "pmap",
    "grad_accum_steps": 1,
    "profile_steps": (0, 0),
}


def optimizer_defaults() -> ml_collections.ConfigDict:
  """The fields of `core.optim.create_optimizer`."""
  optimizer = ml_collections.ConfigDict()
  optimizer.name = "adamw"  # 'sgd', 'momentum' (Nesterov), 'adam' or 'adamw'.
  optimizer.learning_rate = 1e-3  # Peak learning rate of the schedule.
  optimizer.schedule = "constant"  # 'constant', 'cosine', 'warmup_cosine' or 'onecycle'.
  optimizer.warmup_steps = 0  # Linear warm-up steps (warmup_cosine).
  optimizer.momentum = 0.9  # momentum: Nesterov momentum.
  optimizer.b1 = 0.9  # adam, adamw: first-moment decay.
  optimizer.b2 = 0.999  # adam, adamw: second-moment decay.
  optimizer.weight_decay = 0.0  # adamw: decoupled; sgd/momentum: L2 on kernels only.
  optimizer.grad_clip_norm = 0.0  # Clip gradients to this global norm (0: no clipping).
  return optimizer


def loop_defaults(task: str) -> ml_collections.ConfigDict:
  """The fields of the generic loop (`core.train.run`) and its optimizer, for family `task`."""
  config = ml_collections.ConfigDict()
  config.task = task  # The family (mlfun_jax.families).
  config.seed = 0  # Initial parameters, data order, dropout and augmentation.
  config.batch_size = 128  # Global batch: divides by the number of devices of all processes.
  config.num_epochs = 1.0  # Run length in passes over the training data...
  config.num_steps = config_dict.placeholder(int)  # ...or in steps, when set.
  config.log_every = 50  # Steps between train-metric logs.
  config.eval_every = 250  # Steps between evaluations (0: at the end only).
  config.checkpoint_every = 500  # Steps between checkpoints (0: at the end only).
  config.keep_checkpoints = 3  # Newest checkpoints kept.
  config.max_inflight_steps = 4  # Steps dispatched before waiting (CPU collectives need a bound).
  config.dtype = "float32"  # Compute in 'float32' or 'bfloat16' (params, losses stay float32).
  config.parallelism = "pmap"  # 'pmap' or 'shard_map' (in jit over a mesh with axis 'batch').
  config.grad_accum_steps = 1  # Micro-batches of batch_size per update (optax.MultiSteps).
  config.profile_steps = (0, 0)  # (first, last) steps traced by jax.profiler into workdir/profile.
  config.optimizer = optimizer_defaults()
  return config


def with_fields_added(saved: Mapping[str, Any], added_later: Mapping[str, Any]) -> dict[str, Any]:
  """A saved config dict with each missing field of `added_later` (dotted name -> the value older
  runs had) set, so that a run saved before the field existed reads back as it ran."""
  config = copy.deepcopy(dict(saved))
  for name, value in added_later.items():
    *parents, leaf = name.split(".")
    node = config
    for parent in parents:
      if not isinstance(node.get(parent), dict):
        node = None
        break
      node = node[parent]
    if node is not None and leaf not in node:
      node[leaf] = copy.deepcopy(value)
  return config
