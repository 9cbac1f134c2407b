"""Face folders (`root/<person>/*.{pgm,png,jpg}`), split by identity, and P x K triplet batches.

The AT&T/ORL faces (`<data folder>/faces_orl/s<N>/<i>.pgm`, binary PGM, 92x112 grey) are read
with Pillow. Splits are by person: the people of the test split never appear in training, nor in
the validation split that picks the verification threshold. Training batches hold P people x K
images each, so every image of a batch has positives (its person) and negatives (the others) for
online triplet mining.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterator

import numpy as np

from PIL import Image

from mlfun_jax.data import images
from mlfun_jax.data import sources
from mlfun_jax.data.arrays import ArraySplit
from mlfun_jax.data.arrays import check_batch_size
from mlfun_jax.data.arrays import check_process
from mlfun_jax.data.arrays import gather
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import face_box

FACE_EXTENSIONS = ('.pgm', '.png', '.jpg', '.jpeg')
SPLITS = ('train', 'validation', 'test')


def natural_key(name: str):
  """Sorts 's2' before 's10' and '2.pgm' before '10.pgm'."""
  return [int(t) if t.isdigit() else t.lower() for t in re.split(r'(\d+)', name)]


def is_face_file(name: str) -> bool:
  return name.lower().endswith(FACE_EXTENSIONS) and not name.startswith('.')


# The ORL frame (height, width) and its face box (left, top, right, bottom): forehead to chin,
# cheek to cheek.
FRAME_SHAPE = face_box.ORL_SHAPE
FACE_BOX = face_box.FACE_BOX_ORL
MAX_MARGIN = FACE_BOX[0]  # The largest margin that keeps the grown box inside the 92-px width.

Box = tuple[int, int, int, int]


def margin_box(margin: int) -> Box:
  """The face box grown by `margin` ORL pixels on every side (0..MAX_MARGIN): with 10 the
  92x92 square from the top of the hair to below the chin, cheek edge to frame edge.

  Raises:
    UserError: a margin outside 0..MAX_MARGIN.
  """
  if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or not (
      0 <= margin <= MAX_MARGIN):
    raise UserError(f'face margin {margin!r} must be an integer in 0..{MAX_MARGIN} (config field '
                    'face_margin)')
  left, top, right, bottom = FACE_BOX
  return left - margin, top - margin, right + margin, bottom + margin


def input_box(config) -> Box | None:
  """The part of each face frame a faces run's network sees: None (the whole frame) without
  config.face_crop, else the face box grown by config.face_margin (`margin_box`)."""
  return margin_box(config.face_margin) if config.face_crop else None


def face_box_input(frame: np.ndarray, shape: tuple[int, int, int], box: Box = FACE_BOX
                   ) -> np.ndarray:
  """uint8 [H, W, 1] network input of a grey face frame uint8 [112, 92] (the ORL framing): its
  `box` (left, top, right, bottom; default the 72x72 `FACE_BOX`, inside the frame) scaled
  (LANCZOS) to `shape` = (H, W, 1), centre-cropped to that aspect ratio."""
  left, top, right, bottom = box
  crop = Image.fromarray(np.asarray(frame, np.uint8)[top:bottom, left:right])
  return images.to_model_input(crop, shape, invert='no', fit='crop')


def load_face(path: str, shape: tuple[int, int, int], box: Box | None = None) -> np.ndarray:
  """Reads an image file as uint8 [H, W, 1] grey, resized (LANCZOS) to `shape` = (H, W, 1) when
  its size differs (aspect ratio kept by a centre crop). box: the image is taken as a face frame
  (scaled and centre-cropped to 92x112 first) and only this part of it is kept
  (`face_box_input`; `input_box` gives a run's).

  Raises:
    UserError: naming the file when it is missing or not an image.
  """
  if box is not None:
    frame = images.load_image(path, (*FRAME_SHAPE, 1), invert='no', fit='crop')
    return face_box_input(frame[..., 0], shape, box)
  return images.load_image(path, shape, invert='no', fit='crop')


def face_input(image: Image.Image, shape: tuple[int, int, int], box: Box | None = None
               ) -> np.ndarray:
  """uint8 [H, W, 1] network input of a PIL image of any size and mode (a photo's face, one
  image under --no_detect), as `load_face` reads a file: grey, scaled and centre-cropped to
  `shape`; with a box first to the 92x112 face frame, of which only the box is kept."""
  if box is not None:
    frame = images.to_model_input(image, (*FRAME_SHAPE, 1), invert='no', fit='crop')
    return face_box_input(frame[..., 0], shape, box)
  return images.to_model_input(image, shape, invert='no', fit='crop')


def face_files(folder: str) -> list[str]:
  """Names of the face image files (see `is_face_file`) directly in `folder`, in natural order."""
  return sorted((f for f in os.listdir(folder) if is_face_file(f)), key=natural_key)


def list_face_folders(root: str) -> list[tuple[str, list[str]]]:
  """[(person, [image paths])] of `root/<person>/*`, people and files in natural order.

  Raises:
    UserError: the folder is missing or holds no person folder with images.
  """
  if not os.path.isdir(root):
    raise (sources.missing_for_path(root) or
           UserError(f'face folder {root!r} does not exist (config field data_dir)'))
  people = []
  for person in sorted(os.listdir(root), key=natural_key):
    folder = os.path.join(root, person)
    if person.startswith('.') or not os.path.isdir(folder):
      continue
    files = face_files(folder)
    if files:
      people.append((person, [os.path.join(folder, f) for f in files]))
  if not people:
    raise UserError(f'face folder {root!r} holds no <person>/<image> files '
                    f'({", ".join(FACE_EXTENSIONS)})')
  return people


@dataclasses.dataclass(frozen=True, eq=False)
class FaceDataset:
  """Faces split by identity.

  Attributes:
    people: every person's name; labels index this tuple.
    splits: {'train', 'validation', 'test'} -> ArraySplit (uint8 [N, H, W, 1], person labels).
  """
  people: tuple[str, ...]
  splits: dict[str, ArraySplit]

  @property
  def image_shape(self) -> tuple[int, int, int]:
    h, w, c = self.splits['train'].images.shape[1:]
    return int(h), int(w), int(c)

  def people_of(self, split: str) -> list[str]:
    """Names of the people in `split`, in label order."""
    return [self.people[i] for i in np.unique(self.splits[split].labels)]


def _suggested_split(sizes: tuple[int, int, int], num_people: int) -> str:
  """'; e.g. --config.people=(6,1,3)': the sizes scaled to num_people (>= 2 train and test)."""
  if num_people < 4:
    return ''
  test = max(2, round(sizes[2] * num_people / sum(sizes)))
  validation = min(round(sizes[1] * num_people / sum(sizes)), num_people - test - 2)
  return f'; e.g. --config.people=({num_people - test - validation},{validation},{test})'


def split_people(num_people: int, sizes: tuple[int, int, int], seed: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Disjoint sorted person indices (train, validation, test) of the given sizes, drawn with seed.

  Raises:
    UserError: the sizes are negative, train or test is empty, or they need more people.
  """
  if min(sizes) < 0 or sizes[0] < 2 or sizes[2] < 2:
    raise UserError(f'identity split sizes {sizes} (config field people): need >= 2 train and '
                    '>= 2 test people and no negative size')
  if sum(sizes) > num_people:
    raise UserError(f'identity split sizes {sizes} need {sum(sizes)} people, the folder has '
                    f'{num_people} (config field people{_suggested_split(sizes, num_people)})')
  order = np.random.default_rng(seed).permutation(num_people)
  cut = np.cumsum(sizes)
  return tuple(np.sort(part) for part in (order[:cut[0]], order[cut[0]:cut[1]],
                                          order[cut[1]:cut[2]]))


def load_faces(root: str, *, sizes: tuple[int, int, int], seed: int,
               image_shape: tuple[int, int, int] | None = None,
               box: Box | None = None) -> FaceDataset:
  """Reads `root/<person>/*` and splits the people (see `split_people`).

  image_shape: (H, W, 1) to resize to; None keeps the size of the first image (all must match).
  box: keep only this part of each face frame (`load_face`, `input_box`; needs image_shape).
  """
  if box is not None and image_shape is None:
    raise UserError('config field face_crop=True needs image_size (the face box is scaled to it)')
  people = list_face_folders(root)
  if image_shape is None:
    with images.open_image(people[0][1][0]) as image:
      width, height = image.size
    image_shape = (height, width, 1)
  parts = split_people(len(people), tuple(sizes), seed)
  splits = {}
  for name, indices in zip(SPLITS, parts):
    faces, labels = [], []
    for i in indices:
      for path in people[i][1]:
        faces.append(load_face(path, image_shape, box))
        labels.append(i)
    faces = np.stack(faces) if faces else np.zeros((0, *image_shape), np.uint8)
    splits[name] = ArraySplit(faces, np.asarray(labels, np.int32))
  return FaceDataset(tuple(p for p, _ in people), splits)


def class_labels(split: ArraySplit) -> ArraySplit:
  """`split` with each person's label replaced by its rank among the split's people (0..P-1),
  the class index of a classification loss over the training people. Labels: int32 person ids [N]
  (`ArraySplit` checks them).
  """
  return ArraySplit(split.images, np.unique(split.labels, return_inverse=True)[1].astype(np.int32))


def triplet_batches(split: ArraySplit, *, people_per_batch: int, images_per_person: int,
                    seed: int, start_step: int = 0, process_index: int = 0,
                    process_count: int = 1, local_device_count: int = 1) -> Iterator[dict]:
  """Endless P x K training batches: P people drawn without replacement, K images of each.

  Batch s depends only on (seed, s), so a resumed run draws what a straight run would. The global
  batch is ordered person by person; process p takes the contiguous slice [p*B/P, (p+1)*B/P).
  A person with fewer than K images contributes some images twice.

  Yields:
    {'image': uint8 [D, b, H, W, 1], 'label': int32 [D, b]} with b = P*K / (processes * D).

  `split`: uint8 faces [N, H, W, C] (0..255) with int32 person ids [N] (`ArraySplit` checks them).

  Raises:
    UserError: P*K does not divide by the devices, or the split has fewer than P people.
  """
  global_batch = people_per_batch * images_per_person
  check_batch_size(global_batch, process_count=process_count,
                   local_device_count=local_device_count)
  check_process(process_index, process_count)
  if images_per_person < 2:
    raise UserError(f'images_per_person={images_per_person} must be >= 2 (a triplet needs a '
                    'positive)')
  by_person = [np.flatnonzero(split.labels == p) for p in np.unique(split.labels)]
  if len(by_person) < people_per_batch:
    raise UserError(f'people_per_batch={people_per_batch} exceeds the {len(by_person)} people '
                    'of the training split')
  local = global_batch // process_count

  def generate():
    step = start_step
    while True:
      rng = np.random.default_rng((seed, step))
      chosen = rng.choice(len(by_person), people_per_batch, replace=False)
      indices = np.concatenate([
          rng.choice(by_person[p], images_per_person,
                     replace=len(by_person[p]) < images_per_person) for p in chosen])
      yield gather(split, indices[process_index * local:(process_index + 1) * local],
                   local_device_count)
      step += 1

  return generate()
