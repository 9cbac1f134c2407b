"""Session-scoped fixtures of this folder's tests."""

import pytest

from tests.classification import trained


@pytest.fixture(scope='session')
def digit_classifier(tmp_path_factory):
  """(workdir, last metrics) of a tiny digit CNN trained 300 steps, shared by the test folders."""
  return trained.digit_classifier(tmp_path_factory)
