"""Local phase quantization (LPQ) face descriptors in JAX (Ojansivu and Heikkila 2008).

Around each pixel a 7x7 window's short-term Fourier transform is taken at four low frequencies
(a, 0), (0, a), (a, a), (a, -a) with a = 1/7 (zero outside the image); the signs of their real
and imaginary parts form an 8-bit code. The phase of low frequencies barely moves when a face is
blurred or lit differently, and it reads texture at a larger scale than LBP's 8 neighbours: the
two descriptors err on different faces. As with LBP, each grid cell's histogram of the 256 codes
is normalised and square-rooted, and the whole scaled to unit length. Nothing here is trained.
"""

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.faces import histograms

BINS = 256
WINDOW = 7


def _taps(window: int) -> tuple[np.ndarray, np.ndarray]:
  """(ones, wave) complex filter taps [window] over the offsets d = -r..r of a window: 1, and
  exp(-2 pi i a d) with a = 1/window (its conjugate is the wave of frequency -a)."""
  offsets = np.arange(window) - (window - 1) // 2
  return (np.ones(window, np.complex64),
          np.exp(-2j * np.pi * offsets / window).astype(np.complex64))


def _correlate(image: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
  """Complex image [B, H, W] correlated with `taps` [K] along axis 1 (y) or 2 (x), zero padded."""
  r = (len(taps) - 1) // 2
  pad = [(0, 0)] * 3
  pad[axis] = (r, r)
  padded = jnp.pad(image, pad)
  size = image.shape[axis]
  return sum(taps[k] * jax.lax.slice_in_dim(padded, k, k + size, axis=axis)
             for k in range(len(taps)))


def codes(images: jax.Array, window: int = WINDOW) -> jax.Array:
  """int32 [B, H, W] 8-bit LPQ codes of grey images [B, H, W] (any real dtype): for the k-th
  frequency of (a, 0), (0, a), (a, a), (a, -a), bit 2k is set when the real part of the window's
  transform is >= 0 and bit 2k + 1 when its imaginary part is.

  Raises:
    InputConventionError: images that are not a batch [B, H, W], or an even window.
  """
  checks.check_array(images, name="images", expected="grey images [B, H, W]", rank=3)
  if window < 3 or window % 2 == 0:
    raise checks.InputConventionError(f"window: expected an odd size >= 3, got {window}")
  image = jnp.asarray(images, jnp.float32).astype(jnp.complex64)
  ones, wave = _taps(window)
  # F(u) at a pixel = sum over the window offsets (dy, dx) of f(y + dy, x + dx) exp(-2 pi i u.d):
  # separable, rows (x) first; three of the four frequencies share the rows' wave pass.
  rows_wave, rows_ones = _correlate(image, wave, axis=2), _correlate(image, ones, axis=2)
  transforms = (_correlate(rows_wave, ones, axis=1), _correlate(rows_ones, wave, axis=1),
                _correlate(rows_wave, wave, axis=1), _correlate(rows_wave, np.conj(wave), axis=1))
  code = jnp.zeros(images.shape, jnp.int32)
  for k, transform in enumerate(transforms):
    code = code | ((jnp.real(transform) >= 0).astype(jnp.int32) << (2 * k))
    code = code | ((jnp.imag(transform) >= 0).astype(jnp.int32) << (2 * k + 1))
  return code


def descriptors(images: jax.Array, grid: tuple[int, int] = (4, 4), window: int = WINDOW
                ) -> jax.Array:
  """Unit-length float32 [B, grid_h * grid_w * 256] LPQ descriptors of uint8 images
  [B, H, W, 1] (0..255): per grid cell the normalised, square-rooted histogram of `codes`.

  Raises:
    InputConventionError: images that are not a uint8 one-channel batch [B, H, W, 1], or smaller
      than the grid.
  """
  histograms.check_faces(images, grid)
  return histograms.cell_histograms(codes(images[..., 0], window), BINS, grid)

