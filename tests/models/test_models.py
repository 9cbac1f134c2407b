"""The series' CNN: shapes, parameter counts, pooling and the two heads."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.models import cnn


def _param_count(params) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def test_default_cnn_shapes_and_parameter_count():
  model = cnn.CNN(num_outputs=10)
  params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), train=False)['params']
  logits = model.apply({'params': params}, jnp.zeros((5, 28, 28, 1)), train=False)
  assert logits.shape == (5, 10) and logits.dtype == jnp.float32
  # conv 3x3x1x32 + conv 3x3x32x64 + dense (7*7*64)x256 + dense 256x10, with biases.
  expected = (9 * 32 + 32) + (9 * 32 * 64 + 64) + (7 * 7 * 64 * 256 + 256) + (256 * 10 + 10)
  assert _param_count(params) == expected == 824_458


def test_widths_depth_and_odd_sizes_from_constructor():
  model = cnn.CNN(num_outputs=1, conv_features=(16, 32, 64), convs_per_block=2,
                  dense_features=(128, 64))
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)['params']
  assert model.apply({'params': params}, jnp.zeros((2, 32, 32, 3)), train=False).shape == (2, 1)
  convs = [k for k in params if k.startswith('Conv')]
  denses = [k for k in params if k.startswith('Dense')]
  assert len(convs) == 6 and len(denses) == 3
  # 32 -> 16 -> 8 -> 4 spatial, 64 channels into the first dense layer.
  assert params['Dense_0']['kernel'].shape == (4 * 4 * 64, 128)


def test_max_pool_2x2_equals_flax_max_pool_and_its_gradient():
  x = jax.random.normal(jax.random.key(1), (2, 7, 9, 3))
  reference = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2), padding='VALID')
  np.testing.assert_allclose(cnn.max_pool_2x2(x), reference(x))
  grad = jax.grad(lambda x: (cnn.max_pool_2x2(x) ** 2).sum())(x)
  np.testing.assert_allclose(grad, jax.grad(lambda x: (reference(x) ** 2).sum())(x), rtol=1e-6)


def test_dropout_only_in_training_and_keyed():
  model = cnn.CNN(num_outputs=10, dropout_rate=0.5)
  x = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
  params = model.init(jax.random.key(0), x, train=False)['params']
  apply = lambda train, key: model.apply({'params': params}, x, train=train, rngs={'dropout': key})
  np.testing.assert_array_equal(apply(False, jax.random.key(1)), apply(False, jax.random.key(2)))
  np.testing.assert_array_equal(apply(True, jax.random.key(1)), apply(True, jax.random.key(1)))
  assert not np.allclose(apply(True, jax.random.key(1)), apply(True, jax.random.key(2)))


def test_top_k_head():
  logits = jnp.array([[0.0, 3.0, 1.0, 2.0, -1.0, 0.5], [5.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
  probabilities, classes = cnn.top_k(logits, k=5)
  assert probabilities.shape == (2, 5) and classes.shape == (2, 5)
  np.testing.assert_array_equal(classes[0], [1, 3, 2, 5, 0])
  np.testing.assert_allclose(probabilities[0], jax.nn.softmax(logits[0])[np.array([1, 3, 2, 5, 0])],
                             rtol=1e-6)
  assert classes[1, 0] == 0 and probabilities[1, 0] == pytest.approx(np.exp(5) / (np.exp(5) + 5))
  assert cnn.top_k(logits, k=50)[0].shape == (2, 6)  # k is capped at the class count


def test_one_vs_rest_head():
  probabilities = cnn.one_vs_rest(jnp.array([[0.0], [2.0], [-2.0]]))
  assert probabilities.shape == (3,)
  np.testing.assert_allclose(probabilities, [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))],
                             rtol=1e-6)
