"""How well a face detector finds the faces of a set of images: average precision and recall at a
number of false positives per image (numpy).

Matching (PASCAL VOC): in each image the detections are taken best score first (ties in their given
order); a detection is a true positive when its highest-IoU ground-truth box has IoU >= `iou` and
was not matched before, else a false positive (a second detection of one face is a false
positive). Every measure is then read off one curve over the score thresholds t: accepting the
detections with score >= t of all images keeps a prefix of each image's ranking, so the matching
holds at every t. Tied scores enter together (the curve has one point per distinct score).
"""

from collections.abc import Sequence
import math

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.faces import face_box


def _check(detections, truths, iou: float) -> tuple[list, list]:
  """(detections [(boxes float32 [N, 4], scores float32 [N])], truths [float32 [M, 4]]), checked."""
  if isinstance(detections, np.ndarray) or not isinstance(detections, Sequence):
    raise checks.InputConventionError(f'detections: expected a list of (boxes [N, 4], scores [N]) '
                                      f'per image, got {type(detections).__name__}')
  if isinstance(truths, np.ndarray) or not isinstance(truths, Sequence):
    raise checks.InputConventionError(f'truths: expected a list of boxes [M, 4] per image, got '
                                      f'{type(truths).__name__}')
  if len(detections) != len(truths):
    raise checks.InputConventionError(f'detections: expected one entry per image of truths '
                                      f'({len(truths)}), got {len(detections)}')
  if isinstance(iou, bool) or not isinstance(iou, (int, float)) or not 0 < iou <= 1:
    raise checks.InputConventionError(f'iou: expected a number in (0, 1], got {iou!r}')
  checked_detections, checked_truths = [], []
  for i, (found, truth) in enumerate(zip(detections, truths)):
    if not isinstance(found, (tuple, list)) or len(found) != 2:
      raise checks.InputConventionError(f'detections[{i}]: expected a pair (boxes [N, 4], scores '
                                        f'[N]), got {type(found).__name__}')
    boxes = face_box.check_boxes(found[0], name=f'detections[{i}] boxes')
    scores = np.asarray(found[1])
    checks.check_floats(scores, name=f'detections[{i}] scores', rank=1)
    if not np.all(np.isfinite(scores)):
      raise checks.InputConventionError(f'detections[{i}] scores: expected finite scores')
    if len(scores) != len(boxes):
      raise checks.InputConventionError(f'detections[{i}] scores: expected one score per box '
                                        f'({len(boxes)}), got {len(scores)}')
    checked_detections.append((boxes, scores.astype(np.float64)))
    checked_truths.append(face_box.check_boxes(truth, name=f'truths[{i}]'))
  return checked_detections, checked_truths


def match_image(boxes: np.ndarray, scores: np.ndarray, truths: np.ndarray,
                iou: float = 0.5) -> np.ndarray:
  """bool [N]: which detections (boxes float32 [N, 4], scores [N]) of one image are true positives
  against its ground-truth boxes [M, 4] (the module's matching; unchecked inputs)."""
  hits = np.zeros(len(boxes), bool)
  if not len(boxes) or not len(truths):
    return hits
  overlaps = face_box.iou(boxes, truths)
  taken = np.zeros(len(truths), bool)
  for i in np.argsort(-scores, kind='stable'):
    best = int(np.argmax(overlaps[i]))
    if overlaps[i, best] >= iou and not taken[best]:
      taken[best] = hits[i] = True
  return hits


def detection_curve(detections, truths, iou: float = 0.5) -> dict[str, np.ndarray | int]:
  """The detections' curve over score thresholds, best threshold first.

  Args:
    detections: per image (boxes [N, 4] (left, top, right, bottom), float scores [N]).
    truths: per image the ground-truth face boxes [M, 4] (M may be 0).
    iou: the IoU a detection needs with a face to find it, in (0, 1].

  Returns:
    {'thresholds': float64 [T] (the distinct scores, descending), 'recall', 'precision',
     'false_positives_per_image': float64 [T] when accepting scores >= each threshold,
     'faces': M summed, 'images': the number of images}.

  Raises:
    InputConventionError: inputs that do not follow the above (one line naming the culprit).
  """
  detections, truths = _check(detections, truths, iou)
  scores = [s for _, s in detections]
  hits = [match_image(b, s, t, iou) for (b, s), t in zip(detections, truths)]
  scores = np.concatenate(scores) if scores else np.zeros(0)
  hits = np.concatenate(hits) if hits else np.zeros(0, bool)
  faces = int(sum(len(t) for t in truths))
  order = np.argsort(-scores, kind='stable')
  scores, hits = scores[order], hits[order]
  true_positives, false_positives = np.cumsum(hits), np.cumsum(~hits)
  last = np.flatnonzero(np.append(scores[1:] != scores[:-1], True)) if len(scores) else (
      np.zeros(0, np.int64))  # The end of each group of tied scores.
  accepted = last + 1.0
  return {'thresholds': scores[last],
          'recall': true_positives[last] / faces if faces else np.full(len(last), np.nan),
          'precision': true_positives[last] / accepted,
          'false_positives_per_image': false_positives[last] / max(len(truths), 1),
          'faces': faces, 'images': len(truths)}


def average_precision(detections, truths, iou: float = 0.5) -> float:
  """Average precision (PASCAL VOC 2010+, all points): the area under the precision/recall curve
  whose precision at recall r is the best precision at any recall >= r. 1.0 when every face is
  found before any false positive; NaN when there are no faces. Arguments as `detection_curve`."""
  curve = detection_curve(detections, truths, iou)
  if not curve['faces']:
    return math.nan
  recall = np.concatenate([[0.0], curve['recall']])
  precision = np.concatenate([curve['precision'], [0.0]])
  precision = np.maximum.accumulate(precision[::-1])[::-1]  # The best precision at recall >= r.
  return float(np.sum((recall[1:] - recall[:-1]) * precision[:-1]))


def recall_at_fppi(detections, truths, fppi: float = 1.0, iou: float = 0.5) -> float:
  """Recall at `fppi` false positives per image: the largest recall over the score thresholds t
  (accepting the detections of score >= t, tied scores together) whose false positives, summed
  over all images and divided by the number of images, are at most `fppi`; 0.0 when even the best
  score's detections exceed it; NaN when there are no faces. Other arguments as
  `detection_curve`."""
  if isinstance(fppi, bool) or not isinstance(fppi, (int, float)) or not fppi >= 0:
    raise checks.InputConventionError(f'fppi: expected a number >= 0, got {fppi!r}')
  curve = detection_curve(detections, truths, iou)
  if not curve['faces']:
    return math.nan
  allowed = curve['false_positives_per_image'] <= fppi
  return float(np.max(curve['recall'][allowed], initial=0.0))


def summarize(detections, truths, iou: float = 0.5, fppi: float = 1.0) -> dict[str, float]:
  """{'average_precision', 'recall_at_fppi', 'images', 'faces', 'detections'} of one set of
  images (see `average_precision` and `recall_at_fppi`)."""
  return {'average_precision': average_precision(detections, truths, iou),
          'recall_at_fppi': recall_at_fppi(detections, truths, fppi, iou),
          'images': len(truths), 'faces': int(sum(len(t) for t in truths)),
          'detections': int(sum(len(s) for _, s in detections))}
