"""Helpers for absl entry points: config-file checks before flag parsing, one-line user errors.

ml_collections' config flags print a traceback for an unknown `--config.field` and accept a missing
config file silently; `run` checks both first and answers with one line and exit status 2.
"""

import contextlib
import importlib.util
import logging as python_logging
import os
import re
import sys
from collections.abc import Callable, Sequence

from absl import app
import ml_collections

from mlfun_jax.core.errors import UserError

EXIT_USER_ERROR = 2


def fail(message: str) -> None:
  """Prints `error: message` on one line to stderr and exits with status 2."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(EXIT_USER_ERROR)


@contextlib.contextmanager
def user_errors():
  """Turns a `UserError` raised inside the block into one line on stderr and exit status 2."""
  try:
    yield
  except UserError as e:
    fail(str(e))


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """Calls get_config() of a config file given as 'path.py' or 'path.py:argument'."""
  path, _, argument = spec.partition(":")
  if not os.path.isfile(path):
    raise UserError(f"config file {path!r} does not exist (flag --config)")
  module_spec = importlib.util.spec_from_file_location("_mlfun_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"config file {path!r} does not load: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path!r} has no get_config() function (flag --config)")
  return module.get_config(argument) if argument else module.get_config()


def _flag_value(argv: Sequence[str], name: str) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def check_config_overrides(argv: Sequence[str], config_flag: str = "config") -> None:
  """Raises UserError for a missing config file or an override of a field the config lacks."""
  spec = _flag_value(argv, config_flag)
  if spec is None:
    return  # absl reports the missing required flag.
  config = load_config_file(spec)
  prefix = f"--{config_flag}."
  for arg in argv:
    if not arg.startswith(prefix):
      continue
    dotted = arg[len(prefix):].split("=", 1)[0]
    node = config
    for depth, key in enumerate(dotted.split(".")):
      if not isinstance(node, ml_collections.ConfigDict) or key not in node:
        known = ", ".join(sorted(node.keys())) if isinstance(node, ml_collections.ConfigDict) else ""
        where = ".".join(dotted.split(".")[:depth]) or "the config"
        raise UserError(f"unknown config field {dotted!r} in {spec} (flag {arg.split('=')[0]}); "
                        f"fields of {where}: {known}")
      node = node[key]


class _QuietLibraries(python_logging.Filter):
  """Drops INFO records of chatty libraries (orbax logs ~40 lines per checkpoint)."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    return record.levelno >= python_logging.WARNING or "/orbax/" not in record.pathname


def _ignore_closed_event_loop(unraisable, default=sys.unraisablehook) -> None:
  """After a failed orbax read, tensorstore callbacks hit orbax's closed asyncio loop; each
  prints a harmless 'Event loop is closed' traceback. Everything else goes to the default hook."""
  error = unraisable.exc_value
  if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
    default(unraisable)


# tensorstore's errors read "<ABSL STATUS CODE>: message".
_TENSORSTORE_ERROR = re.compile(r"^[A-Z_]+: ")


class _DropUnretrievedReadErrors(python_logging.Filter):
  """Drops asyncio's 'Task exception was never retrieved' tracebacks of tensorstore read errors.

  When orbax reads a damaged checkpoint, several of its concurrent reads fail; the first failure
  reaches the user as one DamagedCheckpointError line, the others are left in their asyncio tasks
  and asyncio prints each as a traceback when the task is garbage-collected. Other records pass.
  """

  def filter(self, record: python_logging.LogRecord) -> bool:
    first_line = str(record.msg).split("\n", 1)[0]
    if not first_line.endswith("exception was never retrieved") or not record.exc_info:
      return True
    error = record.exc_info[1]
    return not (isinstance(error, ValueError) and _TENSORSTORE_ERROR.match(str(error)))


def run(main: Callable[[list[str]], None], config_flag: str | None = "config") -> None:
  """`absl.app.run(main)` after checking the config file and its overrides.

  Also quiets orbax's INFO logging and its noise after a failed read (closed-event-loop and
  unretrieved-task tracebacks) for console runs (library users keep all of it).
  """
  python_logging.getLogger("absl").addFilter(_QuietLibraries())
  python_logging.getLogger("asyncio").addFilter(_DropUnretrievedReadErrors())
  sys.unraisablehook = _ignore_closed_event_loop
  if config_flag is not None:
    with user_errors():
      check_config_overrides(sys.argv[1:], config_flag)
  app.run(main)
