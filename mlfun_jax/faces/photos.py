"""Every face in a photo, ready to embed: find it (a detector), bring it into the ORL frame (an eye
locator or the box alone), and scale it to the embedding network's input, as `load_face` scales a
face file.

The series' Part 4, steps 1 and 2; `experiments.recognize` names what this finds.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Protocol

import numpy as np
from PIL import Image
from PIL import ImageDraw

from mlfun_jax.core import checks
from mlfun_jax.core import files
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import images
from mlfun_jax.faces import alignment
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import face_box


class Detector(Protocol):

  def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grey uint8 [H, W] -> (boxes float32 [N, 4] (left, top, right, bottom), scores [N])."""


@dataclasses.dataclass(frozen=True)
class FoundFaces:
  """The faces of one photo, best score first.

  boxes: float32 [N, 4] (left, top, right, bottom) in the photo's pixels.
  scores: float32 [N], the detector's.
  faces: uint8 [N, 112, 92] grey faces in the ORL frame (`face_box.ORL_SHAPE`).
  """
  boxes: np.ndarray
  scores: np.ndarray
  faces: np.ndarray

  def __len__(self) -> int:
    return len(self.boxes)


@dataclasses.dataclass(frozen=True)
class Photo:
  """A photo file read once: `colour` (PIL RGB, for pictures) and `grey` uint8 [H, W]."""
  path: str
  colour: Image.Image
  grey: np.ndarray


def load_photo(path: str) -> Photo:
  """Reads an image file of any size and mode (at most `images.MAX_IMAGE_PIXELS`).

  Raises:
    UserError: naming the file when it is missing, not an image or too large.
  """
  with images.open_image(path) as image:
    try:
      image.load()
      colour, grey = image.convert("RGB"), image.convert("L")  # Grey as `load_face` makes it.
    except (OSError, ValueError, SyntaxError, EOFError) as e:
      raise UserError(f"{path!r} is not a readable image: {e}") from e
  return Photo(path, colour, np.asarray(grey, np.uint8))


# The photo is searched with a border of repeated edge pixels: a quarter of its shorter side, at
# most 48 px. A face that fills a small photo (an ORL face, a cropped portrait) then fits the
# detectors' windows, which reach past the face box: the cascade found 81 of 100 ORL faces
# (s1..s30, every 3rd image, 92x112) without the border and 100 of 100 with it.
BORDER_FRACTION = 0.25
MAX_BORDER = 48


def border(height: int, width: int) -> int:
  """Pixels of edge border added on each side of an [height, width] photo before detection."""
  return int(min(round(BORDER_FRACTION * min(height, width)), MAX_BORDER))


def find_faces(grey: np.ndarray, detector: Detector, locator=None) -> FoundFaces:
  """Finds the faces of a grey uint8 photo [H, W] (searched with an edge border, `border`) and
  brings each into the ORL frame: aligned by its eyes when a `locator.Locator` is given, else
  the ORL framing around its box."""
  checks.check_images(grey, name="photo", dtype_kind="u", rank=2)
  pad = border(*grey.shape)
  boxes, scores = detector.detect(np.pad(grey, pad, mode="edge") if pad else grey)
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4) - pad
  scores = np.asarray(scores, np.float32).reshape(-1)
  if not len(boxes):
    faces = np.zeros((0, *face_box.ORL_SHAPE), np.uint8)
  elif locator is not None:
    faces = alignment.align_many(grey, boxes, locator)
  else:
    faces = alignment.crop_many_to_orl_frame(grey, boxes)
  return FoundFaces(boxes, scores, faces)


def whole_image_input(photo: Photo, shape: tuple[int, int, int],
                      box: face_data.Box | None = None) -> np.ndarray:
  """The whole photo as one face already framed as the training faces (`--no_detect`): uint8
  [H, W, 1] for a network of input `shape` (and crop `box`, `face_data.input_box`), exactly as
  `load_face` reads the file."""
  return face_data.face_input(Image.fromarray(photo.grey), shape, box)


def to_network_input(faces: np.ndarray, shape: tuple[int, int, int],
                     box: face_data.Box | None = None) -> np.ndarray:
  """uint8 ORL-frame faces [N, 112, 92] -> uint8 [N, H, W, 1] for a network of input `shape`,
  scaled exactly as `load_face` (with crop `box`) scales a 92x112 face file."""
  checks.check_images(faces, name="faces", dtype_kind="u", rank=3)
  if not len(faces):
    return np.zeros((0, *shape), np.uint8)
  return np.stack([face_data.face_input(Image.fromarray(face), shape, box)
                   for face in faces])


def draw_names(photo: Photo, boxes: np.ndarray, names: list[str], path: str) -> str:
  """Writes the colour photo with a box and a name label per face as PNG to `path` (atomically)."""
  picture = photo.colour.copy()
  pen = ImageDraw.Draw(picture)
  width = max(2, round(max(picture.size) / 400))
  for (left, top, right, bottom), name in zip(np.asarray(boxes).tolist(), names):
    colour = (230, 60, 60) if name == "unknown_person" else (60, 200, 90)
    pen.rectangle((left, top, right, bottom), outline=colour, width=width)
    text_box = pen.textbbox((left, bottom), name)
    pen.rectangle((left, bottom, max(right, text_box[2] + 6), text_box[3] + 4), fill=colour)
    pen.text((left + 3, bottom + 1), name, fill=(255, 255, 255))
  return files.write_atomically(path, lambda f: picture.save(f, format="PNG"))


def drawing_path(directory: str, photo_path: str) -> str:
  """DIR/<photo file name without extension>.png."""
  return os.path.join(directory, os.path.splitext(os.path.basename(photo_path))[0] + ".png")
