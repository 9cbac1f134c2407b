"""Image augmentation throughput: jitted `augment.augment` on the JAX CPU device vs numpy/scipy.

  python benchmarks/augmentation.py
  python benchmarks/augmentation.py --steps=100 --batch_size=256

Both sides take the same uint8 [B, H, W, C] batch from host memory and do left-right flip (p=0.5),
rotation uniform in [-25, 25] degrees (bilinear, mode 'nearest') and Gaussian blur (p=0.5, sigma in
(0, 1], radius 3, mode 'nearest'), returning float32. The host side is a per-image scipy.ndimage
loop. Also checks that the two agree on fixed angles and sigmas, and times the device rotation
(vmapped `jax.scipy.ndimage.map_coordinates`) against an explicit four-point gather, alone and
inside `augment`. Run on an otherwise idle machine.
"""

import math
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np
import scipy.ndimage

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_BATCH = flags.DEFINE_integer("batch_size", 128, "Images per batch.")
_STEPS = flags.DEFINE_integer("steps", 50, "Timed batches per repeat (after warm-up).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", 32, "Image height and width.")
_CHANNELS = flags.DEFINE_integer("channels", 3, "Image channels.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats per variant; the best is reported.")

_SETTINGS = dict(shift=0, flip=True, rotate_degrees=25.0, blur_probability=0.5, blur_max_sigma=1.0)


def host_rotate(image: np.ndarray, degrees: float) -> np.ndarray:
  """[H, W, C] float32 rotated like `augment.rotate` (counter-clockwise as displayed)."""
  return scipy.ndimage.rotate(image, degrees, axes=(0, 1), reshape=False, order=1, mode="nearest")


def host_blur(image: np.ndarray, sigma: float, radius: int) -> np.ndarray:
  """[H, W, C] float32 Gaussian blur like `augment.blur`."""
  return scipy.ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="nearest",
                                       radius=(radius, radius, 0))


def host_augment(rng: np.random.Generator, images: np.ndarray, *, shift=0, flip=False,
                 rotate_degrees=0.0, blur_probability=0.0, blur_max_sigma=0.0) -> np.ndarray:
  """numpy/scipy counterpart of `augment.augment`: [B, H, W, C] any dtype -> float32."""
  images = images.astype(np.float32)
  b, h, w, _ = images.shape
  if shift > 0:
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
    offsets = rng.integers(0, 2 * shift + 1, (b, 2))
    images = np.stack([p[o[0]:o[0] + h, o[1]:o[1] + w] for p, o in zip(padded, offsets)])
  if flip:
    chosen = rng.random(b) < 0.5
    images[chosen] = images[chosen, :, ::-1]
  if rotate_degrees > 0:
    angles = rng.uniform(-rotate_degrees, rotate_degrees, b)
    images = np.stack([host_rotate(image, a) for image, a in zip(images, angles)])
  if blur_probability > 0 and blur_max_sigma > 0:
    radius = math.ceil(3 * blur_max_sigma)
    sigmas = blur_max_sigma * (1.0 - rng.random(b))
    for i in np.flatnonzero(rng.random(b) < blur_probability):
      images[i] = host_blur(images[i], sigmas[i], radius)
  return images


def _rotate_gather(images, angles_degrees):
  """`augment.rotate` as an explicit four-point gather (the alternative to map_coordinates)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from mlfun_jax.data import augment  # pylint: disable=g-import-not-at-top
  _, h, w, _ = images.shape
  cos, sin = augment._cos_sin_degrees(angles_degrees)  # pylint: disable=protected-access
  di = (jnp.arange(h, dtype=jnp.float32) - (h - 1) / 2)[None, :, None]
  dj = (jnp.arange(w, dtype=jnp.float32) - (w - 1) / 2)[None, None, :]
  cos, sin = cos[:, None, None], sin[:, None, None]
  rows, cols = (h - 1) / 2 + cos * di + sin * dj, (w - 1) / 2 - sin * di + cos * dj  # [B, H, W]
  r0, c0 = jnp.floor(rows), jnp.floor(cols)
  fr, fc = (rows - r0)[..., None], (cols - c0)[..., None]
  r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
  pixel = lambda m, r, c: m[jnp.clip(r, 0, h - 1), jnp.clip(c, 0, w - 1)]
  gather = jax.vmap(jax.vmap(pixel, in_axes=(2, None, None), out_axes=2))  # over B, then C.
  top = (1 - fc) * gather(images, r0, c0) + fc * gather(images, r0, c0 + 1)
  bottom = (1 - fc) * gather(images, r0 + 1, c0) + fc * gather(images, r0 + 1, c0 + 1)
  return (1 - fr) * top + fr * bottom


def _best_rate(run_batch, steps, repeats, batch_size):
  best = 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    for i in range(steps):
      run_batch(i)
    best = max(best, steps * batch_size / (time.perf_counter() - start))
  return best


def _augment_fn(rotate_fn=None):
  """jitted (step, uint8 images) -> `augment.augment` with _SETTINGS, optionally another rotate."""
  import jax  # pylint: disable=g-import-not-at-top
  from mlfun_jax.data import augment  # pylint: disable=g-import-not-at-top
  key = jax.random.key(0)
  if rotate_fn is None:
    return jax.jit(lambda step, x: augment.augment(jax.random.fold_in(key, step), x, **_SETTINGS))

  def fn(step, x):  # augment.augment's stages and keys (shift is 0), with rotate_fn.
    _, flip_key, rotate_key, blur_key = jax.random.split(jax.random.fold_in(key, step), 4)
    x = augment.random_flip_lr(flip_key, x.astype("float32"))
    degrees = _SETTINGS["rotate_degrees"]
    x = rotate_fn(x, jax.random.uniform(rotate_key, (len(x),), minval=-degrees, maxval=degrees))
    return augment.random_blur(blur_key, x, _SETTINGS["blur_probability"],
                               _SETTINGS["blur_max_sigma"])

  return jax.jit(fn)


def bench_device(images, steps, repeats, rotate_fn=None):
  """(compile seconds, best images/s) of jitted augmentation on the default JAX device."""
  import jax  # pylint: disable=g-import-not-at-top
  fn = _augment_fn(rotate_fn)
  start = time.perf_counter()
  jax.block_until_ready(fn(0, images))
  compile_seconds = time.perf_counter() - start
  # Each batch starts in host memory as uint8 and is waited for, like the host side.
  run = lambda i: jax.block_until_ready(fn(i, images))
  return compile_seconds, _best_rate(run, steps, repeats, len(images))


def bench_host(images, steps, repeats):
  rng = np.random.default_rng(0)
  return _best_rate(lambda i: host_augment(rng, images, **_SETTINGS), steps, repeats, len(images))


def bench_rotations(images, steps, repeats):
  """Best images/s of jitted rotation alone: {variant: rate}."""
  import jax  # pylint: disable=g-import-not-at-top
  from mlfun_jax.data import augment  # pylint: disable=g-import-not-at-top
  x = jax.device_put(images.astype(np.float32))
  angles = jax.device_put(np.random.default_rng(1).uniform(-25, 25, len(images)).astype(np.float32))
  rates = {}
  for name, f in [("map_coordinates", augment.rotate), ("explicit gather", _rotate_gather)]:
    fn = jax.jit(f)
    jax.block_until_ready(fn(x, angles))
    rates[name] = _best_rate(lambda i, fn=fn: jax.block_until_ready(fn(x, angles)), steps, repeats,
                             len(images))
  return rates


def check_agreement(images):
  """Largest |device - host| of rotate and blur on the same angles and sigmas (values 0..255)."""
  from mlfun_jax.data import augment  # pylint: disable=g-import-not-at-top
  x = images[:16].astype(np.float32)
  rng = np.random.default_rng(2)
  angles = rng.uniform(-25, 25, len(x)).astype(np.float32)
  sigmas = rng.uniform(0.05, 1.0, len(x)).astype(np.float32)
  rotated = np.stack([host_rotate(image, a) for image, a in zip(x, angles)])
  blurred = np.stack([host_blur(image, s, 3) for image, s in zip(x, sigmas)])
  return (float(np.abs(np.asarray(augment.rotate(x, angles)) - rotated).max()),
          float(np.abs(np.asarray(augment.blur(x, sigmas, 3)) - blurred).max()))


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  b, s, c = _BATCH.value, _IMAGE_SIZE.value, _CHANNELS.value
  images = np.random.default_rng(0).integers(0, 256, (b, s, s, c), dtype=np.uint8)
  print(f"batch {b}x{s}x{s}x{c} uint8, {_SETTINGS}; JAX devices: {jax.devices()}")
  rotate_error, blur_error = check_agreement(images)
  print(f"device vs host max |diff| on 0..255: rotate {rotate_error:.2g}, blur {blur_error:.2g}")
  compile_seconds, device_rate = bench_device(images, _STEPS.value, _REPEATS.value)
  host_rate = bench_host(images, _STEPS.value, _REPEATS.value)
  print(f"jax jit ({jax.devices()[0].platform}): {device_rate:10,.0f} images/s "
        f"(compile {compile_seconds:.2f} s)")
  print(f"numpy/scipy host:  {host_rate:10,.0f} images/s")
  faster, ratio = ("jax", device_rate / host_rate) if device_rate > host_rate else (
      "numpy/scipy", host_rate / device_rate)
  print(f"faster: {faster} by {ratio:.1f}x")
  _, gather_rate = bench_device(images, _STEPS.value, _REPEATS.value, _rotate_gather)
  print(f"jax jit with the explicit-gather rotation: {gather_rate:10,.0f} images/s")
  for name, rate in bench_rotations(images, _STEPS.value, _REPEATS.value).items():
    print(f"rotation only, {name:16s} {rate:10,.0f} images/s")


if __name__ == "__main__":
  app.run(main)
