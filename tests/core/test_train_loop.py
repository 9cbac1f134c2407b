"""The generic loop: learning on real digits, exact resume, damaged checkpoints, logs."""

import pathlib
import re
import signal
import struct
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from mlfun_jax.core import checkpoint
from mlfun_jax.core import config as core_config
from mlfun_jax.core import metrics_writer
from mlfun_jax import families
from mlfun_jax.core import train
from mlfun_jax.core import warm_start
from mlfun_jax.core.errors import UserError
from tests.conftest import CNN_MNIST_CONFIG
from tests.conftest import damage_checkpoint
from tests.conftest import REPO_ROOT
from tests.conftest import small_cnn_config


def assert_trees_equal(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def read_tensorboard_scalars(directory: pathlib.Path) -> dict[str, list[tuple[int, float]]]:
  """Parses TensorBoard event files (TFRecord framing + Event protos) without TensorFlow."""
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  scalars = {}
  for path in directory.glob('events.out.tfevents.*'):
    raw = path.read_bytes()
    offset = 0
    while offset < len(raw):
      (length,) = struct.unpack('<Q', raw[offset:offset + 8])
      event = event_pb2.Event.FromString(raw[offset + 12:offset + 12 + length])
      offset += 12 + length + 4
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
  return scalars


def test_loss_falls_and_accuracy_rises_on_real_digits(tmp_path):
  config = small_cnn_config(num_steps=150, batch_size=64, eval_every=50)
  config.optimizer.learning_rate = 5e-3
  state, summary = families.train_and_evaluate(config, str(tmp_path))
  records = metrics_writer.read_metrics(str(tmp_path))
  losses = [r['train_loss'] for r in records if 'train_loss' in r]
  accuracies = [r['eval_accuracy'] for r in records if 'eval_accuracy' in r]
  assert losses[-1] < 0.5 * losses[0]
  assert accuracies == sorted(accuracies) or accuracies[-1] >= max(accuracies) - 0.01
  assert summary['eval_accuracy'] >= 0.90  # 1,000 held-out real MNIST digits.
  assert summary['eval_count'] == 1000
  assert int(state.step) == 150


def test_metrics_jsonl_tensorboard_events_and_a_profile_trace(tmp_path):
  config = small_cnn_config(num_steps=20, log_every=10, eval_every=10, profile_steps=(12, 14))
  families.train_and_evaluate(config, str(tmp_path))
  records = metrics_writer.read_metrics(str(tmp_path))
  assert [r['step'] for r in records] == [10, 10, 20, 20]
  assert {'train_loss', 'train_accuracy', 'steps_per_sec', 'examples_per_sec',
          'input_wait_share'} <= set(records[0])
  assert all(0 <= r['input_wait_share'] < 1 for r in records if 'train_loss' in r)
  # One jax.profiler trace, where TensorBoard's profile plugin looks for it.
  (trace,) = (tmp_path / 'tensorboard' / 'plugins' / 'profile').glob('*/*.xplane.pb')
  assert trace.stat().st_size > 1000
  assert {'eval_loss', 'eval_accuracy'} <= set(records[1])
  scalars = read_tensorboard_scalars(tmp_path / 'tensorboard')
  assert [s for s, _ in scalars['train_loss']] == [10, 20]
  assert scalars['eval_accuracy'][-1][1] == pytest.approx(records[-1]['eval_accuracy'])


def test_stop_and_resume_equals_straight_run(tmp_path):
  # Dropout and random shifts on: resuming must also restore the random streams.
  overrides = dict(num_steps=20, checkpoint_every=10, model__dropout_rate=0.3, augment__shift=2)
  straight_state, _ = families.train_and_evaluate(small_cnn_config(**overrides), str(tmp_path / 'a'))

  half_state, _ = families.train_and_evaluate(small_cnn_config(**overrides), str(tmp_path / 'b'),
                                           stop_after_step=10)
  assert int(half_state.step) == 10
  resumed_state, _ = families.train_and_evaluate(small_cnn_config(**overrides), str(tmp_path / 'b'))

  assert int(resumed_state.step) == int(straight_state.step) == 20
  assert_trees_equal(resumed_state.params, straight_state.params)
  assert_trees_equal(resumed_state.opt_state, straight_state.opt_state)
  records = metrics_writer.read_metrics(str(tmp_path / 'b'))
  # Each log step once, in order: the stopped run's step-10 line is not repeated by the resume.
  assert [r['step'] for r in records if 'train_loss' in r] == [10, 20]

  # Stopped under shard_map, resumed under pmap: the same run.
  families.train_and_evaluate(small_cnn_config(**overrides, parallelism='shard_map'),
                              str(tmp_path / 'c'), stop_after_step=10)
  resumed_state, _ = families.train_and_evaluate(small_cnn_config(**overrides), str(tmp_path / 'c'))
  for a, b in zip(jax.tree.leaves(resumed_state), jax.tree.leaves(straight_state)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_grad_accumulation_of_k_micro_batches_equals_one_k_times_larger_batch(tmp_path):
  """4 micro-batches of 16 per update (optax.MultiSteps) against batches of 64: the data stream
  is the same examples in the same order, so 3 updates give the same parameters."""
  large, _ = families.train_and_evaluate(small_cnn_config(num_steps=3, batch_size=64),
                                         str(tmp_path / 'large'))
  accumulated, _ = families.train_and_evaluate(
      small_cnn_config(num_steps=12, batch_size=16, grad_accum_steps=4), str(tmp_path / 'micro'))
  assert int(accumulated.step) == 12 and int(large.step) == 3
  for a, b in zip(jax.tree.leaves(accumulated.params), jax.tree.leaves(large.params)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  initial = families.train_and_evaluate(small_cnn_config(num_steps=1, batch_size=64,
                                                         optimizer__learning_rate=0.0),
                                        str(tmp_path / 'initial'))[0]
  assert not np.allclose(jax.tree.leaves(accumulated.params)[0],
                         jax.tree.leaves(initial.params)[0])


def test_resume_skips_a_damaged_latest_checkpoint(tmp_path, caplog):
  config = small_cnn_config(num_steps=30, checkpoint_every=10)
  straight_state, _ = families.train_and_evaluate(config, str(tmp_path / 'a'))
  families.train_and_evaluate(config, str(tmp_path / 'b'), stop_after_step=20)
  checkpoints = tmp_path / 'b' / 'checkpoints'
  damage_checkpoint(checkpoints / '20')

  resumed_state, _ = families.train_and_evaluate(config, str(tmp_path / 'b'))
  assert (checkpoints / '20.damaged').is_dir()  # Set aside, not deleted.
  warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
  assert any('checkpoints/20 is damaged' in w for w in warnings), warnings
  assert_trees_equal(resumed_state.params, straight_state.params)


def test_every_checkpoint_damaged_is_a_clear_error(tmp_path):
  families.train_and_evaluate(small_cnn_config(num_steps=10), str(tmp_path))
  damage_checkpoint(tmp_path / 'checkpoints' / '10')
  with pytest.raises(UserError, match=r'checkpoint .*checkpoints/10 is damaged'):
    families.train_and_evaluate(small_cnn_config(num_steps=20), str(tmp_path))


def test_resume_with_another_model_config_is_refused(tmp_path):
  families.train_and_evaluate(small_cnn_config(num_steps=10), str(tmp_path))
  with pytest.raises(UserError, match=r'model.conv_features'):
    families.train_and_evaluate(small_cnn_config(num_steps=20, model__conv_features=(4, 8)),
                             str(tmp_path))


def test_config_fields_added_later_count_as_their_old_behaviour():
  saved = {'model': {'latent': 100}, 'num_steps': 10}
  added = {'model.categorical_code': 0}
  current = {'model': {'latent': 100, 'categorical_code': 0}, 'num_steps': 10}
  assert checkpoint.config_differences(saved, current, added_later=added) == []
  assert checkpoint.config_differences(saved, current) == ['model.categorical_code: None -> 0']
  current['model']['categorical_code'] = 10  # Turned on: not what the saved run did.
  assert checkpoint.config_differences(saved, current, added_later=added) == [
      'model.categorical_code: 0 -> 10']
  assert checkpoint.config_differences(  # A saved value is compared as it is.
      {'model': {'latent': 100, 'categorical_code': 10}}, {'model': {'latent': 100}},
      added_later=added) == ['model.categorical_code: 10 -> None']
  gan_added = families.config_module('gan').FIELDS_ADDED_LATER
  assert set(gan_added) >= {'model.categorical_code', 'model.code_weight'}
  restored = core_config.with_fields_added(saved, added)  # What resume and inference read back.
  assert restored == {'model': {'latent': 100, 'categorical_code': 0}, 'num_steps': 10}
  assert core_config.with_fields_added({'model': {'categorical_code': 10}}, added) == {
      'model': {'categorical_code': 10}}


def test_leftover_temporary_checkpoint_is_ignored(tmp_path):
  families.train_and_evaluate(small_cnn_config(num_steps=10), str(tmp_path))
  # What a run killed in the middle of a save leaves behind.
  (tmp_path / 'checkpoints' / '20.orbax-checkpoint-tmp-1234').mkdir()
  assert checkpoint.Checkpointer(str(tmp_path / 'checkpoints')).steps() == [10]
  state, _ = families.train_and_evaluate(small_cnn_config(num_steps=20), str(tmp_path))
  assert int(state.step) == 20


def test_sigterm_stops_with_checkpoint_and_resume_matches_straight_run(tmp_path):
  """Several hundred steps on 8 CPU devices (the deep-dispatch hazard), killed and resumed."""
  num_steps = 300
  args = ['--config=' + str(CNN_MNIST_CONFIG), f'--workdir={tmp_path / "killed"}',
          f'--config.num_steps={num_steps}', '--config.model.conv_features=(8,16)',
          '--config.model.dense_features=(32,)', '--config.batch_size=64',
          '--config.log_every=10', '--config.eval_every=0', '--config.checkpoint_every=100']
  process = subprocess.Popen([sys.executable, '-m', 'mlfun_jax.experiments.train', *args], cwd=REPO_ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  metrics = tmp_path / 'killed' / 'metrics.jsonl'
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 5:
      break
    time.sleep(0.2)
  process.send_signal(signal.SIGTERM)
  output, _ = process.communicate(timeout=240)
  assert process.returncode == 0, output
  saved = checkpoint.Checkpointer(str(tmp_path / 'killed' / 'checkpoints')).steps()
  assert saved and saved[-1] < num_steps, (saved, output[-2000:])
  assert 'stopping after this step' in output

  config = small_cnn_config(num_steps=num_steps, checkpoint_every=100, augment__shift=2,
                            model__dropout_rate=0.5)
  resumed_state, _ = families.train_and_evaluate(config, str(tmp_path / 'killed'))
  straight_state, summary = families.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert_trees_equal(resumed_state.params, straight_state.params)
  assert_trees_equal(resumed_state.opt_state, straight_state.opt_state)
  assert summary['train_loss'] < 1.5  # From ln(10) = 2.30 at the start.


@pytest.fixture(scope='module')
def warm_source(tmp_path_factory):
  """A 20-step run whose weights the warm-start tests start from: (workdir, final state)."""
  workdir = tmp_path_factory.mktemp('warm_source')
  state, _ = families.train_and_evaluate(small_cnn_config(num_steps=20), str(workdir))
  return workdir, state


def test_init_from_takes_the_weights_but_not_the_step_or_optimizer(warm_source, tmp_path):
  source, source_state = warm_source
  # Another optimizer and schedule (another opt_state structure); learning rate 0 keeps the weights.
  warm_overrides = dict(optimizer__name='momentum', optimizer__schedule='constant',
                        optimizer__learning_rate=0.0)
  config = small_cnn_config(num_steps=10, **warm_overrides)
  _, fresh_summary = families.train_and_evaluate(config, str(tmp_path / 'fresh'))
  warm_state, warm_summary = families.train_and_evaluate(config, str(tmp_path / 'b'),
                                                      init_from=str(source))
  assert int(warm_state.step) == 10  # Counted from 0, not from the source's 20.
  assert_trees_equal(warm_state.params, source_state.params)
  assert warm_summary['train_loss'] < 0.8 * fresh_summary['train_loss']
  meta, _ = checkpoint.latest_meta(str(tmp_path / 'b' / 'checkpoints'))
  assert meta['init_from'] == {'workdir': str(source), 'step': 20}

  # With a checkpoint of its own the run resumes from it; the origin stays in the meta.
  resumed_state, _ = families.train_and_evaluate(
      small_cnn_config(num_steps=12, **warm_overrides), str(tmp_path / 'b'),
      init_from=str(tmp_path / 'nowhere'))
  assert int(resumed_state.step) == 12
  meta, _ = checkpoint.latest_meta(str(tmp_path / 'b' / 'checkpoints'))
  assert meta['init_from']['step'] == 20


def test_warm_start_keeps_the_fresh_step_and_optimizer_state(warm_source, tmp_path):
  source, source_state = warm_source
  config = small_cnn_config(optimizer__name='momentum')
  task = families.get(config.task).build(config, str(tmp_path / 'b'))
  fresh = jax.device_get(task.init(jax.random.key(1)))
  warm, origin = warm_start.weights_from(fresh, task.meta, str(source))
  assert origin == {'workdir': str(source), 'step': 20}
  assert_trees_equal(warm.params, source_state.params)
  assert_trees_equal(warm.opt_state, fresh.opt_state)
  assert int(warm.step) == 0
  with pytest.raises(UserError, match=r"checkpoint's 'class_names' differs"):
    warm_start.weights_from(fresh, {**task.meta, 'class_names': ['a'] * 10}, str(source))
  with pytest.raises(UserError, match=r"of task 'classification', this run is 'gan'"):
    warm_start.weights_from(fresh, {**task.meta, 'task': 'gan'}, str(source))


def test_init_from_another_model_or_no_checkpoint_is_named(warm_source, tmp_path):
  source, _ = warm_source
  named = (r"--init_from=.*warm_source\d*: \.params\['Conv_0'\]\['bias'\] is float32\[8\] there, "
           r"float32\[4\] here")
  with pytest.raises(UserError, match=named):
    families.train_and_evaluate(small_cnn_config(model__conv_features=(4, 8)), str(tmp_path / 'b'),
                             init_from=str(source))
  assert not (tmp_path / 'b' / 'checkpoints').exists() or not list(
      (tmp_path / 'b' / 'checkpoints').iterdir())
  with pytest.raises(UserError, match=r"--init_from=.*missing is not a run's folder"):
    families.train_and_evaluate(small_cnn_config(), str(tmp_path / 'c'),
                             init_from=str(tmp_path / 'missing'))


@pytest.mark.parametrize('field,value', [('log_every', 0), ('max_inflight_steps', 0),
                                         ('checkpoint_every', -1)])
def test_bad_loop_fields_are_named(tmp_path, field, value):
  with pytest.raises(UserError, match=f'config field {field}={value}'):
    families.train_and_evaluate(small_cnn_config(**{field: value}), str(tmp_path))


@pytest.mark.parametrize('field,value,why', [
    ('grad_accum_steps', 0, 'must be an integer >= 1'), ('parallelism', 'vmap', 'must be one of'),
    ('dtype', 'float16', 'must be one of'), ('profile_steps', (5, 2), 'must be (first, last)'),
    ('profile_steps', (0, 3), 'must be (first, last)')])
def test_bad_new_loop_fields_are_named(tmp_path, field, value, why):
  with pytest.raises(UserError, match=re.escape(f'config field {field}={value!r} {why}')):
    families.train_and_evaluate(small_cnn_config(**{field: value}), str(tmp_path))


def _counting_task(bad_at: int, where: str) -> train.Task:
  """A one-parameter task whose loss (or parameter) turns NaN from step `bad_at` on."""
  import flax.struct  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  @flax.struct.dataclass
  class State:
    step: jax.Array
    w: jax.Array

  def train_step(state, batch, rng):  # pylint: disable=unused-argument
    bad = state.step + 1 >= bad_at
    w = jnp.where(bad & (where == 'state'), jnp.nan, state.w + 1.0)
    loss = jnp.where(bad & (where == 'loss'), jnp.nan, jax.lax.pmean(batch['x'].mean(), 'batch'))
    return State(step=state.step + 1, w=w), {'loss': loss}

  return train.Task(
      init=lambda rng: State(step=jnp.zeros((), jnp.int32), w=jnp.zeros(())),
      train_step=train_step, eval_step=None, summarize_eval=None,
      train_batches=lambda start: iter(lambda: {'x': np.ones((jax.local_device_count(), 2))}, None),
      eval_batches=None, num_steps=40, examples_per_step=2 * jax.local_device_count())


@pytest.mark.parametrize('where', ['loss', 'state'])
def test_nan_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, where):
  config = small_cnn_config(num_steps=40, checkpoint_every=10, log_every=5)
  with pytest.raises(train.TrainingDivergedError) as error:
    train.run(_counting_task(bad_at=23, where=where), config, str(tmp_path))
  message = str(error.value)
  if where == 'loss':
    assert 'train loss is nan at step 23' in message
  else:  # Only seen when the state is about to be saved.
    assert 'the train state .w holds NaN or inf at step 30' in message
  assert 'last good checkpoint' in message and '20' in message
  assert checkpoint.Checkpointer(str(tmp_path / 'checkpoints')).steps() == [10, 20]
