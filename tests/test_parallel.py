"""pmap over 8 devices computes what one device computes on the same global batch."""

import flax.jax_utils
import jax
import numpy as np

from mlfun_jax import data
from mlfun_jax import parallel
from mlfun_jax import train
from mlfun_jax.tasks import classification
from tests.conftest import small_cnn_config


def _replicate_on(tree, devices):
  return flax.jax_utils.replicate(tree, devices)


def test_eight_devices_are_simulated():
  assert jax.local_device_count() == 8


def test_pmap_step_on_8_devices_equals_single_device_step():
  config = small_cnn_config(batch_size=64)
  dataset = data.load_image_dataset('embedded_mnist')
  mean, std = classification.channel_stats(dataset.train.images)
  model = classification.create_model(config, dataset.num_classes)
  state = classification.create_state(model, config, dataset.image_shape, 100, jax.random.key(0))
  step = classification.make_train_step(model, config, mean, std)
  rng = jax.random.key(1)
  global_batch = next(data.train_batches(dataset.train, global_batch_size=64, seed=0))
  images, labels = global_batch['image'].reshape(64, 28, 28, 1), global_batch['label'].reshape(64)

  results = {}
  for n in (1, 8):
    devices = jax.local_devices()[:n]
    p_step = train.pmap_train_step(step, rng, devices=devices)
    replicated = _replicate_on(state, devices)
    batch = {'image': images.reshape(n, 64 // n, 28, 28, 1), 'label': labels.reshape(n, 64 // n)}
    for _ in range(3):  # Three steps, so optimizer state and momentum take part too.
      replicated, metrics = p_step(replicated, batch)
    results[n] = (parallel.to_host(replicated), jax.device_get(metrics))

  (state1, metrics1), (state8, metrics8) = results[1], results[8]
  assert int(state8.step) == int(state1.step) == 3
  for a, b in zip(jax.tree.leaves(state1.params), jax.tree.leaves(state8.params)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
  for a, b in zip(jax.tree.leaves(state1.opt_state), jax.tree.leaves(state8.opt_state)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
  np.testing.assert_allclose(metrics1['loss'][0], metrics8['loss'], rtol=1e-5)
  # The step actually moved the parameters.
  assert not np.allclose(jax.tree.leaves(state8.params)[0], jax.tree.leaves(state.params)[0])


def test_pmap_eval_sums_every_example_once_across_devices():
  config = small_cnn_config()
  dataset = data.load_image_dataset('embedded_mnist')
  mean, std = classification.channel_stats(dataset.train.images)
  model = classification.create_model(config, dataset.num_classes)
  state = classification.create_state(model, config, dataset.image_shape, 1, jax.random.key(0))
  p_eval = train.pmap_eval_step(classification.make_eval_step(model, config, mean, std))
  totals = train.evaluate(p_eval, parallel.replicate(state),
                          data.eval_batches(dataset.test, global_batch_size=48, local_device_count=8),
                          lambda t: t, max_inflight=4)
  assert totals['count'] == len(dataset.test) == 1000  # 1000 = 20 batches of 48 + 40 padded
  # The same numbers as computing on the whole test set at once.
  logits = model.apply({'params': state.params},
                       classification.normalise(dataset.test.images, mean, std), train=False)
  assert totals['correct'] == int((np.argmax(logits, -1) == dataset.test.labels).sum())


def test_device_rng_differs_per_device_and_step():
  keys = jax.pmap(lambda s: jax.random.key_data(parallel.device_rng(jax.random.key(0), s)),
                  axis_name=parallel.AXIS)(np.array([3] * 8))
  assert len({tuple(k) for k in np.asarray(keys).tolist()}) == 8
  again = jax.pmap(lambda s: jax.random.key_data(parallel.device_rng(jax.random.key(0), s)),
                   axis_name=parallel.AXIS)(np.array([4] * 8))
  assert not np.array_equal(keys, again)
