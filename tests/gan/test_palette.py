"""Palette: nearest-colour snapping to the NES palette and pixel-sharp upsizing."""

import numpy as np
import pytest

from mlfun_jax.gan import palette


def _colour_set(images):
  """Set of RGB tuples appearing in uint8 [..., 3] images."""
  return {tuple(c) for c in np.unique(images.reshape(-1, 3), axis=0)}


def _random_images(seed, n=4, h=8, w=8, c=3):
  return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, c), dtype=np.uint8)


def test_palette_has_distinct_colours():
  nes = palette.NES_PALETTE
  assert nes.dtype == np.uint8 and nes.ndim == 2 and nes.shape[1] == 3
  assert nes.shape[0] >= 50
  assert len(np.unique(nes, axis=0)) == len(nes)


def test_every_output_colour_is_in_the_palette():
  out = palette.to_palette(_random_images(0))
  assert out.dtype == np.uint8 and out.shape == (4, 8, 8, 3)
  assert _colour_set(out) <= _colour_set(palette.NES_PALETTE)


def test_palette_colours_map_to_themselves():
  nes = palette.NES_PALETTE
  images = nes[None, :, None, :]  # [1, M, 1, 3]
  np.testing.assert_array_equal(palette.to_palette(images), images)


def test_halfway_colour_maps_to_one_of_the_two():
  nes = palette.NES_PALETTE
  a, b = nes[1], nes[2]  # (0, 0, 252) and (0, 0, 188): no other entry is as near their midpoint.
  halfway = ((a.astype(int) + b) // 2).astype(np.uint8)
  out = palette.to_palette(halfway[None, None, None, :])[0, 0, 0]
  assert tuple(out) in {tuple(a), tuple(b)}
  two_colours = np.array([[0, 0, 0], [10, 10, 10]], np.uint8)
  out = palette.to_palette(np.full((1, 1, 1, 3), 5, np.uint8), two_colours)[0, 0, 0]
  assert tuple(out) in {(0, 0, 0), (10, 10, 10)}


def test_grey_input_is_repeated_to_rgb():
  grey = _random_images(1, c=1)
  out = palette.to_palette(grey)
  assert out.shape == (4, 8, 8, 3)
  np.testing.assert_array_equal(out, palette.to_palette(np.repeat(grey, 3, axis=-1)))


def test_float_and_signed_inputs_match_uint8():
  images = _random_images(2)
  expected = palette.to_palette(images)
  np.testing.assert_array_equal(palette.to_palette(images.astype(np.float32) / 255.0), expected)
  signed = images.astype(np.float32) / 127.5 - 1.0
  np.testing.assert_array_equal(palette.to_palette(signed, signed=True), expected)
  np.testing.assert_array_equal(palette.pixel_art(signed, factor=2, signed=True),
                                palette.upsize_nearest(expected, 2))


def test_chunking_gives_the_same_result():
  images = _random_images(3, n=10, h=16, w=16)  # 2560 pixels
  chunked = palette.to_palette(images, chunk_pixels=100)
  np.testing.assert_array_equal(chunked, palette.to_palette(images, chunk_pixels=10**6))


def test_upsize_nearest_is_repeat_on_both_axes():
  images = _random_images(4, n=2, h=3, w=5, c=1).astype(np.int16)
  out = palette.upsize_nearest(images, 3)
  assert out.shape == (2, 9, 15, 1) and out.dtype == np.int16
  np.testing.assert_array_equal(out, np.repeat(np.repeat(images, 3, axis=1), 3, axis=2))
  np.testing.assert_array_equal(palette.upsize_nearest(images, 1), images)
  with pytest.raises(ValueError):
    palette.upsize_nearest(images, 0)


def test_pixel_art_shape_and_colours():
  out = palette.pixel_art(_random_images(5) / 255.0)
  assert out.shape == (4, 32, 32, 3) and out.dtype == np.uint8
  assert _colour_set(out) <= _colour_set(palette.NES_PALETTE)


def test_bad_shapes_raise():
  with pytest.raises(ValueError):
    palette.to_palette(np.zeros((8, 8, 3), np.uint8))
  with pytest.raises(ValueError):
    palette.to_palette(np.zeros((1, 8, 8, 2), np.uint8))
  with pytest.raises(ValueError):
    palette.to_palette(np.zeros((1, 8, 8, 3), np.uint8), np.zeros((4, 4), np.uint8))
