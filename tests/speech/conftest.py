"""Shared helpers and session fixtures of the speech tests: a tiny config, fake FSDD tones and one
tiny trained recogniser per seed (trained once per session, shared by the CLI, ensemble and
input-check tests)."""

import itertools
import pathlib

import numpy as np
import pytest
import scipy.io.wavfile

from tests.conftest import REPO_ROOT, apply_overrides

CONFIG = REPO_ROOT / 'experiments' / 'configs' / 'speech_ctc_digits.py'


def tiny_config(**overrides):
  """speech_ctc_digits.py shrunk for tests: a 16-unit network, batch 16, 6 steps."""
  from mlfun_jax.core import cli  # pylint: disable=g-import-not-at-top
  config = cli.load_config_file(str(CONFIG))
  config.model.conv_features = (16,)
  config.model.hidden = 16
  config.model.num_layers = 1
  config.model.dropout_rate = 0.0
  config.batch_size = 16
  config.num_steps = 6
  config.log_every = 3
  config.eval_every = 0
  config.checkpoint_every = 3
  return apply_overrides(config, overrides)


def write_fake_fsdd(folder: pathlib.Path, speakers=('anna', 'bob'), takes=3) -> None:
  """Tones standing in for spoken digits: digit d is a 300 + 150 d Hz tone."""
  folder.mkdir(parents=True)
  for digit, speaker, take in itertools.product(range(10), speakers, range(takes)):
    t = np.arange(int(8000 * (0.3 + 0.02 * take))) / 8000
    tone = 0.3 * np.sin(2 * np.pi * (300 + 150 * digit) * t) * np.hanning(len(t))
    scipy.io.wavfile.write(str(folder / f'{digit}_{speaker}_{take}.wav'), 8000,
                           (tone * 32767).astype(np.int16))


@pytest.fixture(scope='session')
def fake_fsdd(tmp_path_factory) -> pathlib.Path:
  """A data_dir with fake FSDD tones of anna and bob, 3 takes of each digit (read-only: share)."""
  data_dir = tmp_path_factory.mktemp('fake_fsdd')
  write_fake_fsdd(data_dir / 'fsdd' / 'recordings')
  return data_dir


class TinyRecognisers:
  """Tiny recognisers trained on `fake_fsdd`, bob held out, per-speaker normalisation, 4 steps:
  one workdir per seed, trained on first use."""

  def __init__(self, data_dir: pathlib.Path, root: pathlib.Path):
    self.data_dir, self.root = data_dir, root
    self.summaries = {}

  def workdir(self, seed: int) -> pathlib.Path:
    """The trained workdir of `seed` (do not write to it)."""
    from mlfun_jax import families  # pylint: disable=g-import-not-at-top
    workdir = self.root / f'seed{seed}'
    if seed not in self.summaries:
      config = tiny_config(data_dir=str(self.data_dir), split='speaker:bob', seed=seed,
                           num_steps=4, checkpoint_every=4)
      config.audio.normalize_over = 'speaker'
      _, self.summaries[seed] = families.train_and_evaluate(config, str(workdir))
    return workdir


@pytest.fixture(scope='session')
def tiny_recognisers(fake_fsdd, tmp_path_factory) -> TinyRecognisers:
  return TinyRecognisers(fake_fsdd, tmp_path_factory.mktemp('tiny_recognisers'))
