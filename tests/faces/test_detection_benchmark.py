"""The face-detection benchmark: its measures (hand-computed cases), its pictures (deterministic,
boxes inside, faces really pasted) and the LBP cascade detector on a real photo."""

import jax
import numpy as np
import pytest

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import cascade_detector
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import detection_measures as dm
from mlfun_jax.faces import face_box
from mlfun_jax.faces import scenes
from tests.conftest import raises_one_line


def _box(left, top, side):
  return [left, top, left + side, top + side]


def _pair(boxes, scores):
  return (np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(scores, np.float32))


@pytest.fixture(scope='module')
def orl_faces(shared_data_dir):
  """{'s<N>': uint8 [10, 112, 92]} of ORL people s1..s6 (calibration) and s16..s18 (pictures)."""
  people = dict(face_data.list_face_folders(str(shared_data_dir / 'faces_orl')))
  return {name: np.stack([face_data.load_face(p, (112, 92, 1))[..., 0] for p in people[name]])
          for name in ('s1', 's2', 's3', 's4', 's5', 's6', 's16', 's17', 's18')}


@pytest.fixture(scope='module')
def backgrounds():
  """Two small benchmark backgrounds: a real texture and flat grey."""
  from skimage import data  # pylint: disable=g-import-not-at-top
  return {'gravel': scenes.fit_photo(data.gravel(), (240, 320)),
          'grey': np.full((240, 320), 128, np.uint8)}


def test_perfect_detections_have_ap_one():
  truths = [np.asarray([_box(10, 10, 50), _box(100, 20, 40)], np.float32),
            np.zeros((0, 4), np.float32), np.asarray([_box(5, 5, 30)], np.float32)]
  found = [_pair(truths[0], [0.9, 0.8]), _pair([], []), _pair(truths[2], [0.7])]
  assert dm.average_precision(found, truths) == 1.0
  assert dm.recall_at_fppi(found, truths, fppi=0.0) == 1.0
  # The same boxes shifted by 20% of a side still match at IoU 0.5 (IoU 0.667), not at 0.75.
  shifted = [(b + np.asarray([[(r - l) * 0.2, 0, (r - l) * 0.2, 0] for l, _, r, _ in b],
                             np.float32).reshape(-1, 4), c) for b, c in found]
  assert dm.average_precision(shifted, truths, iou=0.5) == 1.0
  assert dm.average_precision(shifted, truths, iou=0.75) == 0.0
  assert np.isnan(dm.average_precision([_pair([], [])], [np.zeros((0, 4))]))


def test_hand_computed_ap_and_recall_at_fppi():
  # Image A: faces T1, T2; image B: face T3. By score: .9 T1 hit, .8 miss, .7 T3 hit, .6 T2 hit,
  # .5 a second box on T3 (false positive): precision 1, 1/2, 2/3, 3/4, 3/5 at recall
  # 1/3, 1/3, 2/3, 1, 1. AP = 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6.
  t1, t2, t3 = _box(0, 0, 40), _box(100, 0, 40), _box(50, 50, 60)
  truths = [np.asarray([t1, t2], np.float32), np.asarray([t3], np.float32)]
  found = [_pair([t1, _box(200, 200, 40), t2], [0.9, 0.8, 0.6]),
           _pair([t3, np.add(t3, [2, 2, 2, 2])], [0.7, 0.5])]
  assert dm.average_precision(found, truths) == pytest.approx(5 / 6)
  curve = dm.detection_curve(found, truths)
  np.testing.assert_allclose(curve['precision'], [1, 1 / 2, 2 / 3, 3 / 4, 3 / 5])
  np.testing.assert_allclose(curve['false_positives_per_image'], [0, 0.5, 0.5, 0.5, 1.0])
  # 2 images: at most 0.5 FP/image reaches score .6 (recall 1); 0.4 FP/image stops at .9.
  assert dm.recall_at_fppi(found, truths, fppi=1.0) == 1.0
  assert dm.recall_at_fppi(found, truths, fppi=0.5) == 1.0
  assert dm.recall_at_fppi(found, truths, fppi=0.4) == pytest.approx(1 / 3)
  summary = dm.summarize(found, truths)
  assert (summary['images'], summary['faces'], summary['detections']) == (2, 3, 5)


def test_duplicates_are_false_positives_and_ties_enter_together():
  truth = [np.asarray([_box(10, 10, 50)], np.float32)]
  twice = [_pair([_box(10, 10, 50), _box(11, 10, 50)], [0.9, 0.8])]
  curve = dm.detection_curve(twice, truth)
  np.testing.assert_allclose(curve['precision'], [1.0, 0.5])
  np.testing.assert_allclose(curve['false_positives_per_image'], [0.0, 1.0])
  assert dm.average_precision(twice, truth) == 1.0
  # A tie between the hit and a miss: one point, precision 1/2, whatever their order.
  for order in ([_box(10, 10, 50), _box(200, 200, 50)], [_box(200, 200, 50), _box(10, 10, 50)]):
    tied = [_pair(order, [0.5, 0.5])]
    assert dm.average_precision(tied, truth) == 0.5
    assert dm.recall_at_fppi(tied, truth, fppi=0.5) == 0.0


def test_group_pictures_are_deterministic_and_boxes_lie_inside(orl_faces, backgrounds):
  faces = orl_faces['s16'][:4]
  key = jax.random.key(7)
  image, boxes = scenes.group_picture(backgrounds['gravel'], faces, key, max_side=100)
  again, boxes_again = scenes.group_picture(backgrounds['gravel'], faces, key, max_side=100)
  np.testing.assert_array_equal(image, again)
  np.testing.assert_array_equal(boxes, boxes_again)
  other, other_boxes = scenes.group_picture(backgrounds['gravel'], faces, jax.random.key(8),
                                            max_side=100)
  assert not np.array_equal(boxes, other_boxes) and not np.array_equal(image, other)
  assert image.dtype == np.uint8 and image.shape == (240, 320) and boxes.shape == (4, 4)
  for b in np.concatenate([boxes, other_boxes]):
    assert 0 <= b[0] < b[2] <= 320 and 0 <= b[1] < b[3] <= 240
    assert b[2] - b[0] == pytest.approx(b[3] - b[1]) and 40 - 1e-3 <= b[2] - b[0] <= 100 + 1e-3
  people = {name: orl_faces[name] for name in ('s16', 's17', 's18')}
  first = scenes.benchmark(people, key, pictures=3, backgrounds=backgrounds, real_photos=False,
                           max_side=100)
  second = scenes.benchmark(people, key, pictures=3, backgrounds=backgrounds, real_photos=False,
                            max_side=100)
  assert [p.source for p in first] == ['group:gravel', 'group:grey', 'group:gravel']
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert 1 <= len(a.boxes) <= 6


def test_pasted_faces_change_their_box_and_nothing_far_away(orl_faces, backgrounds):
  for name in ('gravel', 'grey'):
    background = backgrounds[name]
    image, boxes = scenes.group_picture(background, orl_faces['s17'][:3], jax.random.key(3),
                                       max_side=90)
    far = np.ones(background.shape, bool)
    for left, top, right, bottom in boxes:
      inner = (slice(int(top) + 3, int(bottom) - 3), slice(int(left) + 3, int(right) - 3))
      change = np.abs(image[inner].astype(int) - background[inner].astype(int)).mean()
      assert change > 15, (name, change)
      reach = scenes.HEAD_REACH / 72 * (right - left)
      cx, cy = (left + right) / 2, (top + bottom) / 2
      far[max(int(cy - reach) - 1, 0):int(cy + reach) + 2,
          max(int(cx - reach) - 1, 0):int(cx + reach) + 2] = False
    assert far.any()
    np.testing.assert_array_equal(image[far], background[far])


def test_real_photos_and_box_from_eyes():
  photos = scenes.real_face_photos()
  assert [p.source for p in photos] == ['photo:astronaut', 'photo:grace_hopper']
  for photo in photos:
    assert photo.image.dtype == np.uint8 and photo.image.ndim == 2
    assert photo.boxes.shape == (1, 4)
  # The ORL mean face's eyes give FACE_BOX_ORL back.
  np.testing.assert_allclose(scenes.box_from_eyes(*face_box.ORL_EYES), face_box.FACE_BOX_ORL)


def test_cascade_finds_the_astronaut():
  detector = cascade_detector.CascadeDetector()
  astronaut = scenes.real_face_photos()[0]
  boxes, scores = detector.detect(astronaut.image)
  assert boxes.dtype == np.float32 and scores.dtype == np.float32
  assert np.all(np.diff(scores) <= 0)
  overlap = face_box.iou(boxes, astronaut.boxes)[:, 0]
  assert overlap.max() >= 0.5, (boxes[:3], overlap[:3])
  assert scores[np.argmax(overlap)] >= 3  # Several windows (positions x scales) said "face".


def test_cascade_calibration_refits_close_to_its_constants(orl_faces):
  faces = np.stack([orl_faces[f's{n}'][0] for n in range(1, 7)])  # Six people (as the constants).
  fit = cascade_detector.fit_box_calibration(faces, sides=(80.0,))
  assert fit['found'] >= 5
  assert fit['scale'] == pytest.approx(cascade_detector.BOX_SCALE, abs=0.06)
  assert fit['shift_y'] == pytest.approx(cascade_detector.BOX_SHIFT[1], abs=0.04)


def test_bad_inputs_are_one_line_errors(orl_faces, backgrounds):
  truth = [np.zeros((1, 4), np.float32) + [0, 0, 10, 10]]
  with raises_one_line('detections: expected one entry per image'):
    dm.average_precision([], truth)
  with raises_one_line(r'detections\[0\] scores: expected one score per box'):
    dm.average_precision([_pair([_box(0, 0, 5)], [0.5, 0.4])], truth)
  with raises_one_line(r'detections\[0\] boxes: expected boxes'):
    dm.average_precision([(np.zeros((2, 3), np.float32), np.zeros(2, np.float32))], truth)
  with raises_one_line('iou: expected a number in'):
    dm.average_precision([_pair([], [])], truth, iou=0)
  with raises_one_line('fppi: expected a number >= 0'):
    dm.recall_at_fppi([_pair([], [])], truth, fppi=-1)
  faces = orl_faces['s16'][:2]
  with raises_one_line('background: expected uint8 images'):
    scenes.group_picture(backgrounds['grey'].astype(np.float32), faces, jax.random.key(0))
  with raises_one_line('faces: expected uint8 images'):
    scenes.group_picture(backgrounds['grey'], faces[:, :100], jax.random.key(0))
  with raises_one_line('key: expected a JAX PRNG key'):
    scenes.group_picture(backgrounds['grey'], faces, 'seed')
  with pytest.raises(UserError, match='could not place') as error:
    scenes.group_picture(backgrounds['grey'][:60, :60], faces, jax.random.key(0), min_side=50)
  assert '\n' not in str(error.value)
  detector = cascade_detector.CascadeDetector()
  with raises_one_line('image: expected uint8 images'):
    detector.detect(np.zeros((50, 50), np.float32))
  with raises_one_line(r'image: expected uint8 images \[H, W\]'):
    detector.detect(np.zeros((50, 50, 3), np.uint8))
  with raises_one_line('scale_factor: expected > 1'):
    cascade_detector.CascadeDetector(scale_factor=1.0)
