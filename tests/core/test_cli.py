"""The experiment entry points: overrides, one-line errors with exit status 2, predict output."""

import json
import pathlib
import shutil
import subprocess
import sys

import pytest
from PIL import Image

from mlfun_jax.core import checkpoint
from mlfun_jax import data
from tests.conftest import CNN_MNIST_CONFIG
from tests.conftest import REPO_ROOT
from tests.conftest import damage_checkpoint
from tests.conftest import one_device_env
from tests.conftest import run_module

TINY = ['--config.model.conv_features=(8,16)', '--config.model.dense_features=(32,)',
        '--config.batch_size=64', '--config.log_every=50', '--config.eval_every=0']


def assert_one_line_error(process, *fragments: str) -> str:
  """The process failed with status 2 and one 'error: ...' line (no traceback) naming fragments."""
  assert process.returncode == 2, process.stderr[-3000:]
  assert 'Traceback' not in process.stderr
  errors = [line for line in process.stderr.splitlines() if line.startswith('error: ')]
  assert len(errors) == 1, process.stderr[-3000:]
  for fragment in fragments:
    assert fragment in errors[0]
  return errors[0]


@pytest.fixture(scope='module')
def trained_workdir(tmp_path_factory) -> pathlib.Path:
  """A small classifier trained through the CLI with overrides (400 steps on 1 device)."""
  workdir = tmp_path_factory.mktemp('cli') / 'run'
  process = run_module('mlfun_jax.experiments.train',
                       f'--config={CNN_MNIST_CONFIG}', f'--workdir={workdir}',
                       '--config.num_steps=400', '--config.checkpoint_every=200', *TINY,
                       env=one_device_env())
  assert process.returncode == 0, process.stderr[-3000:]
  return workdir


def test_overrides_reach_the_run(trained_workdir):
  meta, step = checkpoint.latest_meta(str(trained_workdir / 'checkpoints'))
  assert step == 400
  assert meta['config']['model']['conv_features'] == [8, 16]
  assert meta['config']['batch_size'] == 64 and meta['config']['num_steps'] == 400
  assert meta['class_names'] == [str(d) for d in range(10)]
  final = [json.loads(l) for l in (trained_workdir / 'metrics.jsonl').read_text().splitlines()]
  assert final[-1]['eval_accuracy'] >= 0.9


def _save_test_digits(directory: pathlib.Path, count: int) -> tuple[list[str], list[int]]:
  """Writes held-out digits as image files in varied formats: PNG, inverted large JPEG, RGB BMP."""
  test = data.load_image_dataset('embedded_mnist').test
  paths = []
  for i in range(count):
    image = Image.fromarray(test.images[i, :, :, 0])
    if i % 3 == 0:
      path = directory / f'digit{i}.png'
      image.save(path)
    elif i % 3 == 1:  # Dark ink on white paper, bigger: predict must invert and resize.
      path = directory / f'digit{i}.jpg'
      Image.fromarray(255 - test.images[i, :, :, 0]).resize((112, 112)).save(path, quality=95)
    else:
      path = directory / f'digit{i}.bmp'
      image.convert('RGB').resize((56, 56)).save(path)
    paths.append(str(path))
  return paths, test.labels[:count].tolist()


def test_predict_prints_top5_json_lines(trained_workdir, tmp_path):
  paths, labels = _save_test_digits(tmp_path, 30)
  process = run_module('mlfun_jax.experiments.predict', f'--workdir={trained_workdir}', *paths)
  assert process.returncode == 0, process.stderr[-3000:]
  lines = [json.loads(line) for line in process.stdout.splitlines()]
  assert [line['path'] for line in lines] == paths
  correct = 0
  for line, label in zip(lines, labels):
    top = line['top']
    assert len(top) == 5
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1.0 + 1e-5
    assert all(name in [str(d) for d in range(10)] for name, _ in top)
    correct += top[0][0] == str(label)
  assert correct >= 26  # >= 87% of 30 held-out digits, whatever their file format.


def test_predict_sigmoid_head_answers_eight_or_not(tmp_path):
  workdir = tmp_path / 'eight'
  process = run_module('mlfun_jax.experiments.train',
                       f'--config={CNN_MNIST_CONFIG}', f'--workdir={workdir}',
                       '--config.num_steps=400', '--config.head=sigmoid',
                       '--config.positive_class=8', *TINY, env=one_device_env())
  assert process.returncode == 0, process.stderr[-3000:]
  final = [json.loads(l) for l in (workdir / 'metrics.jsonl').read_text().splitlines()][-1]
  # Always answering "not 8" would score 0.90 with precision and recall 0.
  assert final['eval_accuracy'] > 0.95
  assert final['eval_precision'] > 0.8 and final['eval_recall'] > 0.6
  paths, _ = _save_test_digits(tmp_path, 3)
  process = run_module('mlfun_jax.experiments.predict', f'--workdir={workdir}', *paths)
  assert process.returncode == 0, process.stderr[-3000:]
  for line in process.stdout.splitlines():
    top = json.loads(line)['top']
    assert {name for name, _ in top} == {'8', 'not 8'}
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)


def test_unknown_config_field(tmp_path):
  process = run_module('mlfun_jax.experiments.train', f'--config={CNN_MNIST_CONFIG}',
                       f'--workdir={tmp_path}', '--config.model.widht=3')
  assert_one_line_error(process, "unknown config field 'model.widht'", 'conv_features')


def test_missing_config_file(tmp_path):
  process = run_module('mlfun_jax.experiments.train',
                       '--config=no/such/config.py', f'--workdir={tmp_path}')
  assert_one_line_error(process, 'no/such/config.py', 'does not exist')


def test_batch_not_divisible_by_device_count(tmp_path):
  process = run_module('mlfun_jax.experiments.train',
                       f'--config={CNN_MNIST_CONFIG}', f'--workdir={tmp_path}',
                       '--config.batch_size=100')
  assert_one_line_error(process, '100', '8 devices', 'batch_size')


def test_missing_data_path(tmp_path):
  process = run_module('mlfun_jax.experiments.train',
                       f'--config={CNN_MNIST_CONFIG}', f'--workdir={tmp_path}',
                       '--config.dataset=mnist', '--config.data_dir=/no/such/mnist')
  assert_one_line_error(process, '/no/such/mnist')


def test_diverging_loss_is_one_line_naming_the_step(tmp_path):
  process = run_module('mlfun_jax.experiments.train',
                       f'--config={CNN_MNIST_CONFIG}', f'--workdir={tmp_path}',
                       '--config.optimizer.learning_rate=1e12', '--config.num_steps=30',
                       '--config.model.conv_features=(8,16)')
  assert_one_line_error(process, 'train loss is nan at step', 'diverged')


@pytest.mark.parametrize('flags,culprit', [
    (('--num_processes=2', '--process_id=0'), '--coordinator_address'),
    (('--coordinator_address=127.0.0.1:1234', '--num_processes=2', '--process_id=2'),
     '--process_id=2'),
    (('--coordinator_address=127.0.0.1:1234', '--process_id=0'), '--num_processes=0'),
])
def test_incomplete_multiprocess_flags_are_named(tmp_path, flags, culprit):
  process = run_module('mlfun_jax.experiments.train',
                       f'--config={CNN_MNIST_CONFIG}', f'--workdir={tmp_path}',
                       *flags)
  assert_one_line_error(process, culprit)


def test_corrupt_checkpoint(trained_workdir, tmp_path):
  workdir = tmp_path / 'copy'
  shutil.copytree(trained_workdir, workdir)
  for step_dir in (workdir / 'checkpoints').iterdir():
    damage_checkpoint(step_dir)
  process = run_module('mlfun_jax.experiments.predict', f'--workdir={workdir}', 'any.png')
  assert_one_line_error(process, 'checkpoints/400', 'damaged')
  process = run_module('mlfun_jax.experiments.train',
                       f'--config={CNN_MNIST_CONFIG}', f'--workdir={workdir}',
                       '--config.num_steps=500', '--config.checkpoint_every=200', *TINY)
  assert_one_line_error(process, 'checkpoints/400', 'damaged')


def test_predict_errors_name_the_culprit(trained_workdir, tmp_path):
  not_an_image = tmp_path / 'notes.png'
  not_an_image.write_text('hello')
  process = run_module('mlfun_jax.experiments.predict',
                       f'--workdir={trained_workdir}', str(not_an_image))
  assert_one_line_error(process, 'notes.png', 'not a readable image')
  process = run_module('mlfun_jax.experiments.predict',
                       f'--workdir={tmp_path / "nothing"}', 'x.png')
  assert_one_line_error(process, 'nothing')


UNRETRIEVED_TASKS = '''
import asyncio, gc, logging, sys
from mlfun_jax.core import cli
logging.basicConfig()
if sys.argv[1] == "filtered":
  logging.getLogger("asyncio").addFilter(cli._DropUnretrievedReadErrors())

async def fail(message):
  raise ValueError(message)

async def start(message):
  asyncio.ensure_future(fail(message))
  await asyncio.sleep(0.01)

for message in ["OUT_OF_RANGE: Error reading params in OCDBT database", "a bug of ours"]:
  asyncio.run(start(message))
  gc.collect()
'''


@pytest.mark.parametrize('mode', ['filtered', 'plain'])
def test_unretrieved_tensorstore_read_errors_print_no_traceback(mode):
  """A damaged checkpoint leaves failed reads in asyncio tasks; the CLI drops their tracebacks
  (the first failure already reached the user) but keeps those of any other error."""
  process = subprocess.run([sys.executable, '-c', UNRETRIEVED_TASKS, mode], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60, check=True)
  assert process.stderr.count('Task exception was never retrieved') == (
      1 if mode == 'filtered' else 2), process.stderr
  assert 'a bug of ours' in process.stderr
  assert ('OUT_OF_RANGE' in process.stderr) == (mode == 'plain')
