"""Shared pytest fixtures and helpers."""

from __future__ import annotations

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def find_shared_data_dir() -> pathlib.Path:
  """The read-only shared datasets folder: $MLFUN_DATA_DIR, else <repo>/../shared/data.

  The folder may be absent (a user's fresh clone); callers decide whether to skip.
  """
  env = os.environ.get('MLFUN_DATA_DIR')
  return pathlib.Path(env) if env else REPO_ROOT.parent / 'shared' / 'data'


@pytest.fixture(scope='session')
def shared_data_dir() -> pathlib.Path:
  """`find_shared_data_dir()`; skips the test when that folder is absent."""
  path = find_shared_data_dir()
  if not path.is_dir():
    pytest.skip(f'shared data folder {path} is absent (set MLFUN_DATA_DIR to its location)')
  return path
