"""recognize's naming measures: one-enrolled-image identification as recognize answers it, and the
tolerance picked for open-set naming on validation people."""

import numpy as np
import pytest

from mlfun_jax.faces import measures as face_measures


def _people(offsets):
  """2-D embeddings: person p's images at (p, offset) for each offset (one image per offset)."""
  e = np.array([[p * 1.0, o] for p in range(3) for o in offsets])
  return e, np.repeat(np.arange(3), len(offsets))


def test_recognize_identification_counts_unknown_as_wrong():
  # Each person's 2 images 0.2 apart, people 1.0 apart: nearest is always right.
  e, labels = _people((0.0, 0.2))
  assert face_measures.recognize_identification(e, labels, tolerance=0.5) == 1.0
  assert face_measures.nearest_neighbour_top1(e, labels) == 1.0
  # A tolerance below 0.2 answers unknown_person for every face: none named right.
  assert face_measures.recognize_identification(e, labels, tolerance=0.1) == 0.0
  # Person 0's second image moved next to person 1: 2 of its rounds' answers go wrong.
  e[1] = [0.9, 0.0]
  assert face_measures.recognize_identification(e, labels, tolerance=5.0) == pytest.approx(4 / 6)


def test_open_set_naming_and_the_picked_tolerance():
  e, labels = _people((0.0, 0.3))
  known, right, strangers = face_measures.open_set_naming(e, labels)
  np.testing.assert_allclose(known, 0.3)  # Each face's enrolled twin.
  assert right.all()
  # A stranger's nearest enrolled face is another person's: 1.0 or hypot(1, 0.3) away.
  assert ((strangers >= 1.0) & (strangers <= np.hypot(1.0, 0.3) + 1e-9)).all()
  tolerance = face_measures.pick_tolerance(e, labels)
  # Every known face (0.3) named, every stranger (>= 1.0) unknown: a cut in the middle run.
  assert 0.3 < tolerance < 1.0
  assert face_measures.recognize_identification(e, labels, tolerance) == 1.0
  # People closer together: a stranger at 0.25 beats a known face at 0.3 for some cut choices;
  # the picked tolerance balances named known faces and rejected strangers.
  e[:, 0] *= 0.25
  tolerance = face_measures.pick_tolerance(e, labels)
  known, right, strangers = face_measures.open_set_naming(e, labels)
  named = np.mean(right & (known <= tolerance))
  rejected = np.mean(strangers > tolerance)
  for cut in np.linspace(0, 1, 101):  # No other cut does better on the mean of the two.
    assert (np.mean(right & (known <= cut)) + np.mean(strangers > cut)) / 2 <= (
        named + rejected) / 2 + 1e-12
