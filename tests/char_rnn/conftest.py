"""Tiny trained character models shared by the char_rnn tests (one training each per session)."""

import dataclasses
import pathlib

import pytest

from mlfun_jax import families
from mlfun_jax.core import cli
from tests.conftest import REPO_ROOT, apply_overrides, train_in_fresh_process

TEXT_CONFIG = REPO_ROOT / 'experiments' / 'configs' / 'char_rnn_text.py'
MARIO_CONFIG = REPO_ROOT / 'experiments' / 'configs' / 'char_rnn_mario.py'


def small_config(path=TEXT_CONFIG, **overrides):
  """A config file shrunk for tests: a 2 x 32 LSTM, batch 8, 20 steps, short samples."""
  config = cli.load_config_file(str(path))
  config.model.hidden = 32
  config.model.embed_dim = 16
  config.model.num_layers = 2
  config.model.dropout_rate = 0.0
  config.sequence_length = 20
  config.eval_sequence_length = 256
  config.batch_size = 8
  config.num_steps = 20
  config.log_every = 10
  config.eval_every = 0
  config.checkpoint_every = 10
  config.ngram_orders = (3,)
  config.sample_length = 50
  config.num_sample_levels = 2
  config.sample_level_columns = 30
  return apply_overrides(config, overrides)


@pytest.fixture(scope='session')
def mario_dir(shared_data_dir):
  return shared_data_dir / 'vglc_mario' / 'smb'


@dataclasses.dataclass(frozen=True)
class MarioRun:
  workdir: pathlib.Path
  summary: dict


@pytest.fixture(scope='session')
def mario_run(mario_dir, tmp_path_factory) -> MarioRun:
  """A level model trained for 100 steps on the Mario levels (1-1 held out), with its report."""
  config = small_config(MARIO_CONFIG, text_path=str(mario_dir), num_steps=100,
                        batch_size=16, sequence_length=45, eval_sequence_length=4096,
                        model__hidden=64)
  config.optimizer.learning_rate = 5e-3
  config.optimizer.warmup_steps = 5
  workdir = tmp_path_factory.mktemp('char_rnn') / 'mario'
  summary = train_in_fresh_process(config, workdir)
  return MarioRun(workdir, summary)


@dataclasses.dataclass(frozen=True)
class TextRuns:
  """A text model trained 16 steps straight, and the same run stopped at step 8 and resumed."""
  straight_dir: pathlib.Path
  straight: object
  resumed: object


@pytest.fixture(scope='session')
def text_runs(tmp_path_factory) -> TextRuns:
  root = tmp_path_factory.mktemp('char_rnn_text')
  path = root / 'corpus.txt'
  path.write_text('abracadabra, said the magician. ' * 300, encoding='utf-8')
  config = small_config(text_path=str(path), num_steps=16, checkpoint_every=8,
                        model__dropout_rate=0.1)
  straight, _ = families.train_and_evaluate(config, str(root / 'straight'))
  families.train_and_evaluate(config, str(root / 'stopped'), stop_after_step=8)
  resumed, _ = families.train_and_evaluate(config, str(root / 'stopped'))
  return TextRuns(root / 'straight', straight, resumed)
