"""The CIFAR-10 speedrun's pieces in the classification family: its schedule and optimizer
groups, the Lookahead-style average, alternating flips, the whitening initialisation from the
training images, the shifted test-time views, and 8 devices computing what 1 does."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mlfun_jax.classification import model as classifier_model
from mlfun_jax.classification import task as classification
from mlfun_jax.core import optim
from mlfun_jax.data import arrays
from tests import mixed_precision
from tests.conftest import apply_overrides
from tests.conftest import small_cnn_config


def optimizer_config(**fields):
  base = dict(name='momentum', learning_rate=1.0, schedule='constant', warmup_steps=0,
              momentum=0.0, b1=0.9, b2=0.999, weight_decay=0.0, grad_clip_norm=0.0)
  return ml_collections.ConfigDict({**base, **fields})


def speedrun_config(**overrides):
  config = small_cnn_config(model=dict(
      name='speedrun', stage_features=(8, 16, 16), bn_momentum=0.6, output_scale=1 / 9,
      whiten_bias_epochs=3.0, conv_features=(8,), convs_per_block=1, kernel_size=3,
      dense_features=(), dropout_rate=0.0, stem_features=4, residual_stages=(True,)))
  config.image_size = 32
  config.augment.flip = True
  config.augment.alternate_flips = True
  config.label_smoothing = 0.2
  return apply_overrides(config, overrides)


def test_warmup_linear_schedule_is_the_recipes():
  config = optimizer_config(schedule='warmup_linear', warmup_fraction=0.23, initial_factor=0.2,
                            final_factor=0.07, learning_rate=1.5)
  total = 435
  schedule = optim.learning_rate_schedule(config, total)
  warmup = int(total * 0.23)

  def recipe(step):  # The paper's code's get_lr, times the peak rate.
    if step < warmup:
      frac = step / warmup
      return 1.5 * (0.2 * (1 - frac) + frac)
    frac = (step - warmup) / (total - warmup)
    return 1.5 * ((1 - frac) + 0.07 * frac)

  for step in (0, 1, 50, warmup - 1, warmup, warmup + 1, 300, total - 1, total):
    assert float(schedule(step)) == pytest.approx(recipe(step), rel=1e-5), step


def test_norm_parameters_get_a_scaled_rate_and_the_same_decay():
  config = optimizer_config(learning_rate=0.1, weight_decay=0.01, norm_lr_scale=64.0,
                            decay_all=True)
  params = {'Conv_0': {'kernel': jnp.ones((3, 3, 2, 2))}, 'whiten_bias': jnp.ones(2),
            'ConvGroup_0': {'BatchNorm_0': {'bias': jnp.ones(2)}}}
  tx = optim.create_optimizer(config, 10)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  # Decay alone: -rate x coefficient x p; a norm parameter's rate x 64 and coefficient / 64.
  np.testing.assert_allclose(updates['Conv_0']['kernel'], -0.001, rtol=1e-5)
  np.testing.assert_allclose(updates['whiten_bias'], -0.001, rtol=1e-5)
  np.testing.assert_allclose(updates['ConvGroup_0']['BatchNorm_0']['bias'], -0.001, rtol=1e-5)
  ones = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(ones, tx.init(params), params)
  np.testing.assert_allclose(updates['ConvGroup_0']['BatchNorm_0']['bias'],
                             -6.4 * (1 + 0.01 / 64), rtol=1e-5)
  np.testing.assert_allclose(updates['Conv_0']['kernel'], -0.1 * 1.01, rtol=1e-5)


def test_lookahead_average_equals_the_recipes_loop():
  every, final_decay, total = 5, 0.95**5, 12
  tx = optim.create_optimizer(optimizer_config(learning_rate=0.1, lookahead_every=every,
                                               lookahead_decay=final_decay), total)
  grads = np.random.default_rng(0).normal(size=(total, 3)).astype(np.float32)
  params = jnp.asarray([1.0, -2.0, 0.5])
  state = tx.init(params)
  for g in grads:
    updates, state = tx.update(jnp.asarray(g), state, params)
    params = params + updates
  # The paper's code: plain steps; every 5th, slow lerps toward the weights and the weights
  # become slow; after the last step the weights are slow.
  fast = np.array([1.0, -2.0, 0.5])
  slow = fast.copy()
  for step, g in enumerate(grads, start=1):
    fast = fast - 0.1 * g
    if step % every == 0:
      decay = final_decay * (step / total) ** 3
      slow = slow + (1 - decay) * (fast - slow)
      fast = slow.copy()
  fast = slow.copy()
  np.testing.assert_allclose(np.asarray(params), fast, rtol=1e-5)
  assert not np.allclose(fast, np.array([1.0, -2.0, 0.5]) - 0.1 * grads.sum(0), rtol=1e-3)


def test_accumulated_updates_end_on_the_average_and_the_final_rate():
  """3 parts per update and 20 calls: 6 updates happen (the 2 trailing calls change nothing);
  the schedule ends and the weights become the slow ones at the 6th."""
  config = optimizer_config(learning_rate=0.1, schedule='warmup_linear', warmup_fraction=0.5,
                            initial_factor=0.2, final_factor=0.07, lookahead_every=4,
                            lookahead_decay=0.9)
  calls, parts = 20, 3
  tx = optim.create_optimizer(config, calls, grad_accum_steps=parts)
  grads = np.random.default_rng(1).normal(size=(calls, 2)).astype(np.float32)
  params = jnp.asarray([1.0, -1.0])
  state = tx.init(params)
  for g in grads:
    updates, state = tx.update(jnp.asarray(g), state, params)
    params = params + updates
  schedule = optim.learning_rate_schedule(config, 6)
  fast = np.array([1.0, -1.0])
  slow = fast.copy()
  for update in range(1, 7):
    fast = fast - float(schedule(update - 1)) * grads[parts * (update - 1):parts * update].mean(0)
    if update % 4 == 0 or update == 6:
      decay = 0.9 * (update / 6) ** 3 if update % 4 == 0 else 1.0
      slow = slow + (1 - decay) * (fast - slow)
      fast = slow.copy()
  np.testing.assert_allclose(np.asarray(params), fast, rtol=1e-5)
  assert float(schedule(5)) == pytest.approx(0.1 * (1 + 0.07 * 2) / 3, rel=1e-5)


def test_alternating_flips_mirror_every_image_in_every_other_epoch():
  split = arrays.ArraySplit(np.zeros((10, 2, 2, 1), np.uint8), np.arange(10, dtype=np.int32))
  batches = arrays.train_batches(split, global_batch_size=5, seed=3, alternate_flips=True)
  flipped = np.zeros((4, 10), bool)  # [epoch, image]
  for step in range(8):
    batch = next(batches)
    flipped[step // 2, batch['label'].reshape(-1)] = batch['flip'].reshape(-1)
  assert 2 <= flipped[0].sum() <= 8  # About half at random in the first epoch,
  for epoch in range(1, 4):  # then each image the other way round from one epoch to the next.
    np.testing.assert_array_equal(flipped[epoch], ~flipped[epoch - 1])
  np.testing.assert_array_equal(flipped[0], arrays.first_epoch_flips(10, 3))
  # Resuming at step 5 gives the same flips.
  again = next(arrays.train_batches(split, global_batch_size=5, seed=3, start_step=5,
                                    alternate_flips=True))
  np.testing.assert_array_equal(again['flip'].reshape(-1), flipped[2, again['label'].reshape(-1)])
  assert 'flip' not in next(arrays.train_batches(split, global_batch_size=5, seed=3))


def _speedrun_state(config, images, num_steps=10):
  model = classifier_model.create_model(config, 10)
  mean, std = [120.0] * 3, [60.0] * 3
  normalised = (images.astype(np.float32) - 120.0) / 60.0
  state = classifier_model.create_state(model, config, images.shape[1:], num_steps,
                                        jax.random.key(0), normalised)
  return model, state, mean, std


def photo_like(n, seed=0):
  """uint8 [n, 32, 32, 3]: smooth colour noise (neighbouring pixels and channels correlate)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 33, 33, 3))
  x = x[:, 1:, 1:] + x[:, :-1, 1:] + x[:, 1:, :-1] + x[:, :-1, :-1]
  x = x @ np.array([[1.0, 0.6, 0.3], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
  return np.clip(120 + 25 * x, 0, 255).astype(np.uint8)


def test_whitening_starts_from_the_training_images():
  images = photo_like(64)
  _, state, _, _ = _speedrun_state(speedrun_config(), images)
  kernel = np.asarray(state.params['whiten_kernel'])
  normalised = (images.astype(np.float64) - 120.0) / 60.0
  out = jax.lax.conv_general_dilated(jnp.asarray(normalised, jnp.float32), jnp.asarray(kernel),
                                     (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  flat = np.asarray(out, np.float64)[..., :12].reshape(-1, 12)
  covariance = flat.T @ flat / len(flat)
  # Unit variance but for the eps the recipe adds to each eigenvalue (5e-4).
  np.testing.assert_allclose(covariance, np.eye(12), atol=0.05)
  assert np.all(np.diag(covariance) > 0.9)


def test_shifted_views_are_the_recipes_test_time_augmentation():
  config = speedrun_config(test_time_flip=True, test_time_shift=1)
  images = photo_like(6, seed=1)
  model, state, mean, std = _speedrun_state(config, images)
  moved = np.asarray(classifier_model.shifted(jnp.asarray(images), 1, 1))
  np.testing.assert_array_equal(moved[:, 1:, 1:], images[:, :-1, :-1])  # Content moves down-right.
  np.testing.assert_array_equal(moved[:, 0, 1:], images[:, 1, :-1])  # The border is reflected.

  def mirrored(x):
    return 0.5 * (classifier_model.inference_logits(model, state, x, mean, std)
                  + classifier_model.inference_logits(model, state, x[:, :, ::-1], mean, std))

  up_left = np.asarray(classifier_model.shifted(jnp.asarray(images), -1, -1))
  expected = 0.5 * mirrored(images) + 0.25 * (mirrored(up_left) + mirrored(moved))
  got = classifier_model.inference_logits(model, state, images, mean, std, True, 1)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
  labels = np.asarray(np.argmax(got, -1), np.int32)
  batch = {'image': images, 'label': labels, 'mask': np.ones(6, np.float32)}
  sums = classification.make_eval_step(model, config, mean, std)(state, batch)
  assert float(sums['correct']) == 6.0


def test_speedrun_steps_on_8_devices_equal_1_and_the_whitening_bias_stops():
  config = speedrun_config(optimizer=dict(
      name='momentum', learning_rate=0.5, schedule='warmup_linear', warmup_steps=0,
      warmup_fraction=0.25, initial_factor=0.2, final_factor=0.07, momentum=0.85, b1=0.9,
      b2=0.999, weight_decay=0.001, grad_clip_norm=0.0, norm_lr_scale=8.0, decay_all=True,
      lookahead_every=2, lookahead_decay=0.95**5))
  images = photo_like(64, seed=2)
  labels = np.random.default_rng(0).integers(0, 10, 64).astype(np.int32)
  model, state, mean, std = _speedrun_state(config, images, num_steps=6)
  step = classification.make_train_step(model, config, mean, std, whiten_bias_steps=2)
  flips = arrays.first_epoch_flips(64, 0)
  batch_of = lambda n, i: {'image': images.reshape(n, -1, 32, 32, 3),
                           'label': labels.reshape(n, -1),
                           'flip': (flips != (i % 2 == 1)).reshape(n, -1)}
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 4)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 4)
  squared = lambda a, b: sum(float(np.sum((np.asarray(x, np.float64) - np.asarray(y)) ** 2))
                             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  for s1, s8, m1, m8 in zip(states1, states8, metrics1, metrics8):
    # BatchNorm statistics summed across 8 devices round differently from one device's (epsilon
    # 1e-12 lets low-variance channels amplify it): losses within 0.3%, parameters within 2% of
    # how far they moved (measured: 1e-5 and 0.1% after one step, 0.2% and 0.3% after four).
    np.testing.assert_allclose(m1['loss'][0], m8['loss'][0], rtol=3e-3)
    drift = np.sqrt(squared(s1.params, s8.params) / squared(s1.params, state.params))
    assert drift < 0.02, drift
  bias = [np.asarray(s.params['whiten_bias']) for s in states1]
  assert not np.array_equal(bias[0], np.asarray(state.params['whiten_bias']))
  assert not np.array_equal(bias[1], bias[0])
  np.testing.assert_array_equal(bias[2], bias[1])  # Frozen after 2 steps.
  np.testing.assert_array_equal(bias[3], bias[1])
  np.testing.assert_array_equal(states1[-1].params['whiten_kernel'],
                                state.params['whiten_kernel'])  # Never trained.

  # The batch's flips are what the step mirrors: flipped images and flip=True agree.
  one = lambda flip, imgs: {'image': imgs.reshape(1, -1, 32, 32, 3),
                            'label': labels.reshape(1, -1), 'flip': np.full((1, 64), flip)}
  a, _ = mixed_precision.pmapped_steps(step, state, lambda n, i: one(True, images), 1, 1)
  b, _ = mixed_precision.pmapped_steps(step, state, lambda n, i: one(False, images[:, :, ::-1]),
                                       1, 1)
  for x, y in zip(jax.tree.leaves(a[0].params), jax.tree.leaves(b[0].params)):
    np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
