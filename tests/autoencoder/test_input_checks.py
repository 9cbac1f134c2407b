"""Autoencoder inputs of the wrong convention fail with one clear line naming the argument."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.autoencoder import model as models
from mlfun_jax.autoencoder import pictures as autoencoder_pictures
from mlfun_jax.autoencoder import task as autoencoder
from mlfun_jax.core import checks
from tests.autoencoder.conftest import ae_config
from tests.conftest import one_line

SHAPE = (8, 8, 1)


@pytest.fixture(scope='module')
def tiny():
  model = models.Autoencoder(SHAPE, 'dense', (8,), 2)
  params = model.init(jax.random.key(0), jnp.zeros((1, *SHAPE)))['params']
  return model, params


def test_encode_images_takes_a_uint8_batch_of_the_model_shape(tiny):
  model, params = tiny
  good = np.zeros((3, *SHAPE), np.uint8)
  assert autoencoder_pictures.encode_images(model, params, good).shape == (3, 2)
  for bad, message in ((good.astype(np.float32) / 255, 'got float32'),
                       (good[0], 'got uint8 of shape (8, 8, 1)'),  # One image, not a batch.
                       (np.zeros((3, 9, 8, 1), np.uint8), 'shape (3, 9, 8, 1)')):
    with pytest.raises(checks.InputConventionError, match=re.escape(message)) as error:
      autoencoder_pictures.encode_images(model, params, bad)
    assert one_line(error).startswith('images: expected uint8 images [B, 8, 8, 1] with values '
                                       '0..255, got ')


def test_decode_codes_takes_a_float_batch_of_codes(tiny):
  model, params = tiny
  assert autoencoder_pictures.decode_codes(model, params, np.zeros((4, 2))).shape == (4, *SHAPE)
  for bad in (np.zeros(2), np.zeros((4, 3)), np.zeros((4, 2), np.int32)):
    with pytest.raises(checks.InputConventionError, match=r'codes: expected float codes \[N, 2\]'):
      autoencoder_pictures.decode_codes(model, params, bad)


def test_reconstructions_and_errors_take_uint8(tiny):
  model, params = tiny
  config = ae_config()  # noise 'none'.
  floats = np.full((2, *SHAPE), 0.5, np.float32)
  with pytest.raises(checks.InputConventionError, match='images: expected uint8') as error:
    autoencoder_pictures.reconstructions(model, params, config, floats)
  one_line(error)
  with pytest.raises(checks.InputConventionError, match='images: expected uint8'):
    autoencoder_pictures.reconstruction_errors(model, params, config, floats)
  with pytest.raises(checks.InputConventionError, match='images: expected uint8'):
    autoencoder_pictures.model_inputs(config, floats)
  with pytest.raises(checks.InputConventionError, match='images: expected uint8'):
    autoencoder.binarize_once(floats)


def test_the_model_takes_floats_in_0_1_of_its_image_shape(tiny):
  model, params = tiny
  apply = lambda x: model.apply({'params': params}, x, method=model.encode)
  assert apply(jnp.full((2, *SHAPE), 0.5)).shape == (2, 2)
  grey = jnp.full((2, *SHAPE), 255.0).at[0, 0, 0, 0].set(0.0)  # Grey levels, not [0, 1].
  with pytest.raises(checks.InputConventionError, match=r'got values in \[0.0, 255.0\]') as error:
    apply(grey)
  assert one_line(error).startswith('images: expected floating-point images')
  with pytest.raises(checks.InputConventionError, match='got uint8'):
    apply(jnp.zeros((2, *SHAPE), jnp.uint8))
  with pytest.raises(checks.InputConventionError, match='got float32 of shape'):
    apply(jnp.zeros(SHAPE))  # One image.
  # Under jit the values are unknown: only dtype and shape are checked, no error for the range.
  assert jax.jit(apply)(jnp.full((2, *SHAPE), 255.0)).shape == (2, 2)
  with pytest.raises(checks.InputConventionError, match='codes: expected float codes'):
    model.apply({'params': params}, jnp.zeros((2, 5)), method=model.decode)


def test_likelihood_targets_are_floats_in_0_1():
  logits = jnp.zeros((1, 3))
  with pytest.raises(checks.InputConventionError, match=r'targets: expected float pixel targets'):
    models.bernoulli_nll(logits, jnp.array([[0.0, 255.0, 1.0]]))
  with pytest.raises(checks.InputConventionError, match='targets: expected'):
    models.gaussian_nll(logits, jnp.array([[0, 1, 1]], jnp.uint8), 0.1)


def test_knn_accuracy_takes_integer_labels():
  codes = np.random.default_rng(0).normal(size=(10, 2))
  labels = np.arange(10) % 2
  assert 0.0 <= autoencoder_pictures.knn_accuracy(codes, labels, codes, labels, k=1) <= 1.0
  with pytest.raises(checks.InputConventionError, match='test_labels: expected integer ids'):
    autoencoder_pictures.knn_accuracy(codes, labels, codes, labels.astype(np.float32), k=1)
