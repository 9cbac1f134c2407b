"""Many processes and changing topologies, run as real processes with launch/multiprocess.sh.

2 processes x 1 CPU device (jax.distributed over gloo on localhost) streaming their halves of each
batch against 1 process x 2 devices reading the data from memory; SIGTERM, then kill -9, of a
2-process run, each followed by the same command (the first resume maps the step with shard_map
instead of pmap); checkpoints moved between 8 devices and 1 device, and from
1 device to 2 processes x 4 devices under shard_map (the global device index with several devices
per process).
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from mlfun_jax.core import checkpoint
from mlfun_jax.core import metrics_writer
from tests.conftest import CNN_MNIST_CONFIG
from tests.conftest import COMPILE_FAST_FLAGS
from tests.conftest import damage_checkpoint
from tests.conftest import REPO_ROOT
from tests.conftest import run_module

NUM_STEPS = 60
# The same run in every topology: global batch 128, dropout and random shifts on (their keys depend
# on the global device index, so 2 x 1 devices must draw exactly what 1 x 2 devices draw).
OVERRIDES = (f'--config.num_steps={NUM_STEPS}', '--config.model.conv_features=(8,16)',
             '--config.model.dense_features=(32,)', '--config.model.dropout_rate=0.3',
             '--config.augment.shift=2', '--config.batch_size=128', '--config.log_every=10',
             '--config.eval_every=30', '--config.checkpoint_every=10',
             '--config.keep_checkpoints=10')
# Without per-device randomness the numbers do not depend on the device count at all.
NO_RANDOMNESS = ('--config.model.dropout_rate=0.0', '--config.augment.shift=0')
TIMEOUT_S = 240


def _env() -> dict[str, str]:
  # --cpu_devices decides the device count; the suite's COMPILE_FAST_FLAGS halve each launch's CPU
  # time (2 x 1 and 1 x 2 devices still agree to 1e-4, resumed and straight runs exactly).
  return {**os.environ, 'XLA_FLAGS': COMPILE_FAST_FLAGS, 'PYTHON': sys.executable,
          'MLFUN_KILL_GRACE_S': '3'}


def _command(workdir: pathlib.Path, processes: int, devices: int, extra=()) -> list[str]:
  args = [*OVERRIDES, *extra]
  if processes == 1:
    return [sys.executable, '-m', 'mlfun_jax.experiments.train', f'--config={CNN_MNIST_CONFIG}',
            f'--workdir={workdir}', f'--cpu_devices={devices}', *args]
  return ['bash', 'launch/multiprocess.sh', str(processes), str(CNN_MNIST_CONFIG), str(workdir),
          f'--cpu_devices={devices}', *args]


def start(workdir, processes, devices, extra=()) -> subprocess.Popen:
  return subprocess.Popen(_command(workdir, processes, devices, extra), cwd=REPO_ROOT, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def train(workdir, processes, devices, extra=()) -> str:
  """Runs to the end; returns the output (process 0's log for a multi-process run)."""
  if processes == 1:  # Forked from the suite's pre-imported process: no interpreter start.
    command = _command(workdir, processes, devices, extra)
    result = run_module(*command[2:], env={'XLA_FLAGS': COMPILE_FAST_FLAGS}, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr + result.stdout
  process = start(workdir, processes, devices, extra)
  output, _ = process.communicate(timeout=TIMEOUT_S)
  assert process.returncode == 0, output[-3000:]
  return output


def saved_params(workdir: pathlib.Path, step: int | None = None) -> dict:
  """The params of checkpoint `step` (default: the newest) as a nested dict of numpy arrays."""
  directory = workdir / 'checkpoints'
  step = step if step is not None else checkpoint.Checkpointer(str(directory)).steps()[-1]
  state = ocp.StandardCheckpointer().restore(directory / str(step) / 'state')
  return {'step': int(state['step']), 'params': state['params']}


def assert_params_close(a: dict, b: dict, rtol: float, atol: float) -> None:
  flat_a, flat_b = _flatten(a['params']), _flatten(b['params'])
  assert flat_a.keys() == flat_b.keys()
  for name in flat_a:
    np.testing.assert_allclose(flat_a[name], flat_b[name], rtol=rtol, atol=atol, err_msg=name)


def _flatten(tree, prefix=''):
  if isinstance(tree, dict):
    return {k: v for key, sub in tree.items() for k, v in _flatten(sub, f'{prefix}/{key}').items()}
  return {prefix: np.asarray(tree)}


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
  deadline = time.time() + TIMEOUT_S
  while not condition():
    assert process.poll() is None, f'the run ended before {what}: {process.stdout.read()[-3000:]}'
    assert time.time() < deadline, f'timed out waiting for {what}'
    time.sleep(0.1)


def logged_steps(workdir: pathlib.Path) -> list[int]:
  path = workdir / metrics_writer.METRICS_FILE
  if not path.exists():
    return []
  return [json.loads(line)['step'] for line in path.read_text().splitlines() if line.strip()]


def pids_of(*needles: str) -> list[int]:
  """Processes whose command line holds every needle (read from /proc: no psutil, no pgrep)."""
  found = []
  for entry in pathlib.Path('/proc').iterdir():
    if not entry.name.isdigit():
      continue
    try:
      command = (entry / 'cmdline').read_bytes().replace(b'\0', b' ').decode()
    except OSError:
      continue
    if all(needle in command for needle in needles) and 'bash' not in command.split(' ')[0]:
      found.append(int(entry.name))
  return found


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  """Straight runs every test compares against: 1 process x 2 devices reading the data from
  memory, 2 processes x 1 device streaming it (each process reads only its half of every batch,
  tests/data/test_stream.py counts it: the same batches)."""
  root = tmp_path_factory.mktemp('multiprocess')
  train(root / 'one_by_2', 1, 2)
  output = train(root / 'two_by_1', 2, 1, ('--config.input_pipeline=stream',))
  return root, output


def test_two_processes_match_one_process_with_as_many_devices(runs):
  root, output = runs
  one, two = saved_params(root / 'one_by_2'), saved_params(root / 'two_by_1')
  assert one['step'] == two['step'] == NUM_STEPS
  assert_params_close(one, two, rtol=1e-4, atol=1e-6)
  assert 'on 2 devices (2 processes), global batch 128' in output

  # Same metrics (over all processes' examples), written once, by process 0 only.
  records = {name: metrics_writer.read_metrics(str(root / name))
             for name in ('one_by_2', 'two_by_1')}
  assert [r['step'] for r in records['two_by_1']] == [r['step'] for r in records['one_by_2']]
  evals = [[r for r in records[name] if 'eval_accuracy' in r] for name in ('one_by_2', 'two_by_1')]
  assert [r['eval_count'] for r in evals[1]] == [1000, 1000]  # Every test digit once.
  np.testing.assert_allclose([r['eval_loss'] for r in evals[1]],
                             [r['eval_loss'] for r in evals[0]], rtol=1e-3)
  assert evals[1][-1]['eval_accuracy'] > 0.8
  worker_log = (root / 'two_by_1' / 'logs' / 'process_1.log').read_text()
  assert 'train_loss' not in worker_log and 'Training steps' not in worker_log


def test_sigterm_then_kill_9_then_relaunch_resume_to_the_same_parameters(runs, tmp_path):
  """One run stopped twice: SIGTERM (a graceful stop), then the same command; kill -9 of one
  process with the newest checkpoint damaged, then the same command again (both processes fall
  back to the previous checkpoint). It ends with the straight run's parameters."""
  root, _ = runs
  # SIGTERM: both processes stop at the same step, each after a checkpoint, and exit 0.
  process = start(tmp_path, 2, 1)
  wait_for(lambda: any(step >= 10 for step in logged_steps(tmp_path)), process, 'step 10')
  process.send_signal(signal.SIGTERM)
  output, _ = process.communicate(timeout=TIMEOUT_S)
  assert process.returncode == 0, output[-3000:]
  stopped_at = checkpoint.Checkpointer(str(tmp_path / 'checkpoints')).steps()[-1]
  assert 10 <= stopped_at < NUM_STEPS - 20, output[-3000:]  # Room for two more checkpoints.
  for i in (0, 1):
    log = (tmp_path / 'logs' / f'process_{i}.log').read_text()
    assert 'stopping after this step' in log

  # The same command, mapping the step with shard_map instead of pmap, resumes; once it has
  # written two periodic checkpoints, kill -9 process 1.
  second_periodic = (stopped_at // 10 + 2) * 10
  process = start(tmp_path, 2, 1, ('--config.parallelism=shard_map',))
  wait_for(lambda: (tmp_path / 'checkpoints' / str(second_periodic)).is_dir(), process,
           f'checkpoint {second_periodic}')
  (victim,) = pids_of('mlfun_jax.experiments.train', f'--workdir={tmp_path}', '--process_id=1')
  os.kill(victim, signal.SIGKILL)
  output, _ = process.communicate(timeout=TIMEOUT_S)
  assert f'Resumed from step {stopped_at}' in output
  assert process.returncode != 0  # The launcher stopped the other process and reports the failure.
  assert not pids_of('mlfun_jax.experiments.train', f'--workdir={tmp_path}')
  saved = checkpoint.Checkpointer(str(tmp_path / 'checkpoints')).steps()
  assert second_periodic <= saved[-1] < NUM_STEPS, (saved, output[-3000:])
  damage_checkpoint(tmp_path / 'checkpoints' / str(saved[-1]))

  output = train(tmp_path, 2, 1)
  assert f'Resumed from step {saved[-2]}' in output
  for i in (0, 1):
    log = (tmp_path / 'logs' / f'process_{i}.log').read_text()
    assert f'checkpoints/{saved[-1]} is damaged' in log  # A warning in every process.
  assert (tmp_path / 'checkpoints' / f'{saved[-1]}.damaged').is_dir()
  assert_params_close(saved_params(tmp_path), saved_params(root / 'two_by_1'), rtol=1e-6, atol=0)
  # No step logged twice: the straight run's log steps plus the step where SIGTERM stopped it.
  extra = [stopped_at] if stopped_at % 10 else []
  assert logged_steps(tmp_path) == sorted(logged_steps(root / 'two_by_1') + extra)


def _fork_at(source: pathlib.Path, step: int, destination: pathlib.Path) -> None:
  """A copy of a run's workdir as it was at checkpoint `step` (later checkpoints removed)."""
  shutil.copytree(source, destination)
  for path in (destination / 'checkpoints').iterdir():
    if path.name.isdigit() and int(path.name) > step:
      shutil.rmtree(path)


def test_checkpoints_move_between_eight_devices_and_one(tmp_path):
  train(tmp_path / 'eight', 1, 8, NO_RANDOMNESS)
  # 8 devices -> 1 device: resume at step 30 on one device.
  _fork_at(tmp_path / 'eight', 30, tmp_path / 'one')
  output = train(tmp_path / 'one', 1, 1, NO_RANDOMNESS)
  assert 'Resumed from step 30' in output and 'on 1 devices' in output
  assert_params_close(saved_params(tmp_path / 'one'), saved_params(tmp_path / 'eight'),
                      rtol=2e-3, atol=2e-5)
  # ... and back: resume that one-device run at step 40 on 8 devices of 2 processes, with the
  # step mapped by shard_map (jit over a mesh of both processes' devices) instead of pmap.
  _fork_at(tmp_path / 'one', 40, tmp_path / 'back')
  output = train(tmp_path / 'back', 2, 4, (*NO_RANDOMNESS, '--config.parallelism=shard_map'))
  assert 'Resumed from step 40' in output and 'on 8 devices (2 processes)' in output
  assert_params_close(saved_params(tmp_path / 'back'), saved_params(tmp_path / 'eight'),
                      rtol=2e-3, atol=2e-5)


def test_predict_on_one_device_from_a_two_process_checkpoint(runs, tmp_path):
  root, _ = runs
  from mlfun_jax.data import embedded  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  test = embedded.load_embedded_mnist().test
  paths = []
  for i in range(20):
    paths.append(str(tmp_path / f'digit_{i}.png'))
    Image.fromarray(test.images[i][..., 0]).save(paths[-1])
  answers = {}
  for devices in (1, 8):
    result = run_module('mlfun_jax.experiments.predict', f'--workdir={root / "two_by_1"}', *paths,
                        env={'XLA_FLAGS': f'--xla_force_host_platform_device_count={devices} '
                                          f'{COMPILE_FAST_FLAGS}'},
                        timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    answers[devices] = [json.loads(line)['top'] for line in result.stdout.splitlines()]
  assert len(answers[1]) == len(paths)
  correct = sum(top[0][0] == str(label) for top, label in zip(answers[1], test.labels))
  assert correct >= 16  # >= 80% of 20 held-out digits after 60 steps.
  for top_1, top_8 in zip(answers[1], answers[8]):
    assert [name for name, _ in top_1] == [name for name, _ in top_8]
    np.testing.assert_allclose([p for _, p in top_1], [p for _, p in top_8], rtol=1e-4)
