"""The experiment families by name (config field `task`), for the entry points.

Each family is a package whose `task` module has `build(config, workdir) -> core.train.Task` and
whose `config` module has `defaults()`, `FIELDS_ADDED_LATER` and `FIELD_RULES` (the start-up checks
of its fields, `core.config_checks`). The core loop never imports this
registry: a new family adds its package and one line to `FAMILIES`, and nothing else changes.
"""

import importlib
import os
from types import ModuleType
from typing import Any

import ml_collections

from mlfun_jax.core import config_checks
from mlfun_jax.core import train
from mlfun_jax.core import workdir_lock
from mlfun_jax.core.errors import UserError

FAMILIES = {
    "autoencoder": "mlfun_jax.autoencoder",
    "char_rnn": "mlfun_jax.char_rnn",
    "classification": "mlfun_jax.classification",
    "faces": "mlfun_jax.faces",
    "gan": "mlfun_jax.gan",
    "speech": "mlfun_jax.speech",
    "translation": "mlfun_jax.translation",
}


def _check_name(name: str) -> str:
  if name not in FAMILIES:
    raise UserError(f"unknown config field task={name!r}; choose one of {', '.join(FAMILIES)}")
  return FAMILIES[name]


def get(name: str) -> ModuleType:
  """The task module (`build(config, workdir) -> Task`) of the family `name`."""
  return importlib.import_module(_check_name(name) + ".task")


def config_module(name: str) -> ModuleType:
  """The config module (`defaults()`, `FIELDS_ADDED_LATER`, `FIELD_RULES`) of the family `name`."""
  return importlib.import_module(_check_name(name) + ".config")


def _has_checkpoints(workdir: str) -> bool:
  folder = os.path.join(workdir, "checkpoints")
  return os.path.isdir(folder) and any(name.isdigit() for name in os.listdir(folder))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       stop_after_step: int | None = None,
                       init_from: str | None = None) -> tuple[Any, dict[str, float]]:
  """Builds the Task of the family named by `config.task` and runs it in `workdir`.

  See `mlfun_jax.core.train.run` for `stop_after_step`, `init_from` and the returned
  (final host state, last train and eval metrics). The workdir is locked for the whole run
  (`core.workdir_lock`): a second run on it stops with one line naming the first.
  """
  if not str(workdir).strip():
    raise UserError("--workdir is empty: give the folder for the run's checkpoints and metrics")
  if init_from and "://" not in init_from and not os.path.isdir(init_from) and not (
      _has_checkpoints(workdir)):  # Once the workdir has one, init_from is not read.
    raise UserError(f"--init_from={init_from} is not a run's folder (it does not exist or is a "
                    "file)")
  config_checks.check_fields(config, config_module(config.task).FIELD_RULES)  # Loop fields too.
  with workdir_lock.held(workdir):  # Also while the family builds its data in the workdir.
    task = get(config.task).build(config, workdir)
    return train.run(task, config, workdir, stop_after_step, init_from)
