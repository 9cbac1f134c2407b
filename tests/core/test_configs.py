"""Every experiment config starts from its family's defaults, and old saved configs still resume.

tests/core/saved_configs/*.json hold each config file's fields as runs saved them before the
family defaults existed; with the family's FIELDS_ADDED_LATER filled in they must equal today's
config exactly: such runs resume, and the same config computes the same thing.
"""

import importlib.util
import json
import pathlib

import pytest

from mlfun_jax import families
from mlfun_jax.core import checkpoint
from mlfun_jax.core import config as core_config
from tests.conftest import REPO_ROOT

CONFIG_DIR = REPO_ROOT / 'experiments' / 'configs'
SAVED_DIR = pathlib.Path(__file__).parent / 'saved_configs'
CONFIG_FILES = sorted(p for p in CONFIG_DIR.glob('*.py') if p.name != '__init__.py')
# The data folder the copies were saved with (their data paths start with it).
SAVED_DATA_DIR = json.loads((SAVED_DIR / 'cnn_cifar10.json').read_text())['data_dir']
# Deliberate changes to config files since the copies were saved; a saved run keeps its own values.
# The Mario config holds out its folder's first level by rule (the same level in the shipped folder),
# and the new-voices speech config its folder's first speaker (george in FSDD, as saved).
CHANGED_SINCE_SAVED = {
    'char_rnn_mario': {'heldout_names': (), 'heldout_first': 1},
    'speech_ctc_new_voices': {'split': 'speaker:first'},
}


def load_config(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(f'config_{path.stem}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def field_names(tree: dict, prefix: str = '') -> set[str]:
  names = set()
  for key, value in tree.items():
    names.add(prefix + key)
    if isinstance(value, dict):
      names |= field_names(value, prefix + key + '.')
  return names


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.stem)
def test_config_file_sets_only_fields_its_family_declares(path):
  config = load_config(path).to_dict()
  declared = families.config_module(config['task']).defaults().to_dict()
  assert field_names(config) == field_names(declared)


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.stem)
def test_saved_config_reads_back_as_todays_config(path, monkeypatch):
  monkeypatch.setenv('MLFUN_DATA_DIR', SAVED_DATA_DIR)
  config = load_config(path)
  family = families.config_module(config.task)
  saved = json.loads((SAVED_DIR / f'{path.stem}.json').read_text())
  upgraded = core_config.with_fields_added(saved, family.FIELDS_ADDED_LATER)
  upgraded.update(CHANGED_SINCE_SAVED.get(path.stem, {}))
  assert checkpoint.config_differences(upgraded, config.to_dict()) == []


def test_every_config_file_has_a_saved_copy():
  assert {p.stem for p in CONFIG_FILES} == {p.stem for p in SAVED_DIR.glob('*.json')}
