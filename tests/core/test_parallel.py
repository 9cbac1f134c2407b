"""pmap over 8 devices computes what one device computes on the same global batch; shard_map
computes what pmap computes."""

import flax.jax_utils
import jax
import ml_collections
import numpy as np
import pytest

from mlfun_jax.data import image_stats
from mlfun_jax import data
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import resnet
from mlfun_jax.classification import model as classifier_model
from mlfun_jax.classification import task as classification
from tests.conftest import small_cnn_config


def _replicate_on(tree, devices):
  return flax.jax_utils.replicate(tree, devices)


def test_eight_devices_are_simulated():
  assert jax.local_device_count() == 8


def test_pmap_step_on_8_devices_equals_single_device_step():
  config = small_cnn_config(batch_size=64)
  dataset = data.load_image_dataset('embedded_mnist')
  mean, std = image_stats.channel_stats(dataset.train.images)
  model = classifier_model.create_model(config, dataset.num_classes)
  state = classifier_model.create_state(model, config, dataset.image_shape, 100, jax.random.key(0))
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
  mean, std = image_stats.channel_stats(dataset.train.images)
  model = classifier_model.create_model(config, dataset.num_classes)
  state = classifier_model.create_state(model, config, dataset.image_shape, 1, jax.random.key(0))
  p_eval = train.pmap_eval_step(classification.make_eval_step(model, config, mean, std))
  totals = train.evaluate(p_eval, parallel.replicate(state),
                          data.eval_batches(dataset.test, global_batch_size=48, local_device_count=8),
                          lambda t: t, max_inflight=4)
  assert totals['count'] == len(dataset.test) == 1000  # 1000 = 20 batches of 48 + 40 padded
  # The same numbers as computing on the whole test set at once.
  logits = model.apply({'params': state.params},
                       image_stats.normalise(dataset.test.images, mean, std), train=False)
  assert totals['correct'] == int((np.argmax(logits, -1) == dataset.test.labels).sum())


def test_device_rng_differs_per_device_and_step():
  keys = jax.pmap(lambda s: jax.random.key_data(parallel.device_rng(jax.random.key(0), s)),
                  axis_name=parallel.AXIS)(np.array([3] * 8))
  assert len({tuple(k) for k in np.asarray(keys).tolist()}) == 8
  again = jax.pmap(lambda s: jax.random.key_data(parallel.device_rng(jax.random.key(0), s)),
                   axis_name=parallel.AXIS)(np.array([4] * 8))
  assert not np.array_equal(keys, again)


def _resnet_config(**overrides):
  config = small_cnn_config(batch_size=16, label_smoothing=0.1, **overrides)
  # Plain SGD: the stem convolution's bias feeds a BatchNorm, so its exact gradient is 0 and the
  # float one is rounding noise; Adam would scale that noise up to full-size steps of either sign.
  config.optimizer.name = 'sgd'
  config.model = ml_collections.ConfigDict(dict(
      name='resnet', stem_features=4, stage_features=(8, 8), residual_stages=(True, False),
      output_scale=0.125, bn_momentum=0.9))
  return config


def _resnet_steps(config, n, images, labels, steps=2, parallelism='pmap'):
  """(host state, metrics) after `steps` mapped steps on the first n devices."""
  model = classifier_model.create_model(config, 10)
  state = classifier_model.create_state(model, config, images.shape[1:], 100, jax.random.key(0))
  step = classification.make_train_step(model, config, [0.13], [0.31])
  devices = jax.local_devices()[:n]
  p_step = train.pmap_train_step(step, jax.random.key(1), devices=devices, parallelism=parallelism)
  replicated = _replicate_on(state, devices)
  batch = {'image': images.reshape(n, -1, *images.shape[1:]), 'label': labels.reshape(n, -1)}
  for _ in range(steps):
    replicated, metrics = p_step(replicated, batch)
  return parallel.to_host(replicated), jax.device_get(metrics), replicated


def test_batchnorm_statistics_are_global_batch_statistics_on_8_devices():
  dataset = data.load_image_dataset('embedded_mnist')
  images, labels = dataset.train.images[:16], dataset.train.labels[:16]
  state1, metrics1, _ = _resnet_steps(_resnet_config(), 1, images, labels)
  state8, metrics8, replicated8 = _resnet_steps(_resnet_config(), 8, images, labels)

  stats1, stats8 = jax.tree.leaves(state1.batch_stats), jax.tree.leaves(state8.batch_stats)
  assert len(stats1) == 2 * 5  # mean and var of 5 BatchNorm layers.
  for a, b in zip(stats1, stats8):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  for a, b in zip(jax.tree.leaves(state1.params), jax.tree.leaves(state8.params)):
    # atol: the stem bias moves by rounding noise alone (see _resnet_config), ~2e-6 here.
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(metrics1['loss'][0], metrics8['loss'], rtol=1e-5)
  # Every device holds the same running averages.
  for leaf in jax.tree.leaves(jax.device_get(replicated8.batch_stats)):
    np.testing.assert_array_equal(leaf, np.broadcast_to(leaf[0], leaf.shape))
  # The running averages moved away from their initial values (mean 0, var 1).
  assert np.abs(jax.tree.leaves(state8.batch_stats)[0]).max() > 1e-3


def test_shard_map_computes_what_pmap_computes_on_8_devices():
  """The same one-device step (BatchNorm over the global batch, label smoothing, momentum) under
  jit + shard_map and under pmap: the same parameters, statistics, optimizer state and loss."""
  dataset = data.load_image_dataset('embedded_mnist')
  images, labels = dataset.train.images[:16], dataset.train.labels[:16]
  config = _resnet_config()
  config.optimizer.name = 'momentum'
  by_pmap = _resnet_steps(config, 8, images, labels, steps=3)
  by_shard_map = _resnet_steps(config, 8, images, labels, steps=3, parallelism='shard_map')
  (state_p, metrics_p, _), (state_s, metrics_s, replicated_s) = by_pmap, by_shard_map
  assert int(state_s.step) == int(state_p.step) == 3
  for a, b in zip(jax.tree.leaves(state_p), jax.tree.leaves(state_s)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(metrics_p['loss'], metrics_s['loss'], rtol=1e-6)
  # Results keep the [devices, ...] layout, as one array over a mesh with the axis 'batch'.
  leaf = jax.tree.leaves(replicated_s.params)[0]
  assert leaf.shape[0] == 8 and leaf.sharding.spec == jax.sharding.PartitionSpec(parallel.AXIS)
  initial = classifier_model.create_state(classifier_model.create_model(config, 10), config,
                                         images.shape[1:], 100, jax.random.key(0))
  assert not np.allclose(jax.tree.leaves(state_s.params)[-1], jax.tree.leaves(initial.params)[-1])


def test_shard_map_eval_sums_every_example_once():
  config = small_cnn_config()
  dataset = data.load_image_dataset('embedded_mnist')
  mean, std = image_stats.channel_stats(dataset.train.images)
  model = classifier_model.create_model(config, dataset.num_classes)
  state = classifier_model.create_state(model, config, dataset.image_shape, 1, jax.random.key(0))
  totals = {}
  for parallelism in ('pmap', 'shard_map'):
    p_eval = train.pmap_eval_step(classification.make_eval_step(model, config, mean, std),
                                  parallelism=parallelism)
    totals[parallelism] = train.evaluate(
        p_eval, parallel.replicate(state),
        data.eval_batches(dataset.test, global_batch_size=48, local_device_count=8),
        lambda t: t, max_inflight=4)
  assert totals['shard_map']['count'] == totals['pmap']['count'] == 1000
  assert totals['shard_map']['correct'] == totals['pmap']['correct']
  np.testing.assert_allclose(totals['shard_map']['loss'], totals['pmap']['loss'], rtol=1e-6)


def test_an_unknown_parallelism_is_named():
  with pytest.raises(UserError, match="parallelism='vmap'"):
    parallel.map_over_devices(lambda x: x, 'vmap')


def test_batchnorm_without_cross_device_averaging_would_differ():
  """The check above can fail: per-device statistics (2 examples each) give other numbers."""
  dataset = data.load_image_dataset('embedded_mnist')
  images, labels = dataset.train.images[:16], dataset.train.labels[:16]
  config = _resnet_config()
  state1, _, _ = _resnet_steps(config, 1, images, labels, steps=1)
  model = resnet.ResNet(num_outputs=10, stem_features=4, stage_features=(8, 8),
                        residual_stages=(True, False), bn_axis_name=None)
  variables = model.init(jax.random.key(0), images[:1].astype(np.float32), train=False)
  _, local = model.apply(variables, image_stats.normalise(images[:2], [0.13], [0.31]),
                         train=True, mutable=['batch_stats'])
  first_mean_local = jax.tree.leaves(local['batch_stats'])[0]
  first_mean_global = jax.tree.leaves(state1.batch_stats)[0]
  assert not np.allclose(first_mean_local, first_mean_global, atol=1e-4)


def test_example_keys_do_not_depend_on_the_device_split():
  """Key i belongs to example i of the global batch, however the batch is split over devices."""
  rng = jax.random.key(5)
  draws = {}
  for n in (1, 8):
    mapped = jax.pmap(lambda x: jax.vmap(lambda k: jax.random.uniform(k))(
        parallel.example_keys(rng, 16 // n)), axis_name=parallel.AXIS,
                      devices=jax.local_devices()[:n])
    draws[n] = np.asarray(mapped(np.zeros(n))).reshape(-1)
  np.testing.assert_array_equal(draws[1], draws[8])
  assert len(set(draws[8].tolist())) == 16
