"""On-device augmentation and input corruption (denoising): pure functions of explicit PRNG keys."""

import math

import jax
import jax.numpy as jnp


SHIFT_FILLS = ("zeros", "reflect")


def random_shift(rng: jax.Array, images: jax.Array, max_shift: int,
                 fill: str = "zeros") -> jax.Array:
  """Translates each image by up to `max_shift` pixels in each direction.

  Args:
    rng: PRNG key.
    images: [B, H, W, C] images (any dtype).
    max_shift: largest shift in pixels (0 returns `images` unchanged).
    fill: what comes in at the borders: 'zeros', or 'reflect' (the image mirrored about its edge
      pixels, as the CIFAR-10 speedrun pads).

  Returns:
    [B, H, W, C] shifted images, same dtype.
  """
  if max_shift <= 0:
    return images
  if fill not in SHIFT_FILLS:
    raise ValueError(f"fill must be one of {SHIFT_FILLS}, got {fill!r}")
  b, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)),
                   mode="constant" if fill == "zeros" else "reflect")
  offsets = jax.random.randint(rng, (b, 2), 0, 2 * max_shift + 1)
  crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, offsets)


def random_flip_lr(rng: jax.Array, images: jax.Array, probability: float = 0.5) -> jax.Array:
  """Flips each image left-right with probability `probability`.

  Args:
    rng: PRNG key.
    images: [B, H, W, C] images, any dtype.
    probability: chance that an image is flipped.

  Returns:
    [B, H, W, C] images, same dtype.
  """
  flip = jax.random.bernoulli(rng, probability, (images.shape[0],))
  return jnp.where(flip[:, None, None, None], images[:, :, ::-1], images)


def _as_float(images: jax.Array) -> jax.Array:
  return images if jnp.issubdtype(images.dtype, jnp.floating) else images.astype(jnp.float32)


def _cos_sin_degrees(degrees: jax.Array) -> tuple[jax.Array, jax.Array]:
  """cos and sin of angles in degrees, exact at multiples of 90 (quadrant argument reduction)."""
  quadrant = jnp.round(degrees / 90.0)
  rest = jnp.deg2rad(degrees - 90.0 * quadrant)
  q = quadrant.astype(jnp.int32) % 4
  cos_q = jnp.array([1.0, 0.0, -1.0, 0.0], degrees.dtype)[q]
  sin_q = jnp.array([0.0, 1.0, 0.0, -1.0], degrees.dtype)[q]
  cos_r, sin_r = jnp.cos(rest), jnp.sin(rest)
  return cos_q * cos_r - sin_q * sin_r, sin_q * cos_r + cos_q * sin_r


def rotate(images: jax.Array, angles_degrees: jax.Array) -> jax.Array:
  """Rotates each image about its centre, bilinear, edge pixels extended outside the image.

  Positive angles turn the picture counter-clockwise as displayed (row 0 at the top), so +90
  equals `np.rot90(images, 1, axes=(1, 2))` on square images, and the result matches
  `scipy.ndimage.rotate(image, angle, axes=(0, 1), reshape=False, order=1, mode='nearest')`.
  Uses `jax.scipy.ndimage.map_coordinates` vmapped over images and channels; on CPU an explicit
  four-point gather was equally fast (benchmarks/augmentation.py times both).

  Args:
    images: [B, H, W, C] images; integer inputs are converted to float32.
    angles_degrees: [B] rotation angles in degrees.

  Returns:
    [B, H, W, C] rotated images, floating dtype.
  """
  images = _as_float(images)
  _, h, w, _ = images.shape
  cos, sin = _cos_sin_degrees(jnp.asarray(angles_degrees, images.dtype))
  di = (jnp.arange(h, dtype=images.dtype) - (h - 1) / 2)[:, None]  # [H, 1]
  dj = (jnp.arange(w, dtype=images.dtype) - (w - 1) / 2)[None, :]  # [1, W]

  def one(image, c, s):  # [H, W, C] image, scalar cos and sin.
    source = [(h - 1) / 2 + c * di + s * dj, (w - 1) / 2 - s * di + c * dj]  # 2 x [H, W]
    plane = lambda m: jax.scipy.ndimage.map_coordinates(m, source, order=1, mode='nearest')
    return jax.vmap(plane, in_axes=2, out_axes=2)(image)

  return jax.vmap(one)(images, cos, sin)


def random_rotate(rng: jax.Array, images: jax.Array, max_degrees: float) -> jax.Array:
  """`rotate` by per-image angles uniform in [-max_degrees, max_degrees].

  Args:
    rng: PRNG key.
    images: [B, H, W, C] images; integer inputs are converted to float32.
    max_degrees: largest absolute angle (<= 0 returns `images` unchanged).

  Returns:
    [B, H, W, C] rotated images, floating dtype.
  """
  if max_degrees <= 0:
    return images
  angles = jax.random.uniform(rng, (images.shape[0],), minval=-max_degrees, maxval=max_degrees)
  return rotate(images, angles)


def _blur_matrices(weights: jax.Array, size: int) -> jax.Array:
  """[B, size, size] matrices M with (M x)[i] = sum_k weights[:, k] x[clip(i + k - r)]."""
  radius = (weights.shape[1] - 1) // 2
  taps = jnp.arange(-radius, radius + 1)
  source = jnp.clip(jnp.arange(size)[:, None] + taps[None, :], 0, size - 1)  # [size, 2r+1]
  one_hot = jax.nn.one_hot(source, size, dtype=weights.dtype)  # [size, 2r+1, size]
  return jnp.einsum('bk,ikj->bij', weights, one_hot, precision='highest')


def blur(images: jax.Array, sigmas: jax.Array, radius: int) -> jax.Array:
  """Separable Gaussian blur with a per-image sigma, kernel [-radius, radius], edge padding.

  Each pass is a batched matmul with a banded [H, H] (then [W, W]) matrix that folds in the
  edge padding. After `rotate` on CPU this is about 5x faster than 2r+1 shifted sums, which
  XLA fuses with the rotation and recomputes per tap; the cost grows with H and W, not r.

  Args:
    images: [B, H, W, C] images; integer inputs are converted to float32.
    sigmas: [B] positive standard deviations in pixels.
    radius: kernel half-width in pixels (static).

  Returns:
    [B, H, W, C] blurred images, floating dtype.
  """
  images = _as_float(images)
  _, h, w, _ = images.shape
  taps = jnp.arange(-radius, radius + 1, dtype=images.dtype)
  sigmas = jnp.asarray(sigmas, images.dtype)[:, None]
  weights = jnp.exp(-0.5 * jnp.square(taps[None, :] / sigmas))  # [B, 2r+1]
  weights = weights / weights.sum(axis=1, keepdims=True)
  out = jnp.einsum('bij,bjwc->biwc', _blur_matrices(weights, h), images, precision='highest')
  return jnp.einsum('bvw,bhwc->bhvc', _blur_matrices(weights, w), out, precision='highest')


def random_blur(rng: jax.Array, images: jax.Array, probability: float,
                max_sigma: float) -> jax.Array:
  """With chance `probability` per image, a Gaussian blur with sigma uniform in (0, max_sigma].

  The kernel radius is ceil(3 * max_sigma); images not chosen are returned exactly.

  Args:
    rng: PRNG key.
    images: [B, H, W, C] images; integer inputs are converted to float32.
    probability: chance that an image is blurred (<= 0 returns `images` unchanged).
    max_sigma: largest sigma in pixels (<= 0 returns `images` unchanged).

  Returns:
    [B, H, W, C] images, floating dtype.
  """
  if probability <= 0 or max_sigma <= 0:
    return images
  images = _as_float(images)
  choose_rng, sigma_rng = jax.random.split(rng)
  b = images.shape[0]
  chosen = jax.random.bernoulli(choose_rng, probability, (b,))
  sigmas = max_sigma * (1.0 - jax.random.uniform(sigma_rng, (b,)))  # (0, max_sigma]
  blurred = blur(images, sigmas, math.ceil(3 * max_sigma))
  return jnp.where(chosen[:, None, None, None], blurred, images)


def augment(rng: jax.Array, images: jax.Array, *, shift: int = 0, flip: bool = False,
            rotate_degrees: float = 0.0, blur_probability: float = 0.0,
            blur_max_sigma: float = 0.0, shift_fill: str = "zeros") -> jax.Array:
  """The series' augmentations in order: shift, left-right flip, rotation, blur.

  Args:
    rng: PRNG key; each stage gets its own key split from it.
    images: [B, H, W, C] images, uint8 or float (values 0..255).
    shift: `random_shift` max_shift in pixels.
    flip: whether to flip each image left-right with probability 0.5.
    rotate_degrees: `random_rotate` max_degrees.
    blur_probability: `random_blur` probability.
    blur_max_sigma: `random_blur` max_sigma.
    shift_fill: `random_shift` fill.

  Returns:
    [B, H, W, C] float32 images.
  """
  shift_rng, flip_rng, rotate_rng, blur_rng = jax.random.split(rng, 4)
  images = random_shift(shift_rng, images.astype(jnp.float32), shift, shift_fill)
  if flip:
    images = random_flip_lr(flip_rng, images)
  images = random_rotate(rotate_rng, images, rotate_degrees)
  return random_blur(blur_rng, images, blur_probability, blur_max_sigma)


# Input corruptions for denoising autoencoders (`corrupt`).
NOISES = ("none", "gaussian", "masking", "salt_and_pepper")


def corrupt(keys: jax.Array, images: jax.Array, noise: str, level: float) -> jax.Array:
  """The input of a denoising autoencoder: float [B, H, W, C] in [0, 1], one key per image.

  'gaussian': add N(0, level^2) and clip; 'masking': zero each pixel with probability level;
  'salt_and_pepper': set each pixel to 0 or 1 (even odds) with probability level.
  """
  if noise == "none" or level == 0:
    return images

  def one(key, image):
    if noise == "gaussian":
      return jnp.clip(image + level * jax.random.normal(key, image.shape), 0.0, 1.0)
    hit_key, value_key = jax.random.split(key)
    hit = jax.random.bernoulli(hit_key, level, image.shape)
    if noise == "masking":
      return jnp.where(hit, 0.0, image)
    return jnp.where(hit, jax.random.bernoulli(value_key, 0.5, image.shape).astype(image.dtype),
                     image)

  return jax.vmap(one)(keys, images)


def random_brightness_contrast(rng: jax.Array, images: jax.Array, brightness: float,
                               contrast: float) -> jax.Array:
  """Per image: contrast scaled by a factor in [1 - contrast, 1 + contrast] about the image's
  mean, then brightness shifted by up to +-brightness * 255; clipped to 0..255.

  Args:
    rng: PRNG key.
    images: float [B, H, W, C] with values 0..255.
    brightness: largest shift, as a fraction of 255 (0 disables it).
    contrast: largest relative change of contrast (0 disables it).

  Returns:
    float32 [B, H, W, C] (the images unchanged when both are 0).
  """
  if brightness <= 0 and contrast <= 0:
    return images
  b = images.shape[0]
  c_rng, b_rng = jax.random.split(rng)
  factor = 1.0 + contrast * jax.random.uniform(c_rng, (b, 1, 1, 1), minval=-1.0, maxval=1.0)
  shift = 255.0 * brightness * jax.random.uniform(b_rng, (b, 1, 1, 1), minval=-1.0, maxval=1.0)
  mean = images.mean(axis=(1, 2, 3), keepdims=True)
  return jnp.clip((images - mean) * factor + mean + shift, 0.0, 255.0)


def random_erase(rng: jax.Array, images: jax.Array, probability: float,
                 area: tuple[float, float] = (0.02, 0.2),
                 aspect: tuple[float, float] = (0.3, 3.3)) -> jax.Array:
  """Random erasing (Zhong et al. 2020): with `probability`, one rectangle of each image is
  filled with uniform noise over 0..255.

  The rectangle covers a fraction of the image drawn uniformly from `area`, its height / width
  ratio is drawn log-uniformly from `aspect` (clipped to the image), and it lies wholly inside.

  Args:
    rng: PRNG key.
    images: float [B, H, W, C] with values 0..255.
    probability: chance that an image gets a rectangle (0 returns `images` unchanged).

  Returns:
    float32 [B, H, W, C].
  """
  if probability <= 0:
    return images
  b, h, w, c = images.shape
  keys = jax.random.split(rng, 6)
  chosen = jax.random.bernoulli(keys[0], probability, (b,))
  fraction = jax.random.uniform(keys[1], (b,), minval=area[0], maxval=area[1])
  log_ratio = jax.random.uniform(keys[2], (b,), minval=math.log(aspect[0]),
                                 maxval=math.log(aspect[1]))
  size = fraction * h * w
  box_h = jnp.clip(jnp.round(jnp.sqrt(size * jnp.exp(log_ratio))), 1, h)
  box_w = jnp.clip(jnp.round(jnp.sqrt(size / jnp.exp(log_ratio))), 1, w)
  top = jnp.floor(jax.random.uniform(keys[3], (b,)) * (h - box_h + 1))
  left = jnp.floor(jax.random.uniform(keys[4], (b,)) * (w - box_w + 1))
  rows = jnp.arange(h)[None, :, None]
  cols = jnp.arange(w)[None, None, :]
  inside = ((rows >= top[:, None, None]) & (rows < (top + box_h)[:, None, None])
            & (cols >= left[:, None, None]) & (cols < (left + box_w)[:, None, None]))
  inside = inside & chosen[:, None, None]
  noise = jax.random.uniform(keys[5], images.shape, minval=0.0, maxval=255.0)
  return jnp.where(inside[..., None], noise, images.astype(jnp.float32))
