"""The series' 8-bit look: snap generated images to the NES palette and blow them up pixel-sharp."""

import operator

import numpy as np

from mlfun_jax.core import checks

# The NES (2C02, NTSC) palette as published at
# http://www.thealmightyguru.com/Games/Hacking/Docs/NES-NTSC-Palette.txt (the table on Wikipedia's
# "List of video game console palettes" and in many emulators), 64 entries in index order $00-$3F.
_NES_64 = (
    0x7C7C7C, 0x0000FC, 0x0000BC, 0x4428BC, 0x940084, 0xA80020, 0xA81000, 0x881400,
    0x503000, 0x007800, 0x006800, 0x005800, 0x004058, 0x000000, 0x000000, 0x000000,
    0xBCBCBC, 0x0078F8, 0x0058F8, 0x6844FC, 0xD800CC, 0xE40058, 0xF83800, 0xE45C10,
    0xAC7C00, 0x00B800, 0x00A800, 0x00A844, 0x008888, 0x000000, 0x000000, 0x000000,
    0xF8F8F8, 0x3CBCFC, 0x6888FC, 0x9878F8, 0xF878F8, 0xF85898, 0xF87858, 0xFCA044,
    0xF8B800, 0xB8F818, 0x58D854, 0x58F898, 0x00E8D8, 0x787878, 0x000000, 0x000000,
    0xFCFCFC, 0xA4E4FC, 0xB8B8F8, 0xD8B8F8, 0xF8B8F8, 0xF8A4C0, 0xF0D0B0, 0xFCE0A8,
    0xF8D878, 0xD8F878, 0xB8F8B8, 0xB8F8D8, 0x00FCFC, 0xF8D8F8, 0x000000, 0x000000,
)


def _distinct_rgb(hex_colours: tuple[int, ...]) -> np.ndarray:
  """uint8 [M, 3]: the 0xRRGGBB colours, each kept once in first-seen order."""
  unique = list(dict.fromkeys(hex_colours))
  return np.array([[c >> 16, (c >> 8) & 0xFF, c & 0xFF] for c in unique], np.uint8)


NES_PALETTE = _distinct_rgb(_NES_64)  # uint8 [55, 3]: the 64 entries without repeated blacks.
NES_PALETTE.flags.writeable = False


def _to_uint8_rgb(images: np.ndarray, signed: bool) -> np.ndarray:
  """uint8 [N, H, W, 3] from uint8 or float ([0, 1], or [-1, 1] if `signed`) [N, H, W, 1 or 3]."""
  images = np.asarray(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f'images must be [N, H, W, 1 or 3], got shape {images.shape}')
  if images.dtype != np.uint8:
    checks.check_images(images, name='images', dtype_kind='f',
                        value_range=(-1.0, 1.0) if signed else (0.0, 1.0))
    images = images.astype(np.float32)
    scaled = (images + 1.0) * 127.5 if signed else images * 255.0
    images = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return images


def to_palette(images: np.ndarray, palette: np.ndarray = NES_PALETTE, *, signed: bool = False,
               chunk_pixels: int = 65536) -> np.ndarray:
  """Replaces each pixel by the nearest palette colour (Euclidean in RGB, first entry on ties).

  Args:
    images: uint8 [N, H, W, C], or float in [0, 1] ([-1, 1] when `signed`), C 1 (grey) or 3.
      Floats are rounded to 8-bit first, so they match the equivalent uint8 images exactly; other
      dtypes and floats outside their range raise checks.InputConventionError.
    palette: uint8 [M, 3] colours.
    signed: float images are in [-1, 1] rather than [0, 1] (ignored for uint8).
    chunk_pixels: pixels matched at a time; memory is about chunk_pixels * M * 4 bytes.

  Returns:
    uint8 [N, H, W, 3] whose every pixel is a row of `palette`.
  """
  palette = np.asarray(palette, np.uint8)
  if palette.ndim != 2 or palette.shape[1] != 3 or palette.shape[0] < 1:
    raise ValueError(f'palette must be [M, 3], got shape {palette.shape}')
  if chunk_pixels < 1:
    raise ValueError(f'chunk_pixels must be >= 1, got {chunk_pixels}')
  rgb = _to_uint8_rgb(images, signed)
  pixels = rgb.reshape(-1, 3)
  # argmin_k ||x - p_k||^2 = argmin_k (||p_k||^2 - 2 x.p_k); all integers below 2^24, so float32
  # is exact and ties break the same way as with integer arithmetic.
  colours = palette.astype(np.float32)
  norms = np.sum(colours * colours, axis=1)
  index = np.empty(pixels.shape[0], np.intp)
  for start in range(0, pixels.shape[0], chunk_pixels):
    chunk = pixels[start:start + chunk_pixels].astype(np.float32)
    index[start:start + chunk_pixels] = np.argmin(norms - 2.0 * (chunk @ colours.T), axis=1)
  return palette[index].reshape(rgb.shape)


def upsize_nearest(images: np.ndarray, factor: int) -> np.ndarray:
  """[N, H, W, C] -> [N, H * factor, W * factor, C] by repeating pixels; any dtype, factor >= 1."""
  factor = operator.index(factor)
  if factor < 1:
    raise ValueError(f'factor must be >= 1, got {factor}')
  images = np.asarray(images)
  if images.ndim != 4:
    raise ValueError(f'images must be [N, H, W, C], got shape {images.shape}')
  return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def pixel_art(images: np.ndarray, factor: int = 4, palette: np.ndarray = NES_PALETTE,
              signed: bool = False) -> np.ndarray:
  """uint8 [N, H * factor, W * factor, 3]: `to_palette` then `upsize_nearest` (see those)."""
  return upsize_nearest(to_palette(images, palette, signed=signed), factor)
