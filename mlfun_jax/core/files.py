"""Atomic file writes: a reader (or a crash) never sees a half-written report, picture or level."""

import json
import os
from collections.abc import Callable
from typing import Any, BinaryIO


def write_atomically(path, write: Callable[[BinaryIO], Any]) -> str:
  """Calls `write(file)` on `path + '.tmp'` (same folder, created if needed), then renames it to
  `path`; returns `path` as a string."""
  path = os.fspath(path)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  tmp = path + ".tmp"
  try:
    with open(tmp, "wb") as f:
      write(f)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def write_text(path, text: str) -> str:
  """Writes `text` as UTF-8 to `path`, atomically."""
  return write_atomically(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path, value: Any, **dump_options) -> str:
  """Writes `value` as JSON (`json.dumps` options, e.g. indent=1) to `path`, atomically."""
  return write_text(path, json.dumps(value, **dump_options))
