"""Helpers for absl entry points: config-file checks before flag parsing, one-line user errors.

ml_collections' config flags print a traceback for an unknown `--config.field` and accept a missing
config file silently; `run` checks both first and answers with one line and exit status 2.

`--config` takes a config file path ('path.py' or 'path.py:argument') or the short name of an
installed config ('cnn_mnist', 'cnn_mnist:argument': mlfun_jax/experiments/configs/cnn_mnist.py,
the repository's experiments/configs/); `run` rewrites a short name into its path before absl
parses the flags. `--help` and `--helpfull` exit with status 0, and with a config they also list the
config's fields and their defaults.
"""

import contextlib
import functools
import importlib.util
import logging as python_logging
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from absl import app
from absl import flags
import ml_collections

from mlfun_jax.core import config_checks
from mlfun_jax.core.errors import UserError

EXIT_USER_ERROR = 2
# The installed experiment configs (the repository's experiments/configs/), found by name so that
# the core imports nothing outside itself.
CONFIGS_PACKAGE = "mlfun_jax.experiments.configs"
HELP_FLAGS = ("--help", "-help", "-h", "-?", "--helpshort", "-helpshort", "--helpfull", "-helpfull",
              "--helpxml", "-helpxml")


def fail(message: str) -> None:
  """Prints `error: message` on one line to stderr and exits with status 2."""
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(EXIT_USER_ERROR)


@contextlib.contextmanager
def user_errors():
  """Turns a `UserError` raised inside the block into one line on stderr and exit status 2, and
  so does an OSError (a full disk, a read-only or missing folder, a file where a folder should be:
  the line names the path and the cause)."""
  try:
    yield
  except UserError as e:
    fail(str(e))
  except OSError as e:
    where = f"{e.filename}: " if e.filename else ""
    fail(f"{where}{e.strerror or e}")


def load_each(paths: Sequence[str], load: Callable[[str], Any]) -> tuple[list[tuple[str, Any]], int]:
  """([(path, load(path))] of the inputs that load, the number that failed): each input whose
  `load` raises UserError is reported on stderr as one `error: ...` line and left out, so one bad
  file among several does not stop the others. A tool answers the rest, then exits with
  `exit_if_failed`."""
  loaded, failed = [], 0
  for path in paths:
    try:
      loaded.append((path, load(path)))
    except UserError as e:
      print(f"error: {e}", file=sys.stderr, flush=True)
      failed += 1
  return loaded, failed


def exit_if_failed(failed: int) -> None:
  """Exits with status 2 when `failed` inputs were reported (`load_each`): the answers printed
  are for the others."""
  if failed:
    sys.exit(EXIT_USER_ERROR)


def make_output_dir(path: str, flag: str = "output_dir") -> str:
  """Creates the folder `path` (and its parents) for a tool's output files before the tool does
  its work, so a path that cannot hold files (a file, a folder under a file, no permission) is one
  `error: cannot write to --output_dir=...` line and exit status 2 before anything is printed.
  Bucket paths (gs://...) are left to the writes. Returns `path`."""
  if "://" in path:
    return path
  with writing_to(path, flag):
    os.makedirs(path, exist_ok=True)
    if not os.access(path, os.W_OK | os.X_OK):
      raise PermissionError(13, "Permission denied")
  return path


@contextlib.contextmanager
def writing_to(path: str, flag: str = "output_dir"):
  """Turns an OSError raised while writing a tool's output under `path` (a full disk, no
  permission) into one `error: cannot write to --FLAG=path: cause` line and exit status 2."""
  try:
    yield
  except OSError as e:
    fail(f"cannot write to --{flag}={path!r}: {e.strerror or e}")


def check_data_dir(path: str, flag: str = "data_dir") -> str:
  """UserError unless `path` is an existing folder or .zip file (a data folder; bucket paths are
  left to the reader). Returns `path`."""
  if "://" in path:
    return path
  if not os.path.exists(path):
    raise UserError(f"--{flag}={path} does not exist")
  if not os.path.isdir(path) and not path.lower().endswith(".zip"):
    raise UserError(f"--{flag}={path} is a file, not a data folder (or a .zip of one)")
  return path


def config_dir() -> str | None:
  """The folder of the installed experiment configs; None without mlfun_jax.experiments."""
  try:
    spec = importlib.util.find_spec(CONFIGS_PACKAGE)
  except ImportError:
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  return list(spec.submodule_search_locations)[0]


def config_names() -> list[str]:
  """Short names of the installed experiment configs ('cnn_mnist', ...), sorted."""
  folder = config_dir()
  if folder is None:
    return []
  return sorted(name[:-3] for name in os.listdir(folder)
                if name.endswith(".py") and not name.startswith("_"))


def is_short_name(path: str) -> bool:
  """'cnn_mnist' is a short name; 'cnn_mnist.py', 'configs/cnn_mnist.py' and existing files are
  paths."""
  return (bool(path) and not path.endswith(".py") and "/" not in path and os.sep not in path
          and not os.path.exists(path))


def resolve_config_spec(spec: str, flag: str = "config") -> str:
  """'cnn_mnist[:argument]' -> '<installed configs>/cnn_mnist.py[:argument]'; paths unchanged.

  Raises:
    UserError: a short name that names no installed config (one line listing the names).
  """
  path, colon, argument = spec.partition(":")
  if not is_short_name(path):
    return spec
  names = config_names()
  if path not in names:
    raise UserError(f"unknown config {path!r} (flag --{flag}); give a config file path or one of: "
                    f"{', '.join(names) or '(no installed configs found)'}")
  return os.path.join(config_dir(), path + ".py") + colon + argument


def load_config_file(spec: str) -> ml_collections.ConfigDict:
  """Calls get_config() of a config given as 'path.py', 'path.py:argument', 'name' or
  'name:argument' (a short name of an installed config: see `resolve_config_spec`)."""
  path, _, argument = resolve_config_spec(spec).partition(":")
  if not os.path.isfile(path):
    names = config_names()
    hint = f"; or give an installed config by name: {', '.join(names)}" if names else ""
    raise UserError(f"config file {path!r} does not exist (flag --config){hint}")
  module_spec = importlib.util.spec_from_file_location("_mlfun_config", path)
  module = importlib.util.module_from_spec(module_spec)
  try:
    module_spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"config file {path!r} does not load: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise UserError(f"config file {path!r} has no get_config() function (flag --config)")
  call = f"get_config({argument!r})" if argument else "get_config()"
  try:
    config = module.get_config(argument) if argument else module.get_config()
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"config file {path!r}: {call} failed: {type(e).__name__}: {e} "
                    "(flag --config)") from e
  if not isinstance(config, ml_collections.ConfigDict):
    raise UserError(f"config file {path!r}: {call} returned a {type(config).__name__}, not an "
                    "ml_collections.ConfigDict (flag --config)")
  return config


def _flag_value(argv: Sequence[str], name: str) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{name}="):
      return arg.split("=", 1)[1]
    if arg == f"--{name}" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def resolve_config_flag(argv: list[str], config_flag: str = "config") -> list[str]:
  """argv with a short config name in `--config=NAME[:arg]` / `--config NAME[:arg]` replaced by the
  installed config file's path (absl's config flag takes a path).

  Raises:
    UserError: an unknown short name.
  """
  argv = list(argv)
  for i, arg in enumerate(argv):
    if arg.startswith(f"--{config_flag}="):
      argv[i] = f"--{config_flag}=" + resolve_config_spec(arg.split("=", 1)[1], config_flag)
    elif arg == f"--{config_flag}" and i + 1 < len(argv):
      argv[i + 1] = resolve_config_spec(argv[i + 1], config_flag)
  return argv


# [(dotted name, value)] of every leaf field of a config, in the config's order.
flat_fields = config_checks.leaf_fields


def config_fields_help(argv: Sequence[str], config_flag: str = "config") -> str:
  """The text `--help` adds for a tool with a config flag: one line per field of the given config
  with its default value, or how to see them when no config is given."""
  spec = _flag_value(argv, config_flag)
  if spec is None:
    names = ", ".join(config_names())
    return (f"Config fields: add --{config_flag}=NAME (or a config file path) to --help to list a "
            f"config's fields and their defaults; NAME is one of: {names}")
  try:
    config = load_config_file(spec)
  except UserError as e:
    return f"Config fields: {e}"
  lines = [f"Fields of --{config_flag}={spec} with their defaults "
           f"(override any with --{config_flag}.FIELD=VALUE):"]
  for name, value in flat_fields(config):
    lines.append(f"  --{config_flag}.{name}={value if isinstance(value, str) else repr(value)}")
  return "\n".join(lines)


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
  """Drops asyncio's tracebacks of tensorstore read errors ('Task exception was never retrieved',
  'Exception in callback ...') and of callbacks that reach orbax's closed event loop.

  When orbax reads a damaged checkpoint, several of its concurrent reads fail; the first failure
  reaches the user as one DamagedCheckpointError line, the others are left in their asyncio tasks
  or callbacks, and asyncio logs each with its traceback. Other records pass.
  """

  def filter(self, record: python_logging.LogRecord) -> bool:
    if not record.exc_info or record.exc_info[1] is None:
      return True
    error = record.exc_info[1]
    if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
      return False
    return not (isinstance(error, ValueError) and _TENSORSTORE_ERROR.match(str(error)))


class _DropTpuProbe(python_logging.Filter):
  """Drops JAX's INFO line "Unable to initialize backend 'tpu': ..." (JAX probes for a TPU on
  every machine and logs the failed probe); a backend that was asked for and fails still raises."""

  def filter(self, record: python_logging.LogRecord) -> bool:
    return not (record.levelno < python_logging.WARNING
                and str(record.msg).startswith("Unable to initialize backend 'tpu'"))


def asks_for_help(argv: Sequence[str]) -> bool:
  return any(arg in HELP_FLAGS for arg in argv)


def print_help(argv: Sequence[str], main: Callable[[list[str]], None],
               config_flag: str | None) -> None:
  """What absl's --help / --helpfull / --helpxml print, for the tool whose `main` is given, and
  (with a config flag) the config's fields; then exits with status 0.

  absl takes the docstring and short help of `__main__`, which for an installed console script is
  the script's wrapper (no docstring, no flags), and exits with status 1 after help: a request for
  help that got it succeeded.
  """
  app.define_help_flags()
  module = sys.modules.get(main.__module__)
  prog = os.path.basename(argv[0])
  if any(arg.endswith("helpxml") for arg in argv[1:]):
    flags.FLAGS.write_help_in_xml_format(sys.stdout)
    sys.exit(0)
  full = any(arg.endswith("helpfull") for arg in argv[1:])
  doc = (getattr(module, "__doc__", None) or "").strip("\n") or f"USAGE: {prog} [flags]"
  flag_text = flags.FLAGS.get_help() if full else flags.FLAGS.module_help(main.__module__)
  spec = getattr(module, "__spec__", None)
  if main.__module__ == "__main__" and spec is not None:  # python -m mlfun_jax.experiments.X
    flag_text = flag_text.replace("__main__:", f"{spec.name}:", 1)
  print(doc)
  if flag_text:
    print("\nflags:")
    print(flag_text)
  if not full:
    print("\nTry --helpfull to get a list of all flags.")
  if config_flag is not None:
    print()
    print(config_fields_help(argv[1:], config_flag))
  sys.stdout.flush()
  sys.exit(0)


def _finite_float_flags(module_name: str) -> None:
  """Refuses NaN and inf for every float flag the entry point defines (a NaN weight or penalty
  silently empties every answer)."""
  for flag in flags.FLAGS.get_flags_for_module(module_name):
    if isinstance(flag.parser, flags.FloatParser):
      flags.register_validator(
          flag.name, lambda value: value is None or math.isfinite(value),
          message="must be a finite number (not NaN or inf)")


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a bad flag as one `error: ...` line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail(f"{e}".splitlines()[0] if str(e) else type(e).__name__)
    raise  # Not reached: fail exits.


def run(main: Callable[[list[str]], None], config_flag: str | None = "config") -> None:
  """`absl.app.run(main)` after resolving a short config name and checking the config file and its
  overrides; `--help` / `--helpfull` print help (with a config: its fields) and exit 0.

  Also quiets orbax's INFO logging and its noise after a failed read (closed-event-loop and
  unretrieved-task tracebacks), and JAX's failed TPU probe on machines without one, for console
  runs (library users keep all of it).
  """
  python_logging.getLogger("absl").addFilter(_QuietLibraries())
  python_logging.getLogger("asyncio").addFilter(_DropUnretrievedReadErrors())
  python_logging.getLogger("jax._src.xla_bridge").addFilter(_DropTpuProbe())
  sys.unraisablehook = _ignore_closed_event_loop
  if asks_for_help(sys.argv[1:]):
    print_help(sys.argv, main, config_flag)
  if config_flag is not None:
    with user_errors():
      sys.argv = [sys.argv[0]] + resolve_config_flag(sys.argv[1:], config_flag)
      check_config_overrides(sys.argv[1:], config_flag)
  _finite_float_flags(main.__module__)
  app.run(functools.partial(_main_with_usage_line, main), flags_parser=_parse_flags)


def _main_with_usage_line(main: Callable[[list[str]], None], argv: list[str]) -> None:
  """`main(argv)` with a usage error (app.UsageError: missing or unexpected arguments) as one
  `error: ...; see --help` line and exit status 2 (absl prints the whole usage text, status 1)."""
  try:
    main(argv)
  except app.UsageError as e:
    fail(f"{e} (see {os.path.basename(argv[0])} --help)")
