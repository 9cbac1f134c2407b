"""The speedrun network: its whitening kernel decorrelates the training patches to unit variance,
gradients never reach it, and the network maps 32x32 photos to logits."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlfun_jax.models import speedrun


def correlated_images(n=64, seed=0):
  """float [n, 16, 16, 3]: smooth, channel-mixed noise (neighbouring pixels and channels correlate,
  as in photos), centred."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 17, 17, 3))
  x = (x[:, 1:, 1:] + x[:, :-1, 1:] + x[:, 1:, :-1] + x[:, :-1, :-1]) / 2  # Smooth.
  x = x @ np.array([[1.0, 0.6, 0.3], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])  # Mix the channels.
  return x - x.mean(axis=(0, 1, 2))


def test_whitening_kernel_gives_decorrelated_unit_variance_patch_coordinates():
  images = correlated_images()
  kernel = speedrun.whitening_kernel(images, eps=0.0)
  assert kernel.shape == (2, 2, 3, 24) and kernel.dtype == np.float32
  np.testing.assert_array_equal(kernel[..., 12:], -kernel[..., :12])
  out = jax.lax.conv_general_dilated(jnp.asarray(images, jnp.float32), jnp.asarray(kernel),
                                     (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  flat = np.asarray(out, np.float64)[..., :12].reshape(-1, 12)
  covariance = flat.T @ flat / len(flat)
  np.testing.assert_allclose(covariance, np.eye(12), atol=1e-3)
  # The input patches were far from white: their covariance's eigenvalues spread widely.
  patches = np.stack([images[:, dy:15 + dy, dx:15 + dx] for dy in (0, 1) for dx in (0, 1)], axis=3)
  eigenvalues = np.linalg.eigvalsh(np.cov(patches.reshape(-1, 12).T))
  assert eigenvalues.max() / eigenvalues.min() > 20
  # Filters come largest eigenvalue first: the first is the smoothest, the widest-spread one.
  assert np.linalg.norm(kernel[..., 0]) < np.linalg.norm(kernel[..., 11])


def test_network_logits_and_frozen_whitening_kernel():
  model = speedrun.SpeedrunNet(widths=(8, 16, 16), bn_axis_name=None)
  images = jnp.asarray(np.random.default_rng(1).normal(size=(4, 32, 32, 3)), jnp.float32)
  variables = model.init(jax.random.key(0), images, train=False)
  params = dict(variables['params'])
  assert params['whiten_kernel'].shape == (2, 2, 3, 24)
  params['whiten_kernel'] = jnp.asarray(speedrun.whitening_kernel(np.asarray(images)))
  logits, updates = model.apply({**variables, 'params': params}, images, train=True,
                                mutable=['batch_stats'])
  assert logits.shape == (4, 10) and logits.dtype == jnp.float32
  assert set(updates['batch_stats']) == {'ConvGroup_0', 'ConvGroup_1', 'ConvGroup_2'}

  def loss(p):
    out, _ = model.apply({**variables, 'params': p}, images, train=True, mutable=['batch_stats'])
    return optax.softmax_cross_entropy_with_integer_labels(out, jnp.arange(4)).mean()

  grads = jax.grad(loss)(params)
  assert float(jnp.abs(grads['whiten_kernel']).max()) == 0.0
  assert float(jnp.abs(grads['whiten_bias']).max()) > 0.0
  # BatchNorm learns its shift only.
  assert set(params['ConvGroup_0']['BatchNorm_0']) == {'bias'}
  # The first filters of every 3x3 conv start as identities.
  kernel = params['ConvGroup_1']['Conv_0']['kernel']  # [3, 3, 8, 16]
  np.testing.assert_array_equal(kernel[1, 1, :, :8], np.eye(8))
  assert float(jnp.abs(kernel[0, 0, :, :8]).max()) == 0.0


def test_other_filters_and_dense_start_uniform_within_one_over_root_fan_in():
  model = speedrun.SpeedrunNet(widths=(64, 256, 256), bn_axis_name=None)
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)['params']
  for kernel, fan_in, rest in ((params['ConvGroup_1']['Conv_0']['kernel'], 9 * 64, 64),
                               (params['ConvGroup_0']['Conv_0']['kernel'], 9 * 24, 24),
                               (params['Dense_0']['kernel'], 256, 0)):
    others = np.asarray(kernel)[..., rest:].ravel()  # Past the identity filters.
    bound = 1 / np.sqrt(fan_in)
    assert np.abs(others).max() <= bound  # PyTorch's default: uniform in +-1/sqrt(fan_in).
    np.testing.assert_allclose(others.std(), bound / np.sqrt(3), rtol=0.02)
