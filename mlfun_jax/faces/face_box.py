"""Face boxes shared by the face detectors and their benchmarks (numpy).

A box is float32 (left, top, right, bottom) in pixels of its image. The face box of an ORL image
(92 wide x 112 high) is the 72x72 square FACE_BOX_ORL (centre (46, 60)); a face pasted at scale s
with its ORL image's top-left corner at (x, y) has the box `pasted_box(s, (x, y))`.
"""

import numpy as np

from mlfun_jax.core import checks

ORL_SHAPE = (112, 92)  # (height, width) of an ORL image.
FACE_BOX_ORL = (10, 24, 82, 96)  # (left, top, right, bottom): the 72x72 face, centre (46, 60).
ORL_EYES = ((32, 52), (62, 52))  # (x, y) of the left and right eye of the ORL mean face.


def check_boxes(boxes, *, name: str = 'boxes') -> np.ndarray:
  """float32 [N, 4] of `boxes` (any real dtype, (left, top, right, bottom), right >= left and
  bottom >= top, finite); raises InputConventionError naming `name` otherwise."""
  if not hasattr(boxes, 'dtype'):
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4) if np.size(boxes) == 0 else np.asarray(
        boxes)
  checks.check_array(boxes, name=name, expected='boxes [N, 4] (left, top, right, bottom)',
                     dtype_kinds='fiu', rank=2, shape=(4,))
  boxes = np.asarray(boxes, np.float32)
  if not np.all(np.isfinite(boxes)):
    raise checks.InputConventionError(f'{name}: expected finite box coordinates')
  if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
    raise checks.InputConventionError(f'{name}: expected right >= left and bottom >= top')
  return boxes


def _overlaps(a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(intersection areas [N, M], areas of a [N], areas of b [M]) of checked float32 boxes."""
  left = np.maximum(a[:, None, 0], b[None, :, 0])
  top = np.maximum(a[:, None, 1], b[None, :, 1])
  right = np.minimum(a[:, None, 2], b[None, :, 2])
  bottom = np.minimum(a[:, None, 3], b[None, :, 3])
  inter = np.maximum(right - left, 0) * np.maximum(bottom - top, 0)
  return inter, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou(a, b) -> np.ndarray:
  """Intersection over union float32 [N, M] of boxes a [N, 4] and b [M, 4] (0 for empty boxes)."""
  inter, area_a, area_b = _overlaps(check_boxes(a, name='a'), check_boxes(b, name='b'))
  union = area_a[:, None] + area_b[None, :] - inter
  return np.where(union > 0, inter / np.maximum(union, 1e-12), 0).astype(np.float32)


def intersection_over_smaller(a, b) -> np.ndarray:
  """float32 [N, M]: the intersection of boxes a [N, 4] and b [M, 4] over the smaller one's area
  (1 when one lies inside the other; 0 for empty boxes)."""
  inter, area_a, area_b = _overlaps(check_boxes(a, name='a'), check_boxes(b, name='b'))
  smaller = np.minimum(area_a[:, None], area_b[None, :])
  return np.where(smaller > 0, inter / np.maximum(smaller, 1e-12), 0).astype(np.float32)


def non_max_suppression(boxes, scores, iou_threshold: float = 0.3,
                        containment_threshold: float | None = None) -> np.ndarray:
  """int64 indices [K] of the boxes [N, 4] kept, best score first: greedily, a box is dropped when
  its IoU with a kept (better) box exceeds `iou_threshold` (in [0, 1]), or, given
  `containment_threshold`, when their `intersection_over_smaller` exceeds it (nested boxes)."""
  boxes = check_boxes(boxes)
  checks.check_floats(np.asarray(scores), name='scores', rank=1)
  scores = np.asarray(scores)
  if len(scores) != len(boxes):
    raise checks.InputConventionError(f'scores: expected one score per box ({len(boxes)}), got '
                                      f'{len(scores)}')
  for name, value in (('iou_threshold', iou_threshold),
                      ('containment_threshold', containment_threshold)):
    if value is not None and not 0 <= value <= 1:
      raise checks.InputConventionError(f'{name}: expected a number in [0, 1], got {value}')
  order = np.argsort(-scores, kind='stable')
  if not len(boxes):
    return np.zeros(0, np.int64)
  overlapping = iou(boxes, boxes) > iou_threshold
  if containment_threshold is not None:
    overlapping |= intersection_over_smaller(boxes, boxes) > containment_threshold
  suppressed = np.zeros(len(boxes), bool)
  kept = []
  for i in order:
    if suppressed[i]:
      continue
    kept.append(i)
    suppressed |= overlapping[i]
  return np.asarray(kept, np.int64)


def pasted_box(scale: float, shift: tuple[float, float]) -> np.ndarray:
  """float32 [4]: FACE_BOX_ORL of an ORL image resized by `scale` and pasted with its top-left
  corner at `shift` = (x, y) pixels of the photo."""
  box = np.asarray(FACE_BOX_ORL, np.float64) * scale
  return (box + np.asarray([shift[0], shift[1], shift[0], shift[1]])).astype(np.float32)
