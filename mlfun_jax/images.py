"""Image files -> model inputs: any size and format to the model's [H, W, C] uint8 layout."""

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from mlfun_jax.errors import UserError

INVERT_CHOICES = ("auto", "yes", "no")


FIT_CHOICES = ("pad", "crop")


def to_model_input(image: Image.Image, shape: tuple[int, int, int], invert: str = "auto",
                   fit: str = "pad") -> np.ndarray:
  """Converts a PIL image of any size to uint8 [H, W, C] for a model trained on `shape` = (H, W, C).

  Colour is converted to grey (C=1) or RGB (C=3). `fit='pad'` (digits) pads the image to a square
  with its border colour, keeping all of it, then resizes; `fit='crop'` (photos, as image-folder
  datasets are prepared) scales the shorter side to the model's size and crops the centre (see
  `resize_and_center_crop`). For grey models trained on light-on-dark digits (MNIST),
  `invert='auto'` inverts images whose border is light (dark ink on white paper).
  """
  if fit not in FIT_CHOICES:
    raise UserError(f"unknown fit {fit!r}; choose one of {', '.join(FIT_CHOICES)}")
  height, width, channels = shape
  image = image.convert("L" if channels == 1 else "RGB")
  if fit == "crop":
    if height == width:  # Exactly what image-folder datasets do with config field image_size.
      image = resize_and_center_crop(image, height)
    else:  # The largest central box of the model's aspect ratio.
      scale = min(image.width / width, image.height / height)
      left, top = (image.width - width * scale) / 2, (image.height - height * scale) / 2
      image = image.resize((width, height), Image.Resampling.LANCZOS,
                           box=(left, top, left + width * scale, top + height * scale))
  pixels = np.asarray(image)
  border = np.concatenate([pixels[0].reshape(-1), pixels[-1].reshape(-1),
                           pixels[:, 0].reshape(-1), pixels[:, -1].reshape(-1)])
  if invert == "yes" or (invert == "auto" and channels == 1 and border.mean() > 127):
    pixels = 255 - pixels
  if fit == "crop":
    return np.asarray(pixels, np.uint8).reshape(height, width, channels)
  fill = np.median(np.concatenate([pixels[0], pixels[-1]]), axis=0).astype(np.uint8)
  h, w = pixels.shape[:2]
  side = max(h, w)
  square = np.empty((side, side) + pixels.shape[2:], np.uint8)
  square[...] = fill
  top, left = (side - h) // 2, (side - w) // 2
  square[top:top + h, left:left + w] = pixels
  resized = Image.fromarray(square).resize((width, height), Image.Resampling.LANCZOS)
  return np.asarray(resized, np.uint8).reshape(height, width, channels)


def load_image(path: str, shape: tuple[int, int, int], invert: str = "auto",
               fit: str = "pad") -> np.ndarray:
  """Reads an image file as uint8 [H, W, C] model input (see `to_model_input`).

  Raises:
    UserError: naming the file when it is missing or not an image.
  """
  try:
    with Image.open(path) as image:
      image.load()
      return to_model_input(image, shape, invert, fit)
  except FileNotFoundError as e:
    raise UserError(f"image file {path!r} does not exist") from e
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise UserError(f"{path!r} is not a readable image: {e}") from e


def resize_and_center_crop(image: Image.Image, size: int) -> Image.Image:
  """Scales the shorter side to `size` and crops the centre: any image -> size x size, same mode.

  Resampling is LANCZOS (antialiased when shrinking) over exactly the central square of side
  min(W, H), so no intermediate rounding shifts the crop; `reducing_gap=3.0` lets Pillow first
  shrink big photos by an integer factor (fast, visually the same). An image whose shorter side is
  already `size` is only cropped (no resampling): its pixels are kept exactly.
  """
  if size <= 0:
    raise ValueError(f"size must be positive, got {size}")
  width, height = image.size
  side = min(width, height)
  if side == size:
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))
  left, top = (width - side) / 2, (height - side) / 2
  return image.resize((size, size), Image.Resampling.LANCZOS,
                      box=(left, top, left + side, top + side), reducing_gap=3.0)
