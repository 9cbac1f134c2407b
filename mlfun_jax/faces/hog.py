"""Histograms of oriented gradients (Dalal and Triggs 2005) in JAX, batched over images and jitted.

Centred gradients ([-1, 0, 1], zero on the image border, as skimage.feature.hog), unsigned
orientations (0..180 degrees) in `orientations` bins, each pixel voting its gradient magnitude into
the two nearest bins (linear interpolation between bin centres; `interpolate=False`: its one bin,
as skimage), a cell's histogram being the mean vote of its `cell` x `cell` pixels; blocks of 2x2
cells normalised with L2-Hys (L2, clip at 0.2, L2 again; eps 1e-5, as skimage).

Block features of one image are [by, bx, 2 * 2 * orientations], each block flattened in
skimage's order (cell row, cell column, orientation); `hog_features` flattens them to skimage's
feature vector. Measured against skimage.feature.hog (same parameters, 9 orientations, 2x2
blocks, L2-Hys) on ORL faces (tests/faces/test_hog_detector.py): with interpolate=False they agree
to 1e-7 (float32 rounding); with the interpolation they correlate 0.967 (8 px cells) and 0.955
(6 px cells), skimage having no interpolation between bins.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks

ORIENTATIONS = 9
BLOCK = 2  # Cells per block side.
EPS = 1e-5  # skimage's L2-Hys epsilon.


def check_hog_images(images, cell: int, *, name: str = 'images') -> None:
  """Raises InputConventionError unless `images` are floats [N, H, W] with H, W >= 2 * cell."""
  checks.check_array(images, name=name, expected='float images [N, H, W]', dtype_kinds='f',
                     rank=3)
  if not isinstance(cell, (int, np.integer)) or cell < 1:
    raise checks.InputConventionError(f'cell: expected a positive int, got {cell!r}')
  if min(images.shape[1:]) < BLOCK * cell:
    raise checks.InputConventionError(f'{name}: expected H, W >= {BLOCK * cell} (2 cells of '
                                      f'{cell} px), got shape {tuple(images.shape)}')


def _gradients(images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(d/drow, d/dcol) float32 [N, H, W]: centred differences, 0 on the border rows / columns."""
  gy = jnp.zeros_like(images).at[:, 1:-1, :].set(images[:, 2:, :] - images[:, :-2, :])
  gx = jnp.zeros_like(images).at[:, :, 1:-1].set(images[:, :, 2:] - images[:, :, :-2])
  return gy, gx


def _votes(images: jax.Array, orientations: int, interpolate: bool) -> jax.Array:
  """Per-pixel votes float32 [N, H, W, orientations]."""
  gy, gx = _gradients(images)
  magnitude = jnp.hypot(gy, gx)
  angle = jnp.mod(jnp.degrees(jnp.arctan2(gy, gx)), 180.0)  # [0, 180), as skimage.
  width = 180.0 / orientations
  if not interpolate:
    bins = jnp.clip(jnp.floor(angle / width).astype(jnp.int32), 0, orientations - 1)
    return magnitude[..., None] * jax.nn.one_hot(bins, orientations, dtype=images.dtype)
  position = angle / width - 0.5  # Bin i's centre is at position i.
  low = jnp.floor(position)
  upper = position - low  # The weight of the upper bin.
  low = low.astype(jnp.int32)
  return magnitude[..., None] * (
      jax.nn.one_hot(jnp.mod(low, orientations), orientations, dtype=images.dtype)
      * (1.0 - upper)[..., None]
      + jax.nn.one_hot(jnp.mod(low + 1, orientations), orientations, dtype=images.dtype)
      * upper[..., None])


def cell_histograms(images, cell: int, orientations: int = ORIENTATIONS,
                    interpolate: bool = True) -> jax.Array:
  """`hog_cells` unchecked and traceable (call it inside jit)."""
  n, h, w = images.shape
  cy, cx = h // cell, w // cell
  votes = _votes(images.astype(jnp.float32), orientations, interpolate)
  votes = votes[:, :cy * cell, :cx * cell].reshape(n, cy, cell, cx, cell, orientations)
  return votes.sum(axis=(2, 4)) / (cell * cell)


_cells = jax.jit(cell_histograms, static_argnames=('cell', 'orientations', 'interpolate'))


def hog_cells(images, cell: int = 8, orientations: int = ORIENTATIONS,
              interpolate: bool = True) -> jax.Array:
  """Cell histograms float32 [N, H // cell, W // cell, orientations] of float images [N, H, W]
  (any intensity scale, e.g. 0..255; trailing rows/columns that fill no whole cell are unused)."""
  check_hog_images(images, cell)
  return _cells(images, cell, orientations, interpolate)


def blocks_of_cells(cells: jax.Array) -> jax.Array:
  """L2-Hys normalised 2x2-cell blocks float32 [N, cy - 1, cx - 1, 4 * O] of cells [N, cy, cx, O]
  (traceable: call it inside jit)."""
  blocks = jnp.concatenate([cells[:, :-1, :-1, None], cells[:, :-1, 1:, None],
                            cells[:, 1:, :-1, None], cells[:, 1:, 1:, None]], axis=3)
  blocks = blocks.reshape(*blocks.shape[:3], -1)  # (row, column, orientation) per block.
  blocks = blocks / jnp.sqrt(jnp.sum(jnp.square(blocks), -1, keepdims=True) + EPS ** 2)
  blocks = jnp.minimum(blocks, 0.2)
  return blocks / jnp.sqrt(jnp.sum(jnp.square(blocks), -1, keepdims=True) + EPS ** 2)


@functools.partial(jax.jit, static_argnames=('cell', 'orientations', 'interpolate'))
def _blocks(images, cell, orientations, interpolate):
  return blocks_of_cells(_cells(images, cell, orientations, interpolate))


def hog_blocks(images, cell: int = 8, orientations: int = ORIENTATIONS,
               interpolate: bool = True) -> jax.Array:
  """Block features float32 [N, H // cell - 1, W // cell - 1, 4 * orientations] of float images
  [N, H, W] (see the module docstring for the layout)."""
  check_hog_images(images, cell)
  return _blocks(images, cell, orientations, interpolate)


def hog_features(images, cell: int = 8, orientations: int = ORIENTATIONS,
                 interpolate: bool = True) -> jax.Array:
  """Flat HOG vectors float32 [N, D] of float images [N, H, W], in skimage.feature.hog's order
  (D = (H // cell - 1) * (W // cell - 1) * 4 * orientations)."""
  blocks = hog_blocks(images, cell, orientations, interpolate)
  return blocks.reshape(blocks.shape[0], -1)
