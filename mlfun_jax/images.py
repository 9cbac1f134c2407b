"""Image files -> model inputs: any size and format to the model's [H, W, C] uint8 layout."""

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from mlfun_jax.errors import UserError

INVERT_CHOICES = ("auto", "yes", "no")


def to_model_input(image: Image.Image, shape: tuple[int, int, int], invert: str = "auto") -> np.ndarray:
  """Converts a PIL image to uint8 [H, W, C] for a model trained on `shape` = (H, W, C).

  Colour is converted to grey (C=1) or RGB (C=3); the image is padded to a square with its border
  colour (so the aspect ratio is kept) and resized. For grey models trained on light-on-dark digits
  (MNIST), `invert='auto'` inverts images whose border is light (dark ink on white paper).
  """
  height, width, channels = shape
  image = image.convert("L" if channels == 1 else "RGB")
  pixels = np.asarray(image)
  border = np.concatenate([pixels[0].reshape(-1), pixels[-1].reshape(-1),
                           pixels[:, 0].reshape(-1), pixels[:, -1].reshape(-1)])
  if invert == "yes" or (invert == "auto" and channels == 1 and border.mean() > 127):
    pixels = 255 - pixels
  fill = np.median(np.concatenate([pixels[0], pixels[-1]]), axis=0).astype(np.uint8)
  h, w = pixels.shape[:2]
  side = max(h, w)
  square = np.empty((side, side) + pixels.shape[2:], np.uint8)
  square[...] = fill
  top, left = (side - h) // 2, (side - w) // 2
  square[top:top + h, left:left + w] = pixels
  resized = Image.fromarray(square).resize((width, height), Image.Resampling.LANCZOS)
  return np.asarray(resized, np.uint8).reshape(height, width, channels)


def load_image(path: str, shape: tuple[int, int, int], invert: str = "auto") -> np.ndarray:
  """Reads an image file as uint8 [H, W, C] model input (see `to_model_input`).

  Raises:
    UserError: naming the file when it is missing or not an image.
  """
  try:
    with Image.open(path) as image:
      image.load()
      return to_model_input(image, shape, invert)
  except FileNotFoundError as e:
    raise UserError(f"image file {path!r} does not exist") from e
  except (UnidentifiedImageError, OSError, ValueError) as e:
    raise UserError(f"{path!r} is not a readable image: {e}") from e
