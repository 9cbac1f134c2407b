"""Local binary pattern (LBP) face descriptors in JAX (Ahonen, Hadid and Pietikainen 2006).

Each pixel is compared with P = 8 points on a circle of radius R around it (bilinear
interpolation, as scikit-image's `local_binary_pattern`): the bits "neighbour >= centre" form an
8-bit code. Codes with at most two 0/1 changes around the circle (58 "uniform" patterns: spots,
edges, corners, line ends) keep a bin each, all others share one: 59 bins. The face is cut into a
grid of cells, each cell's histogram counts its codes, and the descriptor is the square root of
the normalised histograms (a Hellinger map), scaled to unit length: two faces compare by the
Euclidean distance of their descriptors, as embeddings do. Nothing here is trained, so it knows
people the embedding network never saw just as well as those it did.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.faces import histograms

POINTS = 8
BINS = POINTS * (POINTS - 1) + 3  # 58 uniform patterns + 1 bin for the rest.


@functools.cache
def uniform_bins() -> np.ndarray:
  """int32 [256], read-only: the bin of every 8-bit code (uniform codes 0..57 in code order, the
  rest 58)."""
  bins = np.full(2 ** POINTS, BINS - 1, np.int32)
  next_bin = 0
  for code in range(2 ** POINTS):
    bits = [(code >> i) & 1 for i in range(POINTS)]
    changes = sum(bits[i] != bits[(i + 1) % POINTS] for i in range(POINTS))
    if changes <= 2:
      bins[code] = next_bin
      next_bin += 1
  bins.flags.writeable = False
  return bins


def _bilinear_shift(image: jax.Array, dy: float, dx: float) -> jax.Array:
  """image [B, H, W] sampled at (y + dy, x + dx) for every pixel (0 outside, as scikit-image)."""
  y0, x0 = math.floor(dy), math.floor(dx)
  fy, fx = dy - y0, dx - x0
  pad = 3 + int(max(abs(dy), abs(dx)))
  padded = jnp.pad(image, ((0, 0), (pad, pad), (pad, pad)))
  h, w = image.shape[1:]

  def at(oy, ox):
    return padded[:, pad + oy:pad + oy + h, pad + ox:pad + ox + w]

  return ((1 - fy) * (1 - fx) * at(y0, x0) + (1 - fy) * fx * at(y0, x0 + 1)
          + fy * (1 - fx) * at(y0 + 1, x0) + fy * fx * at(y0 + 1, x0 + 1))


def codes(images: jax.Array, radius: float = 2.0) -> jax.Array:
  """int32 [B, H, W] 8-bit LBP codes of grey images [B, H, W] (any real dtype): bit k is set when
  the point at angle 2 pi k / 8 on the circle of `radius` (y up) is >= the centre pixel.

  Raises:
    InputConventionError: images that are not a batch [B, H, W].
  """
  checks.check_array(images, name="images", expected="grey images [B, H, W]", rank=3)
  images = jnp.asarray(images, jnp.float32)
  code = jnp.zeros(images.shape, jnp.int32)
  for k in range(POINTS):
    angle = 2 * math.pi * k / POINTS
    dy, dx = round(-radius * math.sin(angle), 5), round(radius * math.cos(angle), 5)
    neighbour = _bilinear_shift(images, dy, dx)
    code = code | ((neighbour >= images).astype(jnp.int32) << k)
  return code


def descriptors(images: jax.Array, grid: tuple[int, int] = (4, 4), radius: float = 2.0
                ) -> jax.Array:
  """Unit-length float32 [B, grid_h * grid_w * 59] LBP descriptors of uint8 images
  [B, H, W, 1] (0..255): per grid cell (rows and columns cut as evenly as they go) the histogram
  of uniform codes (`codes`, `uniform_bins`), normalised, square-rooted; the whole scaled to
  length 1.

  Raises:
    InputConventionError: images that are not a uint8 one-channel batch [B, H, W, 1], or smaller
      than the grid.
  """
  histograms.check_faces(images, grid)
  bins = jnp.asarray(uniform_bins())[codes(images[..., 0], radius)]  # [B, H, W]
  return histograms.cell_histograms(bins, BINS, grid)
