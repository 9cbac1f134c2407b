"""Shared pytest fixtures and helpers.

The whole test session runs on 8 simulated CPU devices (set before JAX is imported), so pmap code
is exercised with real cross-device collectives.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

# Tests compile thousands of tiny XLA programs and run each a few times: compiling dominates. XLA's
# lowest backend optimisation level compiles ~30% faster, and its older CPU fusion code generator
# (instead of the MLIR fusion emitters) about twice as fast again; same semantics (speed is measured
# in benchmarks/, never here). The processes the tests start inherit them through XLA_FLAGS.
COMPILE_FAST_FLAGS = '--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false'
os.environ.setdefault('XLA_FLAGS', f'--xla_force_host_platform_device_count=8 {COMPILE_FAST_FLAGS}')
# One persistent XLA compilation cache per test run, shared by the xdist workers (they inherit the
# main process' environment) and the processes the tests start: many tests compile the same tiny
# programs, and each compiles once. A fresh folder per run, removed at its end.
_OWN_CACHE = 'JAX_COMPILATION_CACHE_DIR' not in os.environ
if _OWN_CACHE:
  os.environ['JAX_COMPILATION_CACHE_DIR'] = tempfile.mkdtemp(prefix='mlfun_jax_test_xla_cache_')
# Likewise mlfun_jax's own cache folder (dlib's model files read into arrays, image caches): never
# the user's ~/.cache.
_OWN_DATA_CACHE = 'MLFUN_CACHE_DIR' not in os.environ
if _OWN_DATA_CACHE:
  os.environ['MLFUN_CACHE_DIR'] = tempfile.mkdtemp(prefix='mlfun_jax_test_cache_')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

from tests import zygote  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
CNN_MNIST_CONFIG = REPO_ROOT / 'experiments' / 'configs' / 'cnn_mnist.py'


# The groups that take longest (seconds alone on 2 cores, measured), handed out first so that no
# worker is left running a long group while the other one idles at the end.
LONGEST_GROUPS_FIRST = ('gan', 'translation', 'autoencoder', 'faces', 'speech',
                        'core/test_train_loop.py', 'char_rnn', 'adversarial',
                        'core/test_multiprocess.py', 'core/test_cli.py', 'core/test_docs.py',
                        'classification', 'core/test_entry_points.py')


def _group(item) -> str:
  parts = pathlib.Path(item.path).relative_to(REPO_ROOT / 'tests').parts
  shared_floor = len(parts) == 1 or parts[0] in ('core', 'data', 'models')
  return '/'.join(parts) if shared_floor else parts[0]


def pytest_configure(config):
  # pytest-xdist would order the groups by their number of tests; keep ours (longest first).
  if hasattr(config.option, 'loadscopereorder'):
    config.option.loadscopereorder = False


@pytest.hookimpl(tryfirst=True)  # Before pytest-xdist's hook turns the marks into groups.
def pytest_collection_modifyitems(items):
  """Groups tests for `pytest -n 2 --dist loadgroup`: a family folder runs on one worker, so its
  session-scoped trained fixtures are built once; core, data and models tests go file by file.
  The longest groups come first."""
  rank = {group: i for i, group in enumerate(LONGEST_GROUPS_FIRST)}
  items.sort(key=lambda item: rank.get(_group(item), len(rank)))  # Stable: file order within.
  for item in items:
    item.add_marker(pytest.mark.xdist_group(_group(item)))


def pytest_sessionfinish(session):  # pylint: disable=unused-argument
  if _OWN_CACHE and 'PYTEST_XDIST_WORKER' not in os.environ:
    shutil.rmtree(os.environ['JAX_COMPILATION_CACHE_DIR'], ignore_errors=True)
  if _OWN_DATA_CACHE and 'PYTEST_XDIST_WORKER' not in os.environ:
    shutil.rmtree(os.environ['MLFUN_CACHE_DIR'], ignore_errors=True)


def find_shared_data_dir() -> pathlib.Path:
  """The read-only shared datasets folder: $MLFUN_DATA_DIR, else <repo>/../shared/data.

  The folder may be absent (a user's fresh clone); callers decide whether to skip.
  """
  env = os.environ.get('MLFUN_DATA_DIR')
  return pathlib.Path(env) if env else REPO_ROOT.parent / 'shared' / 'data'


@pytest.fixture(scope='module', autouse=True)
def _release_compiled_programs():
  """Drops JAX's compiled executables after each test module.

  One pytest process compiles thousands of XLA programs; each keeps memory mappings of its
  machine code, and the whole suite in one process crossed the kernel's limit on mappings per
  process (vm.max_map_count, 65,530), after which XLA segfaulted while compiling.
  """
  yield
  import jax  # pylint: disable=g-import-not-at-top
  report = bool(os.environ.get('MLFUN_TEST_REPORT_MAPS'))
  before = _memory_map_count() if report else None
  jax.clear_caches()
  gc.collect()
  if report:
    sys.stderr.write(f' [memory maps: {before} -> {_memory_map_count()}] ')


def _memory_map_count() -> int:
  try:
    with open('/proc/self/maps') as maps:
      return sum(1 for _ in maps)
  except OSError:  # Not Linux.
    return -1


@pytest.fixture(scope='session')
def shared_data_dir() -> pathlib.Path:
  """`find_shared_data_dir()`; skips the test when that folder is absent (fails under CI=true)."""
  path = find_shared_data_dir()
  if not path.is_dir():
    message = f'shared data folder {path} is absent (set MLFUN_DATA_DIR to its location)'
    if os.environ.get('CI', '').lower() == 'true':
      pytest.fail(message + '; CI must run the tests on real data')
    pytest.skip(message)
  return path


def small_cnn_config(**overrides):
  """cnn_mnist.py shrunk for tests: a tiny CNN, batch 64, no dropout or shifts unless overridden."""
  from mlfun_jax.core import cli  # pylint: disable=g-import-not-at-top
  config = cli.load_config_file(str(CNN_MNIST_CONFIG))
  config.model.conv_features = (8, 16)
  config.model.dense_features = (32,)
  config.model.dropout_rate = 0.0
  config.augment.shift = 0
  config.batch_size = 64
  config.num_steps = 20
  config.log_every = 10
  config.eval_every = 0
  config.checkpoint_every = 10
  return apply_overrides(config, overrides)


def apply_overrides(config, overrides: dict):
  """Sets config fields named with '__' for dots (model__dropout_rate=0.1); returns `config`."""
  for dotted, value in overrides.items():
    node = config
    *parents, leaf = dotted.split('__')
    for key in parents:
      node = node[key]
    node[leaf] = value
  return config


def damage_checkpoint(step_dir: pathlib.Path) -> None:
  """Truncates the largest data file of a saved state to half its size (a torn write)."""
  largest = max((p for p in (step_dir / 'state').rglob('*') if p.is_file()),
                key=lambda p: p.stat().st_size)
  size = largest.stat().st_size
  with open(largest, 'r+b') as f:
    f.truncate(size // 2)


def run_module(module: str, *args: str, env: dict[str, str] | None = None, input: str | None = None,  # pylint: disable=redefined-builtin
               timeout: float = 300) -> subprocess.CompletedProcess:
  """Runs `python -m module args...` from the repo root (forked from tests/zygote.py's
  pre-imported process); returns the finished process, its output captured as text."""
  full_env = {**os.environ, **(env or {})}
  return zygote.run([sys.executable, '-m', module, *args], cwd=REPO_ROOT, env=full_env,
                    input=input, timeout=timeout)


def one_device_env(devices: int = 1, fast_compile: bool = False) -> dict[str, str]:
  """Environment for a started process that trains hundreds of steps: `devices` CPU devices at
  XLA's default optimisation (about half the time of 8 simulated devices on the same 2 cores), or
  with COMPILE_FAST_FLAGS for a short run whose time goes to compiling."""
  flags = f'--xla_force_host_platform_device_count={devices}'
  return {'XLA_FLAGS': f'{flags} {COMPILE_FAST_FLAGS}' if fast_compile else flags}


_TRAIN_SCRIPT = """
import json, pickle, sys
from mlfun_jax import families
with open(sys.argv[1], 'rb') as f:
  config = pickle.load(f)
_, summary = families.train_and_evaluate(config, sys.argv[2])
print(json.dumps({k: float(v) for k, v in summary.items()}))
"""


def train_in_fresh_process(config, workdir, devices: int = 1,
                           fast_compile: bool = False) -> dict[str, float]:
  """`families.train_and_evaluate(config, workdir)` in a new Python process on `devices` CPU
  devices; returns the summary metrics.

  For the trained fixtures that many tests read: a run of hundreds of steps takes about half as
  long on 1 device as on this session's 8 simulated devices (the same 2 cores), and its programs
  are optimised for speed (XLA's default) rather than compile time. Short runs whose time goes to
  compiling pass `fast_compile` (the tiny GAN: 56 s -> 22 s; a 300-step run of the tiny digit CNN:
  15 s -> 10 s; but 400 autoencoder steps or 150 face steps run slower with it). The tests assert
  8-vs-1 equality elsewhere.
  """
  import pickle  # pylint: disable=g-import-not-at-top
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  config_path = workdir.parent / f'{workdir.name}_config.pkl'
  config_path.write_bytes(pickle.dumps(config))
  env = {**os.environ, **one_device_env(devices, fast_compile)}
  result = zygote.run([sys.executable, '-c', _TRAIN_SCRIPT, str(config_path), str(workdir)],
                      cwd=REPO_ROOT, env=env, timeout=1800)
  assert result.returncode == 0, result.stderr[-3000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def train_once_per_run(name: str, config, tmp_path_factory,
                       fast_compile: bool = False) -> tuple[pathlib.Path, dict[str, float]]:
  """(workdir, summary) of `train_in_fresh_process(config, ...)`, trained once per test run even
  across pytest-xdist workers: the first worker that asks trains under a file lock, the others wait
  for it and read the same workdir (read-only)."""
  import fcntl  # pylint: disable=g-import-not-at-top
  # Under xdist each worker's base folder sits in the run's own folder; without xdist, in the
  # folder of all runs: then train into this run's base folder.
  xdist = 'PYTEST_XDIST_WORKER' in os.environ
  root = tmp_path_factory.getbasetemp().parent if xdist else tmp_path_factory.getbasetemp()
  root = root / 'trained_once'
  root.mkdir(exist_ok=True)
  workdir, summary_path = root / name, root / f'{name}.json'
  with open(root / f'{name}.lock', 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not summary_path.exists():
      summary_path.write_text(json.dumps(train_in_fresh_process(config, workdir,
                                                                fast_compile=fast_compile)))
  return workdir, json.loads(summary_path.read_text())


def refused(call, match: str) -> str:
  """Asserts that `call()` raises one input-convention error whose one-line message matches
  `match` (a regex); returns the message."""
  from mlfun_jax.core import checks  # pylint: disable=g-import-not-at-top
  with pytest.raises(checks.InputConventionError, match=match) as error:
    call()
  return one_line(error)


@contextlib.contextmanager
def raises_one_line(match):
  """pytest.raises for an InputError (a UserError and a ValueError) of one matching line."""
  from mlfun_jax.core import checks  # pylint: disable=g-import-not-at-top
  from mlfun_jax.core.errors import UserError  # pylint: disable=g-import-not-at-top
  with pytest.raises(checks.InputError, match=match) as info:
    yield info
  assert '\n' not in str(info.value)
  assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def one_line(error: pytest.ExceptionInfo) -> str:
  """The message of a raised UserError/ValueError, asserted to be one line (JAX may append its
  traceback note after a '-----' line; that part is not the message)."""
  from mlfun_jax.core.errors import UserError  # pylint: disable=g-import-not-at-top
  assert isinstance(error.value, (UserError, ValueError)), error.value
  text = str(error.value).split('\n-----', 1)[0]
  assert '\n' not in text, text
  return text
