"""Sample quality in a trained classifier's feature space: Fréchet distance and Inception Score.

Pure numpy/scipy. Features are a classifier's penultimate activations [N, D] and probabilities its
softmax outputs [N, K]; with a small task classifier in place of Inception these give the
"Fréchet distance" (FID-style) and the "classifier-based Inception Score" of generated samples.
"""

import numpy as np
from scipy import linalg


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(mean float64 [D], unbiased covariance float64 [D, D]) of `features` float [N, D], N >= 2."""
  features = np.asarray(features, np.float64)
  if features.ndim != 2:
    raise ValueError(f'features must be [N, D], got shape {features.shape}')
  if features.shape[0] < 2:
    raise ValueError(f'need at least 2 feature rows for a covariance, got {features.shape[0]}')
  return features.mean(axis=0), np.atleast_2d(np.cov(features, rowvar=False))


def _sqrtm_product(cov1: np.ndarray, cov2: np.ndarray) -> np.ndarray | None:
  """sqrt(cov1 @ cov2), real part; None if it is not finite or has a large imaginary part."""
  with np.errstate(all='ignore'):
    root = linalg.sqrtm(cov1 @ cov2)
  if not np.all(np.isfinite(root)):
    return None
  if np.iscomplexobj(root):
    scale = max(1.0, float(np.abs(np.diagonal(root).real).max(initial=0.0)))
    if np.abs(np.diagonal(root).imag).max(initial=0.0) > 1e-3 * scale:
      return None
    root = root.real
  return root


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray,
                     eps: float = 1e-6) -> float:
  """Fréchet distance ||m1 - m2||^2 + Tr(C1 + C2 - 2 sqrt(C1 C2)) between two Gaussians.

  Args:
    mean1, mean2: [D] means (float32 or float64).
    cov1, cov2: [D, D] covariances.
    eps: added to both diagonals inside the square root (only) when sqrt(C1 C2) is not finite
      or clearly complex (singular covariances), as in the reference FID code.

  Returns:
    The distance as a float >= 0 (rounding below zero is clipped).
  """
  mean1, mean2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mean1, mean2))
  cov1, cov2 = (np.atleast_2d(np.asarray(c, np.float64)) for c in (cov1, cov2))
  d = mean1.shape[0]
  if mean1.shape != (d,) or mean2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
    raise ValueError(f'shape mismatch: means {mean1.shape}, {mean2.shape}; '
                     f'covariances {cov1.shape}, {cov2.shape}')
  root = _sqrtm_product(cov1, cov2)
  if root is None:
    offset = eps * np.eye(d)
    root = _sqrtm_product(cov1 + offset, cov2 + offset)
    if root is None:
      raise ValueError('sqrt(C1 C2) is not finite or real even with eps added to the diagonals')
  diff = mean1 - mean2
  distance = diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(root)
  return max(float(distance), 0.0)


def frechet_distance_of_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
  """Fréchet distance between the Gaussians fitted to features [Na, D] and [Nb, D]."""
  return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def _check_probabilities(probabilities: np.ndarray) -> np.ndarray:
  """float64 [N, K] view of `probabilities`; ValueError unless it is a non-empty matrix."""
  probabilities = np.asarray(probabilities, np.float64)
  if probabilities.ndim != 2 or probabilities.shape[0] < 1 or probabilities.shape[1] < 1:
    raise ValueError(f'probabilities must be a non-empty [N, K] array, got {probabilities.shape}')
  return probabilities


def inception_score(probabilities: np.ndarray, splits: int = 1) -> tuple[float, float]:
  """(mean, std over splits) of exp(E_x KL(p(y|x) || p(y))), p(y) the mean within each split.

  Args:
    probabilities: float [N, K] class probabilities, rows summing to 1.
    splits: number of near-equal consecutive parts (1 <= splits <= N); std is 0 for one split.

  Returns:
    Scores in [1, K]: 1 when every row is the same, K for confident predictions spread evenly.
  """
  probabilities = _check_probabilities(probabilities)
  if not 1 <= splits <= probabilities.shape[0]:
    raise ValueError(f'splits must be in [1, N={probabilities.shape[0]}], got {splits}')
  scores = []
  for part in np.array_split(probabilities, splits):
    marginal = part.mean(axis=0, keepdims=True)
    log_ratio = np.log(np.clip(part, 1e-12, None)) - np.log(np.clip(marginal, 1e-12, None))
    scores.append(np.exp(np.mean(np.sum(part * log_ratio, axis=1))))
  return float(np.mean(scores)), float(np.std(scores))


def class_histogram(probabilities: np.ndarray, num_classes: int | None = None) -> np.ndarray:
  """int64 [num_classes]: how many rows of `probabilities` [N, K] have each class as argmax.

  `num_classes` defaults to K and may not be smaller.
  """
  probabilities = _check_probabilities(probabilities)
  k = probabilities.shape[1]
  num_classes = k if num_classes is None else num_classes
  if num_classes < k:
    raise ValueError(f'num_classes={num_classes} is smaller than K={k}')
  return np.bincount(np.argmax(probabilities, axis=1), minlength=num_classes).astype(np.int64)


def classes_found(probabilities: np.ndarray, min_count: int = 1) -> int:
  """How many classes are the argmax of at least `min_count` rows of `probabilities` [N, K]."""
  if min_count < 1:
    raise ValueError(f'min_count must be >= 1, got {min_count}')
  return int(np.sum(class_histogram(probabilities) >= min_count))


def code_class_purity(counts: np.ndarray) -> float:
  """Share of samples whose class is their code's most frequent class, from counts [K codes,
  C classes] of (code, class found) pairs: 1.0 when every code draws a single class; for K = C,
  a code-class purity near 1 with all classes found means each code learnt one class."""
  counts = np.asarray(counts, np.float64)
  total = counts.sum()
  if counts.ndim != 2 or total <= 0:
    raise ValueError(f'counts must be a non-empty [codes, classes] table, got shape {counts.shape}')
  return float(counts.max(axis=1).sum() / total)
