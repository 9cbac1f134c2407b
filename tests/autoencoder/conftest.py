"""Autoencoder test helpers: shrunk configs, the embedded digits and one trained 2-D autoencoder
shared by every test that reads a finished run (session scope: trained once)."""

import pytest

from mlfun_jax.core import cli
from tests.conftest import apply_overrides
from tests.conftest import REPO_ROOT
from tests.conftest import train_in_fresh_process

CONFIGS = REPO_ROOT / 'experiments' / 'configs'


def ae_config(name='autoencoder_mnist.py', **overrides):
  """A config file shrunk for tests; overrides as in small_cnn_config ('__' for dots)."""
  config = cli.load_config_file(str(CONFIGS / name))
  config.batch_size = 64
  config.num_steps = 200
  config.log_every = 50
  config.eval_every = 100
  config.checkpoint_every = 100
  return apply_overrides(config, overrides)


@pytest.fixture(scope='session')
def digits():
  from mlfun_jax.data import embedded  # pylint: disable=g-import-not-at-top
  return embedded.load_embedded_mnist()


@pytest.fixture(scope='session')
def trained_2d(tmp_path_factory):
  """The series' dense 2-unit autoencoder, 400 steps on the embedded digits."""
  workdir = tmp_path_factory.mktemp('autoencoder_2d')
  summary = train_in_fresh_process(ae_config(num_steps=400, eval_every=200), workdir)
  return workdir, summary
