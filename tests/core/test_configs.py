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
from mlfun_jax.core import config_checks
from mlfun_jax.core.errors import UserError
from tests.conftest import REPO_ROOT

CONFIG_DIR = REPO_ROOT / 'experiments' / 'configs'
SAVED_DIR = pathlib.Path(__file__).parent / 'saved_configs'
CONFIG_FILES = sorted(p for p in CONFIG_DIR.glob('*.py') if p.name != '__init__.py')
# The data folder the copies were saved with (their data paths start with it).
SAVED_DATA_DIR = json.loads((SAVED_DIR / 'cnn_cifar10.json').read_text())['data_dir']
# Deliberate changes to config files since the copies were saved; a saved run keeps its own values.
# The Mario config holds out its folder's first level by rule (the same level in the shipped folder)
# and takes its sequence length, position sizes and longest n-gram from the corpus' height (150,
# 15 and 16 for the shipped 14-row folder; max_position was 32, beyond any height), and the
# new-voices speech config its folder's first speaker (george in FSDD, as saved). Dotted names
# are nested fields.
CHANGED_SINCE_SAVED = {
    'char_rnn_mario': {'heldout_names': (), 'heldout_first': 1, 'sequence_length': 0,
                       'model.max_position': -1, 'ngram_orders': (3, 7, 0),
                       'mirror_levels': False, 'annotate_paths': True, 'tile_rules': True,
                       'playable_tries': 8},
    'speech_ctc_new_voices': {'split': 'speaker:first'},
    # Faces in photos: the face box alone, 10 test people, defaults chosen on validation people.
    # Then hair and head outline (face_margin) with new backgrounds behind training heads, LBP
    # descriptors joined to the embedding and a tolerance that keeps known faces named; then LPQ
    # beside LBP, both of the face and its mirror image, with more weight; then dlib's pretrained
    # face ResNet names faces in recognize.
    'faces_orl': {'embedder': 'dlib_resnet', 'people': (16, 4, 10), 'image_size': (48, 48), 'face_crop': True,
                  'face_margin': 10, 'augment.background': 0.5, 'lbp_weight': 0.9,
                  'lpq_share': 0.5, 'mirror_descriptors': True,
                  'tolerance_keep': 0.98, 'augment.shift': 4, 'augment.rotate_degrees': 12.0,
                  'augment.erase': 0.5,
                  'model.dropout_rate': 0.2, 'num_steps': 1000,
                  'photos': {'detector': 'cascade', 'hog_detector': True, 'locator_steps': 1500,
                             'negatives_data_dir': None}},
    # The speedrun's 2-pixel shifts reflect the border, as the paper's do.
    'cifar10_speedrun': {'augment.shift_fill': 'reflect'},
    # Runs saved before the streamed input read the data into memory; 'auto' picks now.
    **{name: {'input_pipeline': 'auto'} for name in ('bird_or_not', 'cnn_cifar10', 'cnn_mnist',
                                                     'cnn_mnist_adversarial', 'resnet_cifar10',
                                                     'dcgan_cifar10', 'dcgan_mnist')},
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
  for dotted, value in CHANGED_SINCE_SAVED.get(path.stem, {}).items():
    *parents, leaf = dotted.split('.')
    node = upgraded
    for parent in parents:
      node = node[parent]
    node[leaf] = value
  assert checkpoint.config_differences(upgraded, config.to_dict()) == []


def test_every_config_file_has_a_saved_copy():
  assert {p.stem for p in CONFIG_FILES} == {p.stem for p in SAVED_DIR.glob('*.json')}


@pytest.mark.parametrize('path', CONFIG_FILES, ids=lambda p: p.stem)
def test_every_field_of_a_config_file_has_a_start_up_rule_it_passes(path):
  config = load_config(path)
  rules = families.config_module(config.task).FIELD_RULES
  assert config_checks.unchecked_fields(config, rules) == []
  config_checks.check_fields(config, rules)


@pytest.mark.parametrize('task', sorted(families.FAMILIES))
def test_every_family_default_has_a_start_up_rule_it_passes(task):
  module = families.config_module(task)
  assert config_checks.unchecked_fields(module.defaults(), module.FIELD_RULES) == []
  config_checks.check_fields(module.defaults(), module.FIELD_RULES)


@pytest.mark.parametrize('rule, good, bad, message', [
    (config_checks.Integer(1), [1, 10**9], [0, -5, 1.0, True, 'a', None],
     'must be an integer >= 1'),
    (config_checks.Integer(1, optional=True), [None, 3], [0], 'must be an integer >= 1 (or unset)'),
    (config_checks.Fraction(), [0.0, 0.5, 0], [1.0, -0.1, float('nan'), float('inf'), '0.5'],
     'must be a finite number in [0.0, 1.0)'),
    (config_checks.Positive(), [1e-9, 3], [0, -1, float('nan')], 'must be a finite number > 0.0'),
    (config_checks.Sizes(), [(8,), [8, 16]], [(), ('a', 'b'), (0, 16), (8.0,), 8],
     'must be a tuple of integers >= 1 (1 or more items)'),
    (config_checks.Sizes(nested=True), [((8,), (16, 16))], [(8, 16), ((8,), (0,))],
     'must be a tuple of tuples of integers >= 1 (1 or more items)'),
    (config_checks.Numbers(min_len=2, max_len=2), [(10.0, 40)], [(1.0,), (1.0, float('nan'))],
     'must be a tuple of finite numbers (2 to 2 items)'),
    (config_checks.Text(('a', 'b')), ['a'], ['c', 1, None], 'must be one of a, b'),
    (config_checks.OneOf((1, 3)), [1, 3], [2, True], 'must be one of 1, 3'),
    (config_checks.Boolean(), [True, False], [1, 'True'], 'must be True or False'),
])
def test_rules_pass_good_values_and_name_the_range_of_bad_ones(rule, good, bad, message):
  for value in good:
    assert rule.problem(value) is None, value
  for value in bad:
    assert rule.problem(value) is not None and rule.problem(value).startswith(message[:12]), value
  assert rule.problem(bad[0]) == message


def test_the_first_field_that_breaks_its_rule_is_named():
  config = families.config_module('classification').defaults()
  config.model.dropout_rate = 1.5
  with pytest.raises(UserError, match=r'^config field model.dropout_rate=1.5 must be a finite '
                     r'number in \[0.0, 1.0\)$'):
    config_checks.check_fields(config, families.config_module('classification').FIELD_RULES)
  assert config_checks.rule_for('generator_optimizer.learning_rate', config_checks.LOOP_RULES) \
      == config_checks.NonNegative()
