"""How well embeddings tell people apart: verification and identification measures (numpy).

Verification: every pair of distinct images of a split is a "same person" or "different people"
pair; a pair is accepted as the same person when the Euclidean distance of its embeddings is at
most a threshold. Measures: ROC AUC (exact, ties count one half), accuracy over all pairs at a
threshold (chosen on validation people, applied to test people), the balanced accuracy (mean of
true-accept and true-reject rates) beside it, and the true-accept rate at a false-accept rate of 1%.

Identification (closed set, one enrolled image per person): in round r the r-th image of every
person (modulo their image count) is enrolled, every other image is a query and gets the person of
its nearest enrolled embedding; top-1 accuracy is averaged over the rounds (every image is
enrolled once). The linear-classifier protocol is the same with a multinomial logistic regression
(scikit-learn) fitted on the enrolled embeddings of each round; with `enrolled` > 1 the images
r, r+1, ..., r+enrolled-1 are enrolled.

Also here: picking the verification threshold without test people (`pick_threshold`) and measuring
the unseen people of a face dataset with an embedder (`measure_unseen`).
"""

from collections.abc import Callable
from typing import Any

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import data as face_data


def _check_people(embeddings: np.ndarray, labels: np.ndarray) -> None:
  """Raises InputConventionError unless labels are integer person ids [N] of embeddings [N, E]."""
  checks.check_ids(labels, name='labels', rank=1)
  if len(labels) != len(embeddings):
    raise checks.InputConventionError(f'labels: expected one person id per embedding '
                                      f'({len(embeddings)}), got {len(labels)}')


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Euclidean distances float64 [N, M] between the rows of a [N, E] and of b [M, E]."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.sqrt(np.maximum(np.sum(np.square(a[:, None] - b[None]), axis=2), 0.0))


def pair_distances(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(Euclidean distances float64 [M], same person bool [M]) over all pairs i < j of [N, E] with
  integer person ids `labels` [N] (checked)."""
  labels = np.asarray(labels)
  _check_people(embeddings, labels)
  i, j = np.triu_indices(len(labels), k=1)
  return distance_matrix(embeddings, embeddings)[i, j], labels[i] == labels[j]


def roc_auc(distances: np.ndarray, same: np.ndarray) -> float:
  """P(a same pair is closer than a different pair), ties one half; NaN if a class is missing."""
  import scipy.stats  # pylint: disable=g-import-not-at-top
  same = np.asarray(same, bool)
  positives, negatives = same.sum(), (~same).sum()
  if positives == 0 or negatives == 0:
    return float('nan')
  ranks = scipy.stats.rankdata(-np.asarray(distances))  # High rank = close.
  return float((ranks[same].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def accuracy_at(distances: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float]:
  """{'accuracy', 'balanced_accuracy', 'true_accept_rate', 'false_accept_rate'} at `threshold`."""
  same = np.asarray(same, bool)
  accept = np.asarray(distances) <= threshold
  tar = float(accept[same].mean()) if same.any() else float('nan')
  far = float(accept[~same].mean()) if (~same).any() else float('nan')
  return {'accuracy': float((accept == same).mean()),
          'balanced_accuracy': 0.5 * (tar + 1.0 - far),
          'true_accept_rate': tar, 'false_accept_rate': far}


def best_threshold(distances: np.ndarray, same: np.ndarray) -> float:
  """The threshold with the highest accuracy over the pairs (a midpoint between two distances).

  Ties between thresholds go to the middle one of the best run.
  """
  distances = np.asarray(distances, np.float64)
  same = np.asarray(same, bool)
  order = np.argsort(distances, kind='stable')
  d, s = distances[order], same[order]
  # Accepting the first k pairs: correct = same among them + different among the rest.
  correct = np.concatenate([[0], np.cumsum(s)]) + np.concatenate(
      [[(~s).sum()], (~s).sum() - np.cumsum(~s)])
  valid = np.concatenate([[True], d[1:] > d[:-1], [True]])  # A cut between distinct distances.
  correct = np.where(valid, correct, -1)
  best = np.flatnonzero(correct == correct.max())
  k = int(best[len(best) // 2])
  low = d[k - 1] if k > 0 else d[0] - 1e-3
  high = d[k] if k < len(d) else d[-1] + 1e-3
  return float(0.5 * (low + high))


# Different-person pairs a verification threshold is picked on: those among the validation people
# ('validation'), or also each validation face against each training face ('validation+train').
THRESHOLD_IMPOSTORS = ("validation", "validation+train")


def calibration_pairs(embeddings: np.ndarray, labels: np.ndarray,
                      impostors: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(distances, same) of the pairs a threshold is picked on: all pairs of `embeddings` [N, E]
  (people `labels` [N]) and, when `impostors` [M, E] (other people's faces) are given, every
  face of `embeddings` against every impostor face as a different-person pair (N x M more)."""
  distances, same = pair_distances(embeddings, labels)
  if impostors is None or not len(impostors):
    return distances, same
  cross = distance_matrix(embeddings, impostors).ravel()
  return (np.concatenate([distances, cross]),
          np.concatenate([same, np.zeros(len(cross), bool)]))


def tar_at_far(distances: np.ndarray, same: np.ndarray, far: float = 0.01) -> float:
  """True-accept rate at the largest threshold whose false-accept rate is at most `far`."""
  distances = np.asarray(distances, np.float64)
  same = np.asarray(same, bool)
  negatives = np.sort(distances[~same])
  allowed = int(np.floor(far * len(negatives)))  # Different pairs that may be accepted.
  # Accept d < negatives[allowed]: exactly `allowed` negatives (or fewer with ties) pass.
  if not same.any():
    return float('nan')
  if allowed >= len(negatives):
    return 1.0
  return float(np.mean(distances[same] < negatives[allowed]))


def verification(distances: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float]:
  """AUC, TAR at 1% FAR and the accuracies at `threshold` of the pairs, plus pair counts."""
  return {'auc': roc_auc(distances, same), 'tar_at_far_1pct': tar_at_far(distances, same, 0.01),
          'threshold': float(threshold), **accuracy_at(distances, same, threshold),
          'same_pairs': int(np.sum(same)), 'different_pairs': int(np.sum(~np.asarray(same)))}


def _rounds(labels: np.ndarray, enrolled: int):
  """Yields (enrolled mask, query mask) per round r = 0..max images per person - 1."""
  labels = np.asarray(labels)
  people = np.unique(labels)
  members = [np.flatnonzero(labels == p) for p in people]
  for r in range(max(len(m) for m in members)):
    mask = np.zeros(len(labels), bool)
    for m in members:
      mask[m[(r + np.arange(min(enrolled, len(m) - 1))) % len(m)]] = True
    yield mask, ~mask


def nearest_neighbour_top1(embeddings: np.ndarray, labels: np.ndarray, enrolled: int = 1) -> float:
  """Top-1 identification accuracy with `enrolled` enrolled images per person (see module doc):
  embeddings [N, E], integer person ids `labels` [N] (checked)."""
  embeddings, labels = np.asarray(embeddings, np.float64), np.asarray(labels)
  _check_people(embeddings, labels)
  correct = total = 0
  for gallery, queries in _rounds(labels, enrolled):
    d = distance_matrix(embeddings[queries], embeddings[gallery])
    predicted = labels[gallery][np.argmin(d, axis=1)]
    correct += int((predicted == labels[queries]).sum())
    total += int(queries.sum())
  return correct / max(total, 1)


def linear_classifier_top1(embeddings: np.ndarray, labels: np.ndarray, enrolled: int = 1,
                           regularisation: float = 10.0) -> float:
  """Top-1 accuracy of a logistic regression (inverse regularisation C) fitted per round on the
  enrolled embeddings (see module doc): embeddings [N, E], integer person ids `labels` [N]."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  embeddings, labels = np.asarray(embeddings, np.float64), np.asarray(labels)
  _check_people(embeddings, labels)
  correct = total = 0
  for gallery, queries in _rounds(labels, enrolled):
    model = LogisticRegression(C=regularisation, max_iter=2000)
    model.fit(embeddings[gallery], labels[gallery])
    correct += int((model.predict(embeddings[queries]) == labels[queries]).sum())
    total += int(queries.sum())
  return correct / max(total, 1)


def open_set_naming(embeddings: np.ndarray, labels: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """What `recognize` meets, from validation people: (known [K] distances of known faces to their
  nearest enrolled face, right [K] whether that face is their person's, strangers [K] distances
  of the same faces to the nearest enrolled face of another person).

  In round r image r of each person of `embeddings` [N, E] (people `labels` [N]) is enrolled;
  each other image is a known face, and the same image against the enrolled faces without its
  own person's is a stranger's face.
  """
  embeddings, labels = np.asarray(embeddings, np.float64), np.asarray(labels)
  _check_people(embeddings, labels)
  known, right, strangers = [], [], []
  for gallery, queries in _rounds(labels, 1):
    d = distance_matrix(embeddings[queries], embeddings[gallery])
    nearest = np.argmin(d, axis=1)
    known.append(d[np.arange(len(nearest)), nearest])
    right.append(labels[gallery][nearest] == labels[queries])
    own = labels[gallery][None, :] == labels[queries][:, None]
    strangers.append(np.where(own, np.inf, d).min(axis=1))
  return np.concatenate(known), np.concatenate(right), np.concatenate(strangers)


def pick_tolerance(embeddings: np.ndarray, labels: np.ndarray, keep: float = 0.0) -> float:
  """The tolerance `recognize` names with by default, picked on validation people only (>= 2).

  keep 0: the distance that maximises the mean of the share of known faces named right and
  the share of strangers' faces answered unknown_person (`open_set_naming`); ties: the middle of
  the best run of cuts, each a midpoint between two distances. keep q in (0, 1]: the smallest
  cut under which q of the known faces that the nearest enrolled face names right stay named
  (recognize turns away at most 1 - q of them; strangers are then named more often).
  """
  if not 0 <= keep <= 1:
    raise UserError(f'tolerance keep share {keep} must be in [0, 1] (config field '
                    'tolerance_keep)')
  known, right, strangers = open_set_naming(embeddings, labels)
  strangers = strangers[np.isfinite(strangers)]
  cuts = np.unique(np.concatenate([known, strangers]))
  cuts = np.concatenate([[cuts[0] - 1e-3], (cuts[1:] + cuts[:-1]) / 2, [cuts[-1] + 1e-3]])
  named = (right[None, :] & (known[None, :] <= cuts[:, None])).mean(axis=1)
  if keep > 0:
    return float(cuts[np.argmax(named >= keep * right.mean() - 1e-12)])
  rejected = (strangers[None, :] > cuts[:, None]).mean(axis=1) if len(strangers) else 1.0
  score = 0.5 * (named + rejected)
  best = np.flatnonzero(score >= score.max() - 1e-12)
  return float(cuts[best[len(best) // 2]])


def naming_at(embeddings: np.ndarray, labels: np.ndarray, tolerance: float) -> dict[str, float]:
  """What `recognize` answers at `tolerance` with one enrolled image per person (the rounds of
  `open_set_naming`), on embeddings [N, E] of people `labels` [N]: {'recognize_top1': the share
  of faces named right (the nearest enrolled person within the tolerance; unknown_person is
  wrong), 'strangers_unknown': the share of strangers' faces (each face against the enrolled
  faces of the other people) answered unknown_person}."""
  known, right, strangers = open_set_naming(embeddings, labels)
  strangers = strangers[np.isfinite(strangers)]
  return {'recognize_top1': float(np.mean(right & (known <= tolerance))) if len(right) else 0.0,
          'strangers_unknown': float(np.mean(strangers > tolerance)) if len(strangers) else 1.0}


def recognize_identification(embeddings: np.ndarray, labels: np.ndarray, tolerance: float
                             ) -> float:
  """The share of faces `recognize` names right with one enrolled image per person: in round r
  image r of every person is enrolled and every other image is named as `recognize` names it
  (the nearest enrolled person, or unknown_person - a wrong answer here - when farther than
  `tolerance`); averaged over the rounds. embeddings [N, E], integer person ids `labels` [N]."""
  return naming_at(embeddings, labels, tolerance)['recognize_top1']


def strangers_unknown(embeddings: np.ndarray, labels: np.ndarray, tolerance: float) -> float:
  """The share of strangers' faces (`open_set_naming`: each face against the enrolled faces of
  the other people) that `recognize` answers unknown_person at `tolerance`."""
  return naming_at(embeddings, labels, tolerance)['strangers_unknown']


def evaluate_people(embeddings: np.ndarray, labels: np.ndarray, threshold: float | None = None,
                    linear: bool = True) -> dict[str, float]:
  """All measures of one split: verification at `threshold` (None: the split's own best one),
  nearest-neighbour top-1 with 1 enrolled image, and linear-classifier top-1 with 1 and 5."""
  distances, same = pair_distances(embeddings, labels)
  if threshold is None:
    threshold = best_threshold(distances, same)
  measures = verification(distances, same, threshold)
  measures['nearest_neighbour_top1'] = nearest_neighbour_top1(embeddings, labels, 1)
  if linear:
    measures['linear_top1'] = linear_classifier_top1(embeddings, labels, 1)
    measures['linear_top1_5_enrolled'] = linear_classifier_top1(embeddings, labels, 5)
  measures['people'] = int(len(np.unique(labels)))
  measures['images'] = int(len(labels))
  return measures


def pick_threshold(validation: np.ndarray, labels: np.ndarray, impostors: np.ndarray | None
                   ) -> float:
  """The best-accuracy Euclidean threshold over the pairs of the validation embeddings [N, E]
  (people `labels`), with `impostors` [M, E] (training faces; None: none) as more different-person
  pairs (`calibration_pairs`)."""
  return best_threshold(*calibration_pairs(validation, labels, impostors))


def measure_unseen(embedder: Callable[[Any, np.ndarray], np.ndarray], params,
                   dataset: face_data.FaceDataset, impostors: str = 'validation',
                   tolerance: float | None = None, tolerance_keep: float = 0.0
                   ) -> dict[str, Any]:
  """Validation measures (they pick the threshold) and test measures at that threshold.

  embedder: (params, uint8 faces [N, H, W, C]) -> embeddings [N, E], e.g. `embedding.Embedder`.
  impostors: one of THRESHOLD_IMPOSTORS; with 'validation+train' the threshold is picked on the
  validation people's pairs plus every validation face against every training face. The test
  measures also hold `validation_pairs_threshold` (picked on the validation people's pairs alone)
  and `validation_pairs_accuracy`, `..._balanced_accuracy`, `..._false_accept_rate`,
  `..._true_accept_rate` at it; `tolerance` (the given one; None: `pick_tolerance` over the
  validation people with `tolerance_keep`), and `recognize_top1` and `strangers_unknown`
  (`naming_at` that tolerance).
  Without validation people (all non-test people trained on) a tolerance must be given; it is
  then the verification threshold too.
  """
  splits = [s for s in face_data.SPLITS if len(dataset.splits[s])]
  embedded = {s: embedder(params, dataset.splits[s].images) for s in splits}
  test_labels = dataset.splits['test'].labels
  if 'validation' not in embedded:
    if tolerance is None:
      raise UserError('without validation people the recognize tolerance must be given (config '
                      'field tolerance)')
    test = evaluate_people(embedded['test'], test_labels, threshold=tolerance)
    test['tolerance'] = float(tolerance)
    test.update(naming_at(embedded['test'], test_labels, tolerance))
    return {'validation': {}, 'test': test, 'embeddings': embedded}
  labels = dataset.splits['validation'].labels
  threshold = pick_threshold(embedded['validation'], labels,
                             embedded['train'] if impostors == 'validation+train' else None)
  if tolerance is None:
    tolerance = pick_tolerance(embedded['validation'], labels, tolerance_keep)
  validation = evaluate_people(embedded['validation'], labels, threshold=threshold, linear=False)
  validation['tolerance'] = float(tolerance)
  test = evaluate_people(embedded['test'], test_labels, threshold=threshold)
  test['tolerance'] = float(tolerance)
  test.update(naming_at(embedded['test'], test_labels, tolerance))
  test['validation_pairs_threshold'] = pick_threshold(embedded['validation'], labels, None)
  at_validation_pairs = accuracy_at(*pair_distances(embedded['test'], test_labels),
                                    test['validation_pairs_threshold'])
  test.update({f'validation_pairs_{name}': value for name, value in at_validation_pairs.items()})
  return {'validation': validation, 'test': test, 'embeddings': embedded}
