"""On-device augmentations: keyed determinism, flips, rotation geometry, blur statistics."""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage

from mlfun_jax.data import augment

_SETTINGS = dict(shift=2, flip=True, rotate_degrees=25.0, blur_probability=0.5, blur_max_sigma=1.0)


def _uint8_images(shape, seed=0):
  return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_shapes_and_dtypes():
  key = jax.random.key(0)
  u8 = _uint8_images((4, 9, 7, 3))
  assert augment.random_flip_lr(key, u8).dtype == jnp.uint8
  assert augment.random_shift(key, u8, 2).dtype == jnp.uint8
  for out in (augment.rotate(u8, jnp.full(4, 10.0)), augment.random_rotate(key, u8, 10.0),
              augment.blur(u8, jnp.ones(4), 3), augment.random_blur(key, u8, 1.0, 1.0),
              augment.augment(key, u8, **_SETTINGS),
              augment.augment(key, u8.astype(np.float32), **_SETTINGS)):
    assert out.shape == (4, 9, 7, 3) and out.dtype == jnp.float32
  np.testing.assert_array_equal(augment.augment(key, u8), u8.astype(np.float32))


def test_same_key_same_output_other_step_other_output():
  images = _uint8_images((8, 16, 16, 3))
  key = jax.random.key(42)
  run = lambda step: np.asarray(augment.augment(jax.random.fold_in(key, step), images, **_SETTINGS))
  np.testing.assert_array_equal(run(0), run(0))
  assert not np.allclose(run(0), run(1))


def test_augment_jit_equals_eager_and_starts_with_the_shift():
  images = _uint8_images((8, 12, 12, 3))
  key = jax.random.key(3)
  jitted = jax.jit(lambda k, x: augment.augment(k, x, **_SETTINGS))
  np.testing.assert_allclose(jitted(key, images), augment.augment(key, images, **_SETTINGS),
                             rtol=0, atol=1e-3)
  shift_key = jax.random.split(key, 4)[0]
  np.testing.assert_array_equal(augment.augment(key, images, shift=2),
                                augment.random_shift(shift_key, images.astype(np.float32), 2))


def test_shift_is_a_crop_of_the_padded_image_at_every_offset():
  images = _uint8_images((400, 6, 5, 2), seed=1)
  r = 2
  for fill, mode in (("zeros", "constant"), ("reflect", "reflect")):
    out = np.asarray(augment.random_shift(jax.random.key(7), images, r, fill))
    padded = np.pad(images, ((0, 0), (r, r), (r, r), (0, 0)), mode=mode)
    seen = set()
    for image, moved in zip(padded, out):
      offsets = [(dy, dx) for dy in range(2 * r + 1) for dx in range(2 * r + 1)
                 if np.array_equal(image[dy:dy + 6, dx:dx + 5], moved)]
      assert offsets, fill  # Every output is the padded image cropped at some offset.
      seen.add(offsets[0])
    assert len(seen) == (2 * r + 1)**2, fill  # All 25 shifts occur among 400 images.
  reflected = np.asarray(augment.random_shift(jax.random.key(7), images, r, "reflect"))
  assert (reflected != 0).mean() > 0.99  # No zero borders (random uint8 is 0 one time in 256).


def test_flip_probability_one_zero_and_half():
  images = _uint8_images((64, 5, 6, 2))
  key = jax.random.key(1)
  np.testing.assert_array_equal(augment.random_flip_lr(key, images, 1.0), images[:, :, ::-1])
  np.testing.assert_array_equal(augment.random_flip_lr(key, images, 0.0), images)
  out = np.asarray(augment.random_flip_lr(key, images))
  flipped = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
  assert np.all(flipped | np.all(out == images, axis=(1, 2, 3)))
  assert 16 <= flipped.sum() <= 48


def test_rotate_quarter_turns_match_rot90_and_zero_is_identity():
  images = _uint8_images((3, 8, 8, 2)).astype(np.float32)
  for degrees, k in ((90.0, 1), (-90.0, -1), (180.0, 2), (270.0, 3)):
    np.testing.assert_allclose(augment.rotate(images, jnp.full(3, degrees)),
                               np.rot90(images, k, axes=(1, 2)), rtol=0, atol=1e-4)
  np.testing.assert_array_equal(augment.rotate(images, jnp.zeros(3)), images)
  assert augment.random_rotate(jax.random.key(0), images, 0.0) is images


def test_rotate_matches_scipy_bilinear_nearest_and_has_no_black_corners():
  images = np.random.default_rng(2).uniform(100, 200, (2, 11, 9, 3)).astype(np.float32)
  angles = np.array([25.0, -40.0], np.float32)
  out = np.asarray(augment.rotate(images, angles))
  expected = [scipy.ndimage.rotate(x, a, axes=(0, 1), reshape=False, order=1, mode='nearest')
              for x, a in zip(images, angles)]
  np.testing.assert_allclose(out, np.stack(expected), rtol=0, atol=1e-3)
  assert out.min() >= images.min() - 1e-3  # Corners come from edge pixels, never zeros.
  rotated = np.asarray(augment.random_rotate(jax.random.key(0), images, 30.0))
  assert not np.allclose(rotated[0], images[0]) and not np.allclose(rotated[0], rotated[1])


def test_blur_constant_mean_variance_and_scipy():
  constant = np.full((2, 10, 10, 3), 137.0, np.float32)
  np.testing.assert_allclose(augment.blur(constant, jnp.array([0.3, 2.0]), 6), constant, atol=1e-4)
  noise = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 1)).astype(np.float32)
  out = np.asarray(augment.blur(noise, jnp.ones(2), 3))
  interior = (slice(None), slice(3, -3), slice(3, -3))
  np.testing.assert_allclose(out[interior].mean(axis=(1, 2, 3)),
                             noise[interior].mean(axis=(1, 2, 3)), atol=0.5)
  assert np.all(out.var(axis=(1, 2, 3)) < 0.2 * noise.var(axis=(1, 2, 3)))
  expected = [scipy.ndimage.gaussian_filter(x, (1.0, 1.0, 0), mode='nearest', radius=(3, 3, 0))
              for x in noise]
  np.testing.assert_allclose(out, np.stack(expected), rtol=0, atol=1e-3)


def test_random_blur_leaves_about_half_exactly_unchanged():
  images = np.random.default_rng(1).uniform(0, 255, (400, 6, 6, 1)).astype(np.float32)
  # A chosen image is also unchanged when sigma < ~0.2 (its neighbours' weights underflow):
  # 5% of sigmas in (0, 4], so about 52.5% are expected unchanged.
  out = np.asarray(augment.random_blur(jax.random.key(5), images, 0.5, 4.0))
  unchanged = np.all(out == images, axis=(1, 2, 3))
  assert 0.42 <= unchanged.mean() <= 0.63
  blurred_var = out[~unchanged].var(axis=(1, 2, 3))
  original_var = images[~unchanged].var(axis=(1, 2, 3))
  assert np.all(blurred_var <= original_var * (1 + 1e-5))
  assert blurred_var.mean() < 0.5 * original_var.mean()
  assert augment.random_blur(jax.random.key(5), images, 0.0, 1.0) is images
  assert augment.random_blur(jax.random.key(5), images, 0.5, 0.0) is images


def test_random_erase_fills_one_rectangle_of_the_drawn_area():
  images = jnp.full((400, 56, 46, 1), 100.0)
  assert augment.random_erase(jax.random.key(0), images, 0.0) is images
  erased = np.asarray(augment.random_erase(jax.random.key(1), images, 1.0))
  for image in erased[:, :, :, 0]:
    rows, cols = np.nonzero(image != 100.0)
    top, bottom, left, right = rows.min(), rows.max(), cols.min(), cols.max()
    box = image[top:bottom + 1, left:right + 1]
    # One solid rectangle of noise (a noise pixel may hit 100.0 exactly: practically never).
    assert (box != 100.0).all() and len(rows) == box.size
    assert 0.015 * 56 * 46 <= box.size <= 0.22 * 56 * 46
    assert ((box >= 0) & (box <= 255)).all()
  half = np.asarray(augment.random_erase(jax.random.key(2), images, 0.5))
  share = (half != 100.0).any(axis=(1, 2, 3)).mean()
  assert 0.4 < share < 0.6
