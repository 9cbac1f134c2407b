"""Sample quality: Fréchet distance and classifier-based Inception Score on known cases."""

import numpy as np
import pytest

from mlfun_jax.gan import sample_quality


def _correlated_features(rng, n, d):
  """float64 [n, d]: Gaussian features with a random full covariance and nonzero mean."""
  mixing = rng.normal(size=(d, d))
  return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d)


def test_feature_statistics_match_numpy():
  features = _correlated_features(np.random.default_rng(0), 50, 4).astype(np.float32)
  mean, cov = sample_quality.feature_statistics(features)
  assert mean.dtype == cov.dtype == np.float64
  np.testing.assert_allclose(mean, features.astype(np.float64).mean(0))
  np.testing.assert_allclose(cov, np.cov(features.astype(np.float64), rowvar=False))


def test_distance_of_a_set_with_itself_is_zero():
  features = _correlated_features(np.random.default_rng(1), 2000, 16)
  mean, cov = sample_quality.feature_statistics(features)
  distance = sample_quality.frechet_distance(mean, cov, mean, cov)
  assert 0.0 <= distance < 1e-6 * np.trace(cov)
  assert sample_quality.frechet_distance_of_features(features, features) < 1e-6 * np.trace(cov)


def test_shifted_means_give_d_times_shift_squared_and_grow_with_shift():
  rng = np.random.default_rng(2)
  n, d = 4000, 16
  mixing = rng.normal(size=(d, d)) / np.sqrt(d)
  a = rng.normal(size=(n, d)) @ mixing
  b = rng.normal(size=(n, d)) @ mixing
  distances = [sample_quality.frechet_distance_of_features(a, b + s) for s in (0.25, 0.5, 1, 2)]
  for s, distance in zip((0.5, 1, 2), distances[1:]):
    assert distance == pytest.approx(d * s**2, rel=0.04)
  assert np.all(np.diff(distances) > 0)


def test_diagonal_covariances_match_closed_form():
  rng = np.random.default_rng(3)
  d = 8
  m1, m2 = rng.normal(size=d), rng.normal(size=d)
  a, b = rng.uniform(0.1, 3.0, size=d), rng.uniform(0.1, 3.0, size=d)
  expected = np.sum((m1 - m2)**2) + np.sum((np.sqrt(a) - np.sqrt(b))**2)
  distance = sample_quality.frechet_distance(m1, np.diag(a), m2, np.diag(b))
  assert distance == pytest.approx(expected, rel=1e-6)
  distance32 = sample_quality.frechet_distance(*(x.astype(np.float32) for x in
                                                 (m1, np.diag(a), m2, np.diag(b))))
  assert distance32 == pytest.approx(expected, rel=1e-5)


def test_singular_covariances_give_finite_non_negative_distance():
  rng = np.random.default_rng(4)
  a, b = rng.normal(size=(10, 32)), rng.normal(size=(12, 32)) + 0.5
  distance = sample_quality.frechet_distance_of_features(a, b)
  assert np.isfinite(distance) and distance >= 0.0
  same = sample_quality.frechet_distance_of_features(a, a)
  assert np.isfinite(same) and 0.0 <= same < distance


def test_failed_square_root_is_retried_with_eps(monkeypatch):
  real_sqrtm, calls = sample_quality.linalg.sqrtm, []

  def sqrtm_failing_once(matrix):
    calls.append(matrix)
    return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

  monkeypatch.setattr(sample_quality.linalg, 'sqrtm', sqrtm_failing_once)
  a, b = np.diag([1.0, 4.0]), np.diag([4.0, 1.0])
  distance = sample_quality.frechet_distance(np.zeros(2), a, np.zeros(2), b, eps=1e-3)
  assert len(calls) == 2
  np.testing.assert_allclose(calls[1], (a + 1e-3 * np.eye(2)) @ (b + 1e-3 * np.eye(2)))
  # As in the reference FID code, only the square root sees the offset: Tr(A) + Tr(B) = 10.
  root_trace = 2 * np.sqrt((1.0 + 1e-3) * (4.0 + 1e-3))
  assert distance == pytest.approx(10.0 - 2 * root_trace, rel=1e-9)


def test_inception_score_is_k_for_confident_evenly_spread_predictions():
  k, m = 10, 20
  one_hot = np.eye(k)[np.tile(np.arange(k), m)]
  probabilities = (one_hot + 1e-10) / (1.0 + k * 1e-10)
  mean, std = sample_quality.inception_score(probabilities)
  assert mean == pytest.approx(k, abs=1e-6)
  assert std == 0.0


def test_inception_score_is_one_for_identical_predictions():
  row = np.random.default_rng(5).dirichlet(np.ones(7))
  mean, std = sample_quality.inception_score(np.tile(row, (30, 1)))
  assert mean == pytest.approx(1.0, abs=1e-12)
  assert std == 0.0


def test_inception_score_bounds_and_split_spread():
  k = 10
  probabilities = np.random.default_rng(6).dirichlet(0.3 * np.ones(k), size=1000)
  mean, std = sample_quality.inception_score(probabilities)
  assert 1.0 <= mean <= k and std == 0.0
  mean, std = sample_quality.inception_score(probabilities, splits=10)
  assert 1.0 <= mean <= k and std > 0.0


def test_class_histogram_and_classes_found():
  probabilities = np.array([[0.7, 0.2, 0.1, 0.0],
                            [0.6, 0.3, 0.1, 0.0],
                            [0.1, 0.1, 0.8, 0.0],
                            [0.9, 0.0, 0.1, 0.0]])
  histogram = sample_quality.class_histogram(probabilities)
  assert histogram.dtype == np.int64
  np.testing.assert_array_equal(histogram, [3, 0, 1, 0])
  np.testing.assert_array_equal(sample_quality.class_histogram(probabilities, 6),
                                [3, 0, 1, 0, 0, 0])
  assert sample_quality.classes_found(probabilities) == 2
  assert sample_quality.classes_found(probabilities, min_count=2) == 1
  assert sample_quality.classes_found(probabilities, min_count=4) == 0


def test_bad_shapes_raise():
  with pytest.raises(ValueError):
    sample_quality.feature_statistics(np.zeros(5))
  with pytest.raises(ValueError):
    sample_quality.feature_statistics(np.zeros((1, 3)))
  with pytest.raises(ValueError):
    sample_quality.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
  with pytest.raises(ValueError):
    sample_quality.frechet_distance_of_features(np.zeros((5, 3)), np.zeros((5, 4)))
  with pytest.raises(ValueError):
    sample_quality.inception_score(np.ones(4) / 4)
  with pytest.raises(ValueError):
    sample_quality.inception_score(np.ones((3, 4)) / 4, splits=4)
  with pytest.raises(ValueError):
    sample_quality.class_histogram(np.ones((3, 4)) / 4, num_classes=3)
  with pytest.raises(ValueError):
    sample_quality.classes_found(np.ones((3, 4)) / 4, min_count=0)
