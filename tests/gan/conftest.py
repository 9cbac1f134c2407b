"""Session-scoped fixtures of this folder's tests."""

import pytest

from mlfun_jax.core import cli
from tests.classification import trained
from tests.conftest import apply_overrides
from tests.conftest import REPO_ROOT
from tests.conftest import train_in_fresh_process

CONFIG = REPO_ROOT / 'experiments' / 'configs' / 'dcgan_mnist.py'


def gan_config(**overrides):
  """dcgan_mnist.py shrunk for tests ('__' for dots in override names)."""
  config = cli.load_config_file(str(CONFIG))
  config.model.generator_features = 16
  config.model.discriminator_features = 16
  config.model.latent = 16
  config.model.generator_dense = 32
  config.model.discriminator_dense = 32
  config.batch_size = 64
  config.num_steps = 60
  config.log_every = 20
  config.eval_every = 30
  config.checkpoint_every = 30
  return apply_overrides(config, overrides)


@pytest.fixture(scope='session')
def digit_classifier(tmp_path_factory):
  """(workdir, last metrics) of a tiny digit CNN trained 300 steps, shared by the test folders."""
  return trained.digit_classifier(tmp_path_factory)


@pytest.fixture(scope='session')
def judge(digit_classifier):
  """A small digit classifier to judge the samples (shared with the other test folders)."""
  return digit_classifier[0]


@pytest.fixture(scope='session')
def trained_gan(tmp_path_factory, judge):
  """(workdir, summary) of the tiny InfoGAN (10 codes) trained 60 steps, judged by `judge`."""
  workdir = tmp_path_factory.mktemp('dcgan')
  config = gan_config(quality__classifier_workdir=str(judge), samples__pixel_art=True,
                      model__categorical_code=10)
  return workdir, train_in_fresh_process(config, workdir, fast_compile=True)
