"""Experiment families: each module builds a `mlfun_jax.train.Task` from a config.

A new family adds a module here with `build(config, workdir) -> Task` and names it in `TASKS`.
"""

import importlib
from types import ModuleType

from mlfun_jax.errors import UserError

TASKS = {
    "autoencoder": "mlfun_jax.tasks.autoencoder",
    "char_rnn": "mlfun_jax.tasks.char_rnn",
    "classification": "mlfun_jax.tasks.classification",
    "faces": "mlfun_jax.tasks.faces",
    "gan": "mlfun_jax.tasks.gan",
    "speech": "mlfun_jax.tasks.speech",
    "translation": "mlfun_jax.tasks.translation",
}


def get(name: str) -> ModuleType:
  """The module of the experiment family `name` (config field `task`)."""
  if name not in TASKS:
    raise UserError(f"unknown config field task={name!r}; choose one of {', '.join(TASKS)}")
  return importlib.import_module(TASKS[name])
