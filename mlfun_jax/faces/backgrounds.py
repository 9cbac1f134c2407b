"""New backgrounds behind training faces, so a network that sees past the face box reads the head,
not the wall behind it.

ORL photographed every person before the same dark wall, with the same framing: a network given
the hair and head outline (config.face_margin > 0) names ORL's people far better, but it may also
lean on what lies around the head, which in a photo is whatever stood behind the person. With
probability config.augment.background a training face keeps its head - a soft ellipse jittered
in place and size, in the network's input pixels - and gets a random square of a package photo
without people (`detector_windows.package_photos`, none of them a background of the detection or
naming benchmarks) around it, at a random brightness and contrast.
"""

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.faces import detector_windows

BANK_SIZE = 512  # Background squares drawn once per run.
HEAD_CENTRE = (46.0, 56.0)  # (x, y) of the head ellipse in ORL frame pixels (92x112).
HEAD_AXES = (44.0, 56.0)  # Its semi-axes: hair, ears and chin of an ORL person inside.
FEATHER = 0.25  # The mask fades from 1 to 0 over this fraction of the ellipse's radius.
JITTER_SHIFT = 4.0  # The ellipse moves up to this many ORL pixels each way,
JITTER_SCALE = 0.1  # and its axes scale by up to +-10%.


def background_bank(shape: tuple[int, int], key, count: int = BANK_SIZE) -> np.ndarray:
  """uint8 [count, H, W, 1]: random squares (random place, size and mirror) of the package photos
  without people, scaled to `shape` = (H, W) (centre-cropped to its aspect ratio)."""
  height, width = shape
  side = max(height, width, 8)
  squares = detector_windows.negative_windows(detector_windows.package_photos(), count, key, side)
  if (height, width) != (side, side):
    top, left = (side - height) // 2, (side - width) // 2
    squares = squares[:, top:top + height, left:left + width]
  return np.ascontiguousarray(squares[..., None])


def input_grid(shape: tuple[int, int], box) -> tuple[np.ndarray, np.ndarray]:
  """(x [H, W], y [H, W]) float32: the ORL-frame position of each input pixel's centre for a
  network that sees `box` (left, top, right, bottom; None: the whole 92x112 frame) of a face frame
  scaled to `shape` = (H, W), centre-cropped to its aspect ratio as `face_data.face_box_input`
  crops it."""
  height, width = shape
  left, top, right, bottom = box if box is not None else (0, 0, 92, 112)
  box_w, box_h = right - left, bottom - top
  scale = min(box_w / width, box_h / height)  # ORL pixels per input pixel, after the crop.
  x0 = left + (box_w - width * scale) / 2
  y0 = top + (box_h - height * scale) / 2
  xs = x0 + (np.arange(width) + 0.5) * scale
  ys = y0 + (np.arange(height) + 0.5) * scale
  return tuple(np.asarray(a, np.float32) for a in np.meshgrid(xs, ys))


def head_mask(key: jax.Array, grid: tuple[np.ndarray, np.ndarray]) -> jax.Array:
  """float32 [H, W] in [0, 1]: 1 on the head (the jittered soft ellipse), 0 around it."""
  shift_key, scale_key = jax.random.split(key)
  dx, dy = jax.random.uniform(shift_key, (2,), minval=-JITTER_SHIFT, maxval=JITTER_SHIFT)
  sx, sy = 1.0 + jax.random.uniform(scale_key, (2,), minval=-JITTER_SCALE, maxval=JITTER_SCALE)
  x, y = grid
  radius = jnp.hypot((x - HEAD_CENTRE[0] - dx) / (HEAD_AXES[0] * sx),
                     (y - HEAD_CENTRE[1] - dy) / (HEAD_AXES[1] * sy))
  alpha = jnp.clip((1.0 - radius) / FEATHER, 0.0, 1.0)
  return alpha * alpha * (3.0 - 2.0 * alpha)


def replace_background(key: jax.Array, image: jax.Array, bank: jax.Array,
                       grid: tuple[np.ndarray, np.ndarray], probability: float) -> jax.Array:
  """float32 [H, W, C]: with `probability`, the face `image` [H, W, C] (0..255) on a random square
  of `bank` (uint8 [N, H, W, C]) mirrored at random, its values v made (v - 128) * contrast + 128
  + brightness (contrast 0.5..1.5, brightness +-40); else `image` unchanged."""
  image = image.astype(jnp.float32)
  if probability <= 0:
    return image
  use_key, pick_key, flip_key, light_key, mask_key = jax.random.split(key, 5)
  bank = jnp.asarray(bank)
  background = bank[jax.random.randint(pick_key, (), 0, bank.shape[0])].astype(jnp.float32)
  background = jnp.where(jax.random.bernoulli(flip_key), background[:, ::-1], background)
  contrast, brightness = jax.random.uniform(light_key, (2,), minval=-1.0, maxval=1.0)
  background = jnp.clip((background - 128.0) * (1.0 + 0.5 * contrast) + 128.0 + 40.0 * brightness,
                        0.0, 255.0)
  alpha = head_mask(mask_key, grid)[..., None]
  blended = alpha * image + (1.0 - alpha) * background
  return jnp.where(jax.random.bernoulli(use_key, probability), blended, image)

