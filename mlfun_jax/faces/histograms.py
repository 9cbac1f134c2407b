"""Grid-of-cells code histograms, the common last step of the LBP and LPQ face descriptors."""

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks


def check_faces(images, grid: tuple[int, int]) -> None:
  """Raises InputConventionError unless images are a uint8 one-channel batch [B, H, W, 1] with
  at least as many rows and columns as the grid has cells."""
  checks.check_images(images, name="images", dtype_kind="u")
  _, h, w, c = images.shape
  if c != 1 or h < grid[0] or w < grid[1]:
    raise checks.InputConventionError(
        f"images: expected one channel and at least {grid[0]}x{grid[1]} pixels (the grid), got "
        f"shape {tuple(images.shape)}")


def cell_histograms(bins: jax.Array, num_bins: int, grid: tuple[int, int]) -> jax.Array:
  """Unit-length float32 [B, grid_h * grid_w * num_bins]: the images' bin indices int [B, H, W]
  counted per grid cell (rows and columns cut as evenly as they go), each cell's histogram
  normalised by its pixel count and square-rooted (a Hellinger map), the whole scaled to length
  1, so that Euclidean distances compare faces."""
  b, h, w = bins.shape
  gh, gw = grid
  cell = (np.arange(h)[:, None] * gh // h) * gw + np.arange(w)[None, :] * gw // w  # [H, W]
  pixels = np.bincount(cell.ravel(), minlength=gh * gw).astype(np.float32)  # Per cell.
  slot = (jnp.asarray(cell)[None] * num_bins + bins).reshape(b, -1)  # (cell, bin) per pixel.
  counts = jnp.zeros((b, gh * gw * num_bins), jnp.float32).at[
      jnp.arange(b)[:, None], slot].add(1.0)  # Exact: whole numbers far below 2**24.
  flat = jnp.sqrt(counts.reshape(b, gh * gw, num_bins) / pixels[None, :, None]).reshape(b, -1)
  return flat / jnp.linalg.norm(flat, axis=-1, keepdims=True)
