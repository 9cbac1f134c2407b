"""LBP face descriptors in JAX: the codes equal scikit-image's, the histograms its uniform bins,
and joined to the network's embedding they keep embeddings unit-length with the weighted
distance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage.feature import local_binary_pattern

from mlfun_jax.core import checks
from mlfun_jax.faces import embedding
from mlfun_jax.faces import lbp
from mlfun_jax.faces import model as face_embedding
from mlfun_jax.faces import texture


def test_codes_equal_scikit_image_and_bins_are_its_uniform_patterns():
  images = np.random.default_rng(0).integers(0, 256, (2, 20, 24)).astype(np.float64)
  ours = np.asarray(lbp.codes(images))
  for image, code in zip(images, ours):
    np.testing.assert_array_equal(code, local_binary_pattern(image, 8, 2, 'default'))
    theirs = local_binary_pattern(image, 8, 2, 'nri_uniform').astype(int)
    pairs = set(zip(lbp.uniform_bins()[code].ravel().tolist(), theirs.ravel().tolist()))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})  # One to one.
  assert sorted(np.bincount(lbp.uniform_bins())) == [1] * 58 + [198]


def test_descriptors_are_unit_length_cell_histograms():
  images = np.random.default_rng(1).integers(0, 256, (3, 50, 45, 1)).astype(np.uint8)
  d = np.asarray(lbp.descriptors(images))
  assert d.shape == (3, 16 * lbp.BINS)
  np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
  # Each cell's squared entries are its share of the image: 1/16 per cell, as the cells are even.
  shares = (d.reshape(3, 16, lbp.BINS) ** 2).sum(axis=2)
  np.testing.assert_allclose(shares, 1 / 16, atol=0.005)
  # A flat image: every neighbour equals its centre (code 255), except where the circle leaves
  # the image (zeros there, as scikit-image): the 4 inner cells hold code 255 alone, 1/4 each.
  flat = np.full((1, 48, 48, 1), 77, np.uint8)
  uniform = np.asarray(lbp.descriptors(flat)).reshape(4, 4, lbp.BINS)[..., lbp.uniform_bins()[255]]
  np.testing.assert_allclose(uniform[1:3, 1:3], 0.25, rtol=1e-5)
  assert (uniform > 0.2).all()
  with pytest.raises(checks.InputConventionError, match='images'):
    lbp.descriptors(images.astype(np.float32))


def test_joined_embedding_weights_squared_distances():
  model = face_embedding.FaceEmbedding(conv_features=(4,), embedding_size=8)
  images = np.random.default_rng(2).integers(0, 256, (4, 16, 16, 1)).astype(np.uint8)
  params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)), train=False)['params']
  net = np.asarray(embedding.embed(model, params, images, 100.0, 50.0))
  described = texture.Texture(weight=0.75)
  joined = np.asarray(embedding.embed(model, params, images, 100.0, 50.0, described=described))
  assert joined.shape == (4, embedding.embedding_size(model, described)) == (4, 8 + 16 * lbp.BINS)
  np.testing.assert_allclose(np.linalg.norm(joined, axis=1), 1.0, rtol=1e-5)
  described = np.asarray(lbp.descriptors(images))
  squared = lambda e: ((e[0] - e[1]) ** 2).sum()  # noqa: E731
  np.testing.assert_allclose(squared(joined), 0.25 * squared(net) + 0.75 * squared(described),
                             rtol=1e-4)
