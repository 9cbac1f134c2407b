"""The HOG face detector: face boxes, HOG against scikit-image, training windows, a tiny detector
trained on ORL people s1..s10 finding an unseen person's pasted face, save/load, bad inputs."""

import re

import jax
import numpy as np
from PIL import Image
import pytest

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import detector_windows
from mlfun_jax.faces import face_box
from mlfun_jax.faces import hog
from mlfun_jax.faces import hog_detector
from tests.conftest import one_line


def _person(orl, number: int) -> np.ndarray:
  folder = orl / f's{number}'
  return np.stack([face_data.load_face(str(folder / name), (112, 92, 1))[..., 0]
                   for name in face_data.face_files(str(folder))])


@pytest.fixture(scope='module')
def orl(shared_data_dir):
  return shared_data_dir / 'faces_orl'


@pytest.fixture(scope='module')
def background():
  """A photo without people that no training negative comes from (skimage's rocket, grey)."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  return detector_windows.grey(skimage.data.rocket())


@pytest.fixture(scope='module')
def detector(orl):
  """A tiny detector trained on s1..s10 (seconds): few windows, one round of mining."""
  faces = np.concatenate([_person(orl, n) for n in range(1, 11)])
  return hog_detector.train_from_faces(
      faces, jax.random.key(0), copies=3, lfw_copies=1, negatives=1500, steps=150,
      mining_rounds=1, mined_per_photo=100, mining_photos=3)


def test_iou_and_non_max_suppression_on_hand_made_boxes():
  boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
  overlaps = face_box.iou(boxes, boxes[:3])
  assert overlaps.dtype == np.float32 and overlaps.shape == (4, 3)
  np.testing.assert_allclose(overlaps[0], [1, 50 / 150, 0], rtol=1e-6)
  np.testing.assert_allclose(overlaps[3], overlaps[0])
  scores = np.array([0.5, 0.9, 0.1, 0.2], np.float32)
  np.testing.assert_array_equal(face_box.non_max_suppression(boxes, scores, 0.3), [1, 2])
  np.testing.assert_array_equal(face_box.non_max_suppression(boxes, scores, 0.5), [1, 0, 2])
  assert face_box.non_max_suppression(np.zeros((0, 4)), np.zeros(0, np.float32)).shape == (0,)
  nested = np.array([[0, 0, 100, 100], [10, 10, 50, 50], [90, 0, 190, 100]], np.float32)
  np.testing.assert_allclose(face_box.intersection_over_smaller(nested, nested)[0], [1, 1, 0.1])
  nested_scores = np.array([0.9, 0.5, 0.4], np.float32)
  np.testing.assert_array_equal(face_box.non_max_suppression(nested, nested_scores), [0, 1, 2])
  np.testing.assert_array_equal(
      face_box.non_max_suppression(nested, nested_scores, containment_threshold=0.7), [0, 2])
  np.testing.assert_allclose(face_box.pasted_box(2.0, (5, 7)), [25, 55, 169, 199])
  assert face_box.FACE_BOX_ORL[2] - face_box.FACE_BOX_ORL[0] == 72
  with pytest.raises(checks.InputConventionError, match='right >= left') as error:
    face_box.iou(np.array([[10, 0, 0, 10]]), boxes)
  one_line(error)


def test_hog_agrees_with_skimage_on_orl_faces(orl):
  """Measured on these faces: hard binning equals skimage.feature.hog to 1e-7 (float32); the
  interpolated orientations (Dalal-Triggs) correlate 0.967 (8 px cells) / 0.955 (6 px)."""
  from skimage.feature import hog as skimage_hog  # pylint: disable=g-import-not-at-top
  faces = _person(orl, 21)[:4]
  for cell, correlation in ((8, 0.96), (6, 0.95)):
    expected = np.stack([skimage_hog(face, orientations=9, pixels_per_cell=(cell, cell),
                                     cells_per_block=(2, 2), block_norm='L2-Hys')
                         for face in faces])
    hard = np.asarray(hog.hog_features(faces.astype(np.float32), cell, interpolate=False))
    assert hard.shape == expected.shape == (4, (112 // cell - 1) * (92 // cell - 1) * 36)
    assert np.abs(hard - expected).max() < 1e-6
    soft = np.asarray(hog.hog_features(faces.astype(np.float32), cell))
    assert np.corrcoef(soft.ravel(), expected.ravel())[0, 1] > correlation
  cells = hog.hog_cells(faces.astype(np.float32), 8)
  assert cells.shape == (4, 14, 11, 9) and cells.dtype == np.float32


def test_training_windows(orl):
  side = 48
  positives = detector_windows.orl_positive_windows(_person(orl, 1)[:3], jax.random.key(1), side,
                                                    copies=4)
  lfw = detector_windows.lfw_positive_windows(jax.random.key(2), side, copies=1)
  negatives = detector_windows.negative_windows(detector_windows.package_photos()[:3], 40,
                                                jax.random.key(3), side)
  assert positives.shape == (12, side, side) and lfw.shape == (100, side, side)
  assert negatives.shape == (40, side, side)
  assert positives.dtype == lfw.dtype == negatives.dtype == np.uint8
  assert not np.array_equal(positives[0], positives[1])  # Augmented copies differ.
  # Faces look like the mean face of another person (s30), negatives do not (mean correlations
  # measured: 0.25 ORL, 0.29 lfw, 0.03 negatives).
  reference = detector_windows.orl_positive_windows(_person(orl, 30), jax.random.key(4), side,
                                                    copies=1).astype(np.float32).mean(0).ravel()
  reference -= reference.mean()

  def likeness(windows):
    centred = windows.reshape(len(windows), -1).astype(np.float32)
    centred -= centred.mean(1, keepdims=True)
    return np.mean(centred @ reference / (np.linalg.norm(centred, axis=1) *
                                          np.linalg.norm(reference) + 1e-6))

  assert likeness(positives) > 0.15 and likeness(lfw) > 0.15
  assert likeness(negatives) < 0.1


def test_finds_an_unseen_persons_pasted_face_at_two_scales(detector, orl, background):
  assert detector.meta['held_out_recall'] > 0.3
  _, clean_scores = detector.detect(background, threshold=-np.inf)
  face = _person(orl, 25)[0]
  for scale, corner in ((1.0, (60, 150)), (1.6, (300, 80))):
    pasted = Image.fromarray(face).resize((round(92 * scale), round(112 * scale)),
                                          Image.BILINEAR)
    photo = background.copy()
    photo[corner[1]:corner[1] + pasted.height, corner[0]:corner[0] + pasted.width] = pasted
    boxes, scores = detector.detect(photo, threshold=-np.inf)
    assert boxes.dtype == scores.dtype == np.float32 and boxes.shape == (len(scores), 4)
    assert np.all(np.diff(scores) <= 0)
    overlaps = face_box.iou(boxes, face_box.pasted_box(scale, corner)[None])[:, 0]
    assert overlaps.max() >= 0.5, (scale, overlaps.max())
    assert scores[overlaps >= 0.5].max() > clean_scores.max(), scale


def test_save_and_load_give_equal_detections(detector, background, tmp_path):
  path = detector.save(tmp_path / 'detector.npz')
  loaded = hog_detector.HogDetector.load(path)
  assert loaded.threshold == detector.threshold and loaded.meta == detector.meta
  for a, b in zip(detector.detect(background, threshold=0.0),
                  loaded.detect(background, threshold=0.0)):
    np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_one_line_errors(detector, tmp_path):
  image = np.zeros((60, 80), np.uint8)
  with pytest.raises(checks.InputConventionError, match=re.escape('got float32')) as error:
    detector.detect(image.astype(np.float32))
  assert one_line(error).startswith('image: expected uint8 images [H, W]')
  with pytest.raises(checks.InputConventionError, match=re.escape('(60, 80, 3)')) as error:
    detector.detect(np.zeros((60, 80, 3), np.uint8))
  one_line(error)
  path = tmp_path / 'detector.npz'
  data = bytearray(open(detector.save(path), 'rb').read())
  data[len(data) // 2] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(UserError, match='face detector .* is damaged') as error:
    hog_detector.HogDetector.load(path)
  one_line(error)
  with pytest.raises(UserError, match='does not exist') as error:
    hog_detector.HogDetector.load(tmp_path / 'absent.npz')
  one_line(error)
  with pytest.raises(checks.InputConventionError, match='H, W >= 16') as error:
    hog.hog_cells(np.zeros((1, 10, 40), np.float32), 8)
  one_line(error)
