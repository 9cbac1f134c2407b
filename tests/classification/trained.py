"""One tiny digit classifier trained once per test run, shared by the classification, adversarial
and GAN tests (each folder's conftest.py wraps it in a session-scoped fixture; the pytest workers
share one training)."""

import pathlib

from tests.conftest import small_cnn_config
from tests.conftest import train_once_per_run

_CACHE: dict[str, tuple[pathlib.Path, dict[str, float]]] = {}


def digit_classifier(tmp_path_factory) -> tuple[pathlib.Path, dict[str, float]]:
  """(workdir, last metrics) of the tiny CNN of `small_cnn_config` trained 300 steps on the
  embedded digits (about 90% held out); trained on the first call of the test run."""
  if 'digits' not in _CACHE:
    config = small_cnn_config(num_steps=300, eval_every=300, checkpoint_every=300)
    _CACHE['digits'] = train_once_per_run('digit_classifier', config, tmp_path_factory,
                                          fast_compile=True)
  return _CACHE['digits']
