"""A pretrained face detector beside the series' HOG one: scikit-image's LBP frontal-face cascade
(`skimage.feature.Cascade` with `skimage.data.lbp_frontal_face_cascade_filename()`, OpenCV's
lbpcascade_frontalface), with its boxes put in the FACE_BOX framing and a score.

The cascade answers yes/no per window. `detect` collects every accepted window (no merging inside
scikit-image), groups them deterministically (a window joins the group whose mean window it
overlaps most, by IoU above GROUP_IOU), and scores a group by how many windows it holds (more
positions and scales that say "face" = more sure). The mean window of a group is mapped to the face
box by a fixed calibration, then non-maximum suppression. scikit-image's own grouping (by
intersection over the smaller window) also merges small windows inside a face's larger ones (eyes,
mouth), which shrinks and shifts the mean window.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.faces import face_box

# Face box = the square of side BOX_SCALE * w centred at the window's centre + BOX_SHIFT * w, for a
# mean cascade window of side w. Fitted once by `fit_box_calibration` on the 150 ORL faces of
# people s1..s15 (never the benchmark's people), pasted upright on mid-grey with face box sides 50,
# 80 and 130 px, searched with scale_factor 1.2, step_ratio 1, min_window 24, group_iou 0.5:
# medians over the 449 of 450 faces found (scale 0.8118, shift (-0.0022, -0.0360)). The cascade's
# window is ~1.23x the ORL face box, centred a little lower. Reproduce:
# python benchmarks/face_detection.py --data_dir=$MLFUN_DATA_DIR --fit_calibration
BOX_SCALE = 0.812
BOX_SHIFT = (-0.002, -0.036)

# Chosen on 30 group pictures (91 faces) of ORL people s1..s15 on the HOG detector's negative
# photos, never on the benchmark (python benchmarks/face_detection.py --tune_cascade): over
# scale_factor {1.1, 1.2} x step_ratio {1, 1.5} x min_window {24, 32} x group_iou {0.3, 0.5} x
# min_neighbors {1, 2, 3}, the best AP@0.5 was 0.922 (1.1, 1, 32, 0.5, 1; 1.10 s a 640x480 picture
# on 2 shared cores); these settings gave 0.915 (less than one face apart) in 0.65 s. A step ratio
# of 1.5 lost 0.03-0.07 AP; more neighbours only lose AP (the count is the score anyway).
SCALE_FACTOR = 1.2
STEP_RATIO = 1.0
MIN_WINDOW = 32
# recognize's operating point: a face needs >= 3 accepted windows (its score). Picked for the best F1
# on those same 30 training-people pictures (precision 0.965, recall 0.901, 0.10 false positives a
# picture; 1 window: ~8 false positives a picture). The benchmark's AP uses every window
# (CascadeDetector(min_neighbors=1)): a rank measure over all scores.
MIN_NEIGHBORS = 3
GROUP_IOU = 0.5
NMS_IOU = 0.3


def _cascade():
  from skimage import data  # pylint: disable=g-import-not-at-top
  from skimage.feature import Cascade  # pylint: disable=g-import-not-at-top
  return Cascade(data.lbp_frontal_face_cascade_filename())


def raw_windows(cascade, image: np.ndarray, scale_factor: float, step_ratio: float,
                min_window: int, max_window: int) -> np.ndarray:
  """float64 [N, 4] (left, top, right, bottom) of every window the cascade accepts, sorted by
  (side, top, left) (scikit-image returns them in thread order)."""
  found = cascade.detect_multi_scale(image, scale_factor, step_ratio, (min_window, min_window),
                                     (max_window, max_window), min_neighbor_number=1,
                                     intersection_score_threshold=1.0)  # > 1 never merges.
  windows = np.asarray([(d['c'], d['r'], d['c'] + d['width'], d['r'] + d['height'])
                        for d in found], np.float64).reshape(-1, 4)
  order = np.lexsort((windows[:, 0], windows[:, 1], windows[:, 2] - windows[:, 0]))
  return windows[order]


def group_windows(windows: np.ndarray, iou: float = GROUP_IOU) -> tuple[np.ndarray, np.ndarray]:
  """(mean windows float64 [G, 4], counts int64 [G]) of windows [N, 4] grouped in order: each joins
  the group whose mean window has the highest IoU with it when that is > iou, else starts one."""
  sums, counts = [], []
  for window in windows:
    if sums:
      overlaps = face_box.iou(window[None], np.asarray(sums) / np.asarray(counts)[:, None])[0]
      best = int(np.argmax(overlaps))
      if overlaps[best] > iou:
        sums[best] = sums[best] + window
        counts[best] += 1
        continue
    sums.append(window.copy())
    counts.append(1)
  counts = np.asarray(counts, np.int64)
  means = np.asarray(sums, np.float64).reshape(-1, 4) / np.maximum(counts, 1)[:, None]
  return means, counts


def to_face_boxes(windows: np.ndarray, scale: float = BOX_SCALE,
                  shift: tuple[float, float] = BOX_SHIFT) -> np.ndarray:
  """float32 [N, 4]: face boxes of cascade windows [N, 4] by the calibration (scale, shift)."""
  windows = np.asarray(windows, np.float64).reshape(-1, 4)
  side = 0.5 * ((windows[:, 2] - windows[:, 0]) + (windows[:, 3] - windows[:, 1]))
  cx = 0.5 * (windows[:, 0] + windows[:, 2]) + shift[0] * side
  cy = 0.5 * (windows[:, 1] + windows[:, 3]) + shift[1] * side
  half = 0.5 * scale * side
  return np.stack([cx - half, cy - half, cx + half, cy + half], 1).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class CascadeDetector:
  """scikit-image's LBP frontal-face cascade as a face detector (see the module docstring).

  Attributes:
    scale_factor: the window grows by this factor from one scale to the next (> 1).
    step_ratio: window step = round(scale * step_ratio) pixels (1: every pixel at the base scale).
    min_window, max_window: the cascade window's side range in pixels (max None: the image's).
    min_neighbors: groups of fewer accepted windows are dropped.
    group_iou: a window joins a group whose mean window it overlaps by more IoU than this.
    nms_iou: the IoU above which the lower-scored of two face boxes is dropped.
    box_scale, box_shift: the window -> face box calibration.
  """
  scale_factor: float = SCALE_FACTOR
  step_ratio: float = STEP_RATIO
  min_window: int = MIN_WINDOW
  max_window: int | None = None
  min_neighbors: int = MIN_NEIGHBORS
  group_iou: float = GROUP_IOU
  nms_iou: float = NMS_IOU
  box_scale: float = BOX_SCALE
  box_shift: tuple[float, float] = BOX_SHIFT

  def __post_init__(self):
    if not self.scale_factor > 1:
      raise checks.InputConventionError(f'scale_factor: expected > 1, got {self.scale_factor!r}')
    if not self.step_ratio > 0:
      raise checks.InputConventionError(f'step_ratio: expected > 0, got {self.step_ratio!r}')
    if not self.min_window >= 24:
      raise checks.InputConventionError(f'min_window: expected >= 24 (the cascade\'s window), got '
                                        f'{self.min_window!r}')
    if self.max_window is not None and not self.max_window >= self.min_window:
      raise checks.InputConventionError(f'max_window: expected >= min_window '
                                        f'({self.min_window}), got {self.max_window!r}')
    if not 0 <= self.group_iou < 1:
      raise checks.InputConventionError(f'group_iou: expected a number in [0, 1), got '
                                        f'{self.group_iou!r}')
    if not self.min_neighbors >= 1:
      raise checks.InputConventionError(f'min_neighbors: expected >= 1, got '
                                        f'{self.min_neighbors!r}')
    object.__setattr__(self, '_cascade', _cascade())

  def windows(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean windows float64 [G, 4], counts int64 [G]) of the accepted windows' groups of a grey
    uint8 image [H, W], before the calibration and NMS."""
    checks.check_images(image, name='image', dtype_kind='u', rank=2)
    largest = min(image.shape) if self.max_window is None else self.max_window
    if largest < self.min_window:
      return np.zeros((0, 4)), np.zeros(0, np.int64)
    raw = raw_windows(self._cascade, np.ascontiguousarray(image), self.scale_factor,
                      self.step_ratio, self.min_window, largest)
    means, counts = group_windows(raw, self.group_iou)
    keep = counts >= self.min_neighbors
    return means[keep], counts[keep]

  def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(face boxes float32 [N, 4] (left, top, right, bottom), scores float32 [N]) of a grey uint8
    image [H, W] (0..255), best score first, after NMS. A score is the number of accepted cascade
    windows (positions x scales) merged into the detection."""
    means, counts = self.windows(image)
    boxes = to_face_boxes(means, self.box_scale, self.box_shift)
    scores = counts.astype(np.float32)
    kept = face_box.non_max_suppression(boxes, scores, self.nms_iou)
    return boxes[kept], scores[kept]


def fit_box_calibration(faces: np.ndarray, sides: tuple[float, ...] = (50.0, 80.0, 130.0),
                        **options) -> dict[str, float]:
  """Fits the window -> face box calibration on ORL faces uint8 [N, 112, 92].

  Each face is pasted upright (`scenes.paste_face`: the soft head ellipse) with its face box of
  each side in `sides` at the centre of a mid-grey square of 2.5 sides (at least 200 px); the group
  with most windows whose mean window holds the face box centre gives the ratio box side / window
  side and the box centre's shift / window side. options: CascadeDetector fields.

  Returns:
    {'scale', 'shift_x', 'shift_y'} (medians; NaN when no face was found), 'found' (faces whose
    centre a group held) and 'tried'.
  """
  from mlfun_jax.faces import scenes  # pylint: disable=g-import-not-at-top
  checks.check_images(faces, name='faces', dtype_kind='u', rank=3, shape=face_box.ORL_SHAPE)
  detector = CascadeDetector(**options)
  ratios, shifts, tried = [], [], 0
  for side in sides:
    size = max(200, round(2.5 * side))
    centre = np.asarray([size / 2, size / 2])
    for face in faces:
      tried += 1
      canvas = np.full((size, size), 128.0, np.float32)
      image = np.round(scenes.paste_face(canvas, face, tuple(centre), side, 0.0)).astype(np.uint8)
      means, counts = detector.windows(image)
      inside = ((means[:, 0] <= centre[0]) & (centre[0] <= means[:, 2]) &
                (means[:, 1] <= centre[1]) & (centre[1] <= means[:, 3]))
      if not inside.any():
        continue
      best = means[np.flatnonzero(inside)[np.argmax(counts[inside])]]
      window = 0.5 * ((best[2] - best[0]) + (best[3] - best[1]))
      ratios.append(side / window)
      shifts.append((centre - 0.5 * (best[:2] + best[2:])) / window)
  if not ratios:
    return {'scale': float('nan'), 'shift_x': float('nan'), 'shift_y': float('nan'), 'found': 0,
            'tried': tried}
  shifts = np.asarray(shifts)
  return {'scale': float(np.median(ratios)), 'shift_x': float(np.median(shifts[:, 0])),
          'shift_y': float(np.median(shifts[:, 1])), 'found': len(ratios), 'tried': tried}
