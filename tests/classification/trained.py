"""One tiny digit classifier trained once per test process, shared by the classification,
adversarial and GAN tests (each folder's conftest.py wraps it in a session-scoped fixture)."""

import pathlib

from tests.conftest import small_cnn_config
from tests.conftest import train_in_fresh_process

_CACHE: dict[str, tuple[pathlib.Path, dict[str, float]]] = {}


def digit_classifier(tmp_path_factory) -> tuple[pathlib.Path, dict[str, float]]:
  """(workdir, last metrics) of the tiny CNN of `small_cnn_config` trained 300 steps on the
  embedded digits (about 90% held out); trained on the first call of the process."""
  if 'digits' not in _CACHE:
    workdir = tmp_path_factory.mktemp('digit_classifier')
    config = small_cnn_config(num_steps=300, eval_every=300, checkpoint_every=300)
    summary = train_in_fresh_process(config, workdir)
    _CACHE['digits'] = workdir, summary
  return _CACHE['digits']
