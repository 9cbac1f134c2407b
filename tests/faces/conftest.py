"""Faces test helpers: the ORL config pointed at a data folder, and one short real ORL training
shared by every test that reads a finished run (session scope: trained once)."""

import pytest

from mlfun_jax.core import cli
from tests.conftest import apply_overrides
from tests.conftest import REPO_ROOT
from tests.conftest import train_in_fresh_process

CONFIG = REPO_ROOT / 'experiments' / 'configs' / 'faces_orl.py'


def faces_config(data_dir, **overrides):
  config = cli.load_config_file(str(CONFIG))
  config.data_dir = str(data_dir)
  return apply_overrides(config, overrides)


@pytest.fixture(scope='session')
def trained_workdir(tmp_path_factory, shared_data_dir):
  """A short real ORL training (8 CPU devices): the semi-hard triplet loss (margin 0.2) on the
  narrower (32, 64, 128) network, which is 3x cheaper than the default, without erasing and
  dropout (150 steps need no more regularisation); evaluated at the end only
  (the tests read the final evaluation). Photo tools: a 40-step eye locator, no HOG detector
  (tests of photos train their own small one). Validation people pick the threshold and the
  tolerance (the default trains on every non-test person with a fixed tolerance). Its report and
  recognize embed with the trained network (`embedder='network'`): these tests are about it;
  tests/faces/test_dlib.py asks for the pretrained one."""
  workdir = tmp_path_factory.mktemp('faces') / 'run'
  config = faces_config(shared_data_dir / 'faces_orl', num_steps=150, eval_every=0,
                        checkpoint_every=150, log_every=50, loss='triplet', triplet__margin=0.2,
                        model__conv_features=(32, 64, 128), test_time_augmentation=False,
                        photos__hog_detector=False, photos__locator_steps=40,
                        people=(18, 4, 8), tolerance=None, augment__erase=0.0,
                        model__dropout_rate=0.0, embedder='network')
  assert config.threshold_impostors == 'validation+train'
  summary = train_in_fresh_process(config, workdir)
  return workdir, summary
