"""On-device image augmentation: pure functions of an explicit PRNG key."""

import jax
import jax.numpy as jnp


def random_shift(rng: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
  """Translates each image by up to `max_shift` pixels in each direction, filling with zeros.

  Args:
    rng: PRNG key.
    images: [B, H, W, C] images (any dtype; 0 is the fill value).
    max_shift: largest shift in pixels (0 returns `images` unchanged).

  Returns:
    [B, H, W, C] shifted images, same dtype.
  """
  if max_shift <= 0:
    return images
  b, h, w, c = images.shape
  padded = jnp.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)))
  offsets = jax.random.randint(rng, (b, 2), 0, 2 * max_shift + 1)
  crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, offsets)
