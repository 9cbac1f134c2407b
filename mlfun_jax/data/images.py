"""Image files -> model inputs: any size and format to the model's [H, W, C] uint8 layout.

Images of more than `MAX_IMAGE_PIXELS` pixels (8192 x 8192) are refused before they are decoded:
one decoded photo of that size already takes 200 MB, and a small file can claim a huge size (a
decompression bomb).
"""

import contextlib
import os
import re
import warnings

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from mlfun_jax.core.errors import UserError

INVERT_CHOICES = ("auto", "yes", "no")
MAX_IMAGE_PIXELS = 8192 * 8192
FIT_CHOICES = ("pad", "crop")


def to_model_input(image: Image.Image, shape: tuple[int, int, int], invert: str = "auto",
                   fit: str = "pad") -> np.ndarray:
  """Converts a PIL image of any size to uint8 [H, W, C] for a model trained on `shape` = (H, W, C).

  Colour is converted to grey (C=1) or RGB (C=3). `fit='pad'` (digits) pads the image to a square
  with its border colour, keeping all of it, then resizes; `fit='crop'` (photos, as image-folder
  datasets are prepared) scales the image to cover the model's size and crops the centre (see
  `resize_and_center_crop`). For grey models trained on light-on-dark digits (MNIST),
  `invert='auto'` inverts images whose border is light (dark ink on white paper).
  """
  if fit not in FIT_CHOICES:
    raise UserError(f"unknown fit {fit!r}; choose one of {', '.join(FIT_CHOICES)}")
  height, width, channels = shape
  image = image.convert("L" if channels == 1 else "RGB")
  if fit == "crop":
    image = resize_and_center_crop(image, (width, height))
  pixels = np.asarray(image, np.uint8)
  border = np.concatenate([pixels[0].reshape(-1), pixels[-1].reshape(-1),
                           pixels[:, 0].reshape(-1), pixels[:, -1].reshape(-1)])
  if invert == "yes" or (invert == "auto" and channels == 1 and border.mean() > 127):
    pixels = 255 - pixels
  if fit == "pad":
    pixels = _pad_to_square_and_resize(pixels, width, height)
  return pixels.reshape(height, width, channels)


def _pad_to_square_and_resize(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
  """uint8 [h, w(, C)] -> [height, width(, C)]: padded to a square with the median colour of the
  top and bottom rows, then resized (LANCZOS)."""
  fill = np.median(np.concatenate([pixels[0], pixels[-1]]), axis=0).astype(np.uint8)
  h, w = pixels.shape[:2]
  side = max(h, w)
  square = np.empty((side, side) + pixels.shape[2:], np.uint8)
  square[...] = fill
  top, left = (side - h) // 2, (side - w) // 2
  square[top:top + h, left:left + w] = pixels
  return np.asarray(Image.fromarray(square).resize((width, height), Image.Resampling.LANCZOS),
                    np.uint8)


def _too_large(path: str, size: str) -> UserError:
  return UserError(f"image {path!r} has {size} pixels; at most {MAX_IMAGE_PIXELS:,} (8192 x 8192) "
                   "are read")


@contextlib.contextmanager
def open_image(path: str):
  """`PIL.Image.open(path)` with its header read, not yet decoded, for a `with` block.

  Raises:
    UserError: naming the file when it is missing, a folder, not an image, or larger than
      `MAX_IMAGE_PIXELS` (checked on the header, before anything is decoded).
  """
  if os.path.isdir(path):
    raise UserError(f"{path!r} is a folder, not an image file")
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", Image.DecompressionBombWarning)
      image = Image.open(path)
  except FileNotFoundError as e:
    raise UserError(f"image file {path!r} does not exist") from e
  except Image.DecompressionBombError as e:
    pixels = re.search(r"\d+", str(e))  # "Image size (N pixels) exceeds limit of ..."
    raise _too_large(path, f"{int(pixels.group()):,}" if pixels else "too many") from e
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
    raise UserError(f"{path!r} is not a readable image: {e}") from e
  with image:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
      raise _too_large(path, f"{width} x {height} = {width * height:,}")
    if width == 0 or height == 0:
      raise UserError(f"image {path!r} is empty ({width} x {height} pixels)")
    yield image


def load_image(path: str, shape: tuple[int, int, int], invert: str = "auto",
               fit: str = "pad") -> np.ndarray:
  """Reads an image file as uint8 [H, W, C] model input (see `to_model_input`).

  Raises:
    UserError: naming the file when it is missing, not an image or too large (`open_image`).
  """
  with open_image(path) as image:
    try:
      image.load()
      return to_model_input(image, shape, invert, fit)
    except (OSError, ValueError, SyntaxError, EOFError) as e:
      raise UserError(f"{path!r} is not a readable image: {e}") from e


def resize_and_center_crop(image: Image.Image, size: int | tuple[int, int]) -> Image.Image:
  """Scales an image to just cover `size` and crops the centre: any image -> that size, same mode.

  `size` is the side of a square, or (width, height). Resampling is LANCZOS (antialiased when
  shrinking) over exactly the largest central box of the target's aspect ratio (for a square: of
  side min(W, H)), so no intermediate rounding shifts the crop; `reducing_gap=3.0` lets Pillow
  first shrink big photos by an integer factor (fast, visually the same). An image that already
  covers the target exactly along one side is only cropped (no resampling): its pixels are kept.
  """
  width, height = (size, size) if isinstance(size, int) else size
  if width <= 0 or height <= 0:
    raise ValueError(f"size must be positive, got {size}")
  box_width = min(image.width, image.height * width / height)
  box_height = box_width * height / width
  if box_width == width:
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))
  left, top = (image.width - box_width) / 2, (image.height - box_height) / 2
  return image.resize((width, height), Image.Resampling.LANCZOS,
                      box=(left, top, left + box_width, top + box_height), reducing_gap=3.0)
