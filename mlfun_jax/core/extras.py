"""Optional dependencies (the extras of setup.py), imported where one option or picture needs them.

The default install leaves out what only one dataset source or one picture uses; the code that
needs it calls `require`, which imports the module or raises one line naming the extra to install:

  tensorflow_datasets  [tfds]       TFDS-prepared datasets (tfds.data_source), TFDS spoken_digit
  espeakng_loader      [speech]     synthetic training voices (GPL-3.0; mlfun_jax/speech/espeak.py)
"""

from __future__ import annotations

import importlib
import importlib.util
import types

from mlfun_jax.core.errors import UserError

# module -> (extra, the PyPI package that brings it).
EXTRAS = {
    "tensorflow_datasets": ("tfds", "tensorflow-datasets"),
    "espeakng_loader": ("speech", "espeakng-loader"),
}


class MissingExtraError(UserError):
  """An optional dependency is not installed; the message names the extra that installs it."""

  def __init__(self, module: str, needed_for: str):
    extra, package = EXTRAS[module]
    self.extra = extra
    self.install = f"pip install 'mlfun_jax[{extra}]'"
    super().__init__(f"{needed_for} needs {package}, which is not installed: {self.install} "
                     f"(in a checkout: pip install -e '.[{extra}]')")


def available(module: str) -> bool:
  """True when `module` can be imported (checked without importing it)."""
  try:
    return importlib.util.find_spec(module) is not None
  except (ImportError, ValueError):
    return False


def require(module: str, needed_for: str) -> types.ModuleType:
  """`importlib.import_module(module)` of an optional dependency listed in EXTRAS.

  Raises:
    MissingExtraError: the module (or a module it needs) is not installed; the one-line message
      says what needed it and which extra installs it.
  """
  try:
    return importlib.import_module(module)
  except ModuleNotFoundError as e:
    raise MissingExtraError(module, needed_for) from e
