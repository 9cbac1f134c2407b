"""LPQ face descriptors in JAX: the codes equal a direct windowed Fourier transform (numpy,
float64), the histograms are unit-length cells; the texture descriptor joins LBP and LPQ with
its weights and, mirrored, describes a face and its mirror image alike."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.core import checks
from mlfun_jax.faces import embedding
from mlfun_jax.faces import lbp
from mlfun_jax.faces import lpq
from mlfun_jax.faces import model as face_embedding
from mlfun_jax.faces import texture


def direct_transforms(image: np.ndarray, window: int = 7) -> np.ndarray:
  """complex128 [4, H, W]: sum over the window of f(y + dy, x + dx) exp(-2 pi i u.(dx, dy)) at
  u = (a, 0), (0, a), (a, a), (a, -a), a = 1/window, zero outside the image."""
  r = (window - 1) // 2
  padded = np.pad(image.astype(np.float64), r)
  h, w = image.shape
  a = 1.0 / window
  out = np.zeros((4, h, w), np.complex128)
  for k, (ux, uy) in enumerate(((a, 0), (0, a), (a, a), (a, -a))):
    for dy in range(-r, r + 1):
      for dx in range(-r, r + 1):
        out[k] += padded[r + dy:r + dy + h, r + dx:r + dx + w] * np.exp(
            -2j * np.pi * (ux * dx + uy * dy))
  return out


def test_codes_are_the_signs_of_the_windowed_fourier_transform():
  images = np.random.default_rng(0).integers(0, 256, (2, 20, 24)).astype(np.float32)
  ours = np.asarray(lpq.codes(images))
  assert ours.shape == (2, 20, 24) and ours.min() >= 0 and ours.max() < 256
  for image, code in zip(images, ours):
    f = direct_transforms(image)
    parts = np.stack([f.real, f.imag], axis=1).reshape(8, *image.shape)  # Bit order.
    expected = sum((parts[k] >= 0).astype(int) << k for k in range(8))
    clear = (np.abs(parts) > 1e-2).all(axis=0)  # Signs float32 may not round alike.
    assert clear.mean() > 0.95
    np.testing.assert_array_equal(code[clear], expected[clear])
  assert len(np.unique(ours)) > 200  # Random images use most codes.
  with pytest.raises(checks.InputConventionError, match='window'):
    lpq.codes(images, window=6)


def test_descriptors_are_unit_length_cell_histograms():
  images = np.random.default_rng(1).integers(0, 256, (3, 50, 45, 1)).astype(np.uint8)
  d = np.asarray(lpq.descriptors(images))
  assert d.shape == (3, 16 * lpq.BINS)
  np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
  shares = (d.reshape(3, 16, lpq.BINS) ** 2).sum(axis=2)  # Each cell: its share of the pixels.
  np.testing.assert_allclose(shares, 1 / 16, atol=0.005)
  with pytest.raises(checks.InputConventionError, match='images'):
    lpq.descriptors(images[..., 0])


def test_texture_joins_lbp_and_lpq_and_mirrored_sees_a_face_and_its_mirror_alike():
  images = np.random.default_rng(2).integers(0, 256, (3, 32, 32, 1)).astype(np.uint8)
  squared = lambda e: ((e[0] - e[1]) ** 2).sum()  # noqa: E731
  joined = texture.Texture(weight=0.5, lpq_share=0.25)
  d = np.asarray(joined.describe(images))
  assert d.shape == (3, joined.size) == (3, 16 * (lbp.BINS + lpq.BINS))
  np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(
      squared(d), 0.75 * squared(np.asarray(lbp.descriptors(images)))
      + 0.25 * squared(np.asarray(lpq.descriptors(images))), rtol=1e-4)
  assert texture.Texture(weight=0.5).size == 16 * lbp.BINS and texture.NONE.size == 0

  mirrored = texture.Texture(weight=0.5, lpq_share=0.5, mirror=True)
  flipped = images[:, :, ::-1]
  np.testing.assert_allclose(np.asarray(mirrored.describe(flipped)),
                             np.asarray(mirrored.describe(images)), atol=1e-6)
  plain = texture.Texture(weight=0.5, lpq_share=0.5)
  assert np.abs(np.asarray(plain.describe(flipped))
                - np.asarray(plain.describe(images))).max() > 0.01
  both = np.asarray(mirrored.describe(images))
  np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, rtol=1e-5)


def test_embedding_joins_the_network_and_the_texture_with_its_weight():
  model = face_embedding.FaceEmbedding(conv_features=(4,), embedding_size=8)
  images = np.random.default_rng(3).integers(0, 256, (4, 16, 16, 1)).astype(np.uint8)
  params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)), train=False)['params']
  described = texture.Texture(weight=0.75, lpq_share=0.5, mirror=True)
  net = np.asarray(embedding.embed(model, params, images, 100.0, 50.0))
  joined = np.asarray(embedding.embed(model, params, images, 100.0, 50.0, described=described))
  assert joined.shape == (4, embedding.embedding_size(model, described))
  assert joined.shape[1] == 8 + 16 * (lbp.BINS + lpq.BINS)
  np.testing.assert_allclose(np.linalg.norm(joined, axis=1), 1.0, rtol=1e-5)
  squared = lambda e: ((e[0] - e[1]) ** 2).sum()  # noqa: E731
  np.testing.assert_allclose(
      squared(joined),
      0.25 * squared(net) + 0.75 * squared(np.asarray(described.describe(images))), rtol=1e-4)
