"""Alignment into the ORL frame: box crops, eye frames, the self-supervised eye locator."""

import jax
import numpy as np
from PIL import Image
import pytest

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import alignment
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import face_box
from mlfun_jax.faces import locator as face_locator
from tests.conftest import raises_one_line

TRAIN_PEOPLE, TEST_PEOPLE = 12, 4
CENTRE = (slice(20, 100), slice(12, 80))  # Rows and columns of the face in the ORL frame.


@pytest.fixture(scope='module')
def orl(shared_data_dir):
  """(train faces uint8 [120, 112, 92], test faces uint8 [40, 112, 92]): disjoint people."""
  people = face_data.list_face_folders(str(shared_data_dir / 'faces_orl'))
  load = lambda part: np.stack([face_data.load_face(p, (112, 92, 1))[..., 0]  # noqa: E731
                                for _, paths in part for p in paths])
  return load(people[:TRAIN_PEOPLE]), load(people[-TEST_PEOPLE:])


@pytest.fixture(scope='module')
def tiny_locator(orl):
  """A tiny locator ((8, 16) channels) trained for 100 steps of 16 crops (a few seconds)."""
  return face_locator.train_locator(orl[0], jax.random.key(0), steps=100, batch_size=16,
                                    conv_features=(8, 16), dense_features=32, crop_size=32,
                                    learning_rate=5e-3)


@pytest.fixture(scope='module')
def placed(orl):
  """Test faces moved (rotation +-25 degrees, scale 0.8-1.25, shift +-12%, box noise 3%)."""
  return face_locator.place_faces(orl[1], np.random.default_rng(0))


class ExactEyes:
  """A locator that answers the true eyes (or any fixed answer)."""

  def __init__(self, eyes):
    self.eyes = np.asarray(eyes, np.float32)

  def locate(self, image, boxes):  # pylint: disable=unused-argument
    return self.eyes[:len(boxes)]


def test_crop_of_an_orl_image_at_its_face_box_is_the_image(orl):
  faces = orl[1][:5]
  for face in faces:
    assert np.array_equal(alignment.crop_to_orl_frame(face, face_box.FACE_BOX_ORL), face)
  crops = alignment.crop_many_to_orl_frame(faces[0], np.tile(face_box.FACE_BOX_ORL, (3, 1)))
  assert crops.shape == (3, 112, 92) and crops.dtype == np.uint8
  assert np.array_equal(crops[2], faces[0])


def test_crop_of_a_face_pasted_at_twice_its_size_recovers_it(orl):
  face = orl[1][0]
  photo = np.full((300, 260), int(face[0, 0]), np.uint8)
  big = np.asarray(Image.fromarray(face).resize((184, 224), Image.Resampling.BILINEAR))
  photo[30:254, 40:224] = big
  errors = [np.abs(alignment.crop_to_orl_frame(photo, face_box.pasted_box(2.0, at)).astype(float)
                   - face)[CENTRE].mean() for at in ((40, 30), (41, 30), (40, 31))]
  assert errors[0] < 4.0, errors  # Grey levels; bilinear up and 2x2-averaged down: a blur.
  assert min(errors[1:]) > errors[0] + 0.5, errors  # Half an ORL pixel off is clearly worse.


def test_eye_frames_of_orl_eyes_is_the_identity_and_frames_invert():
  frame = alignment.eye_frames(np.asarray([face_box.ORL_EYES], np.float64))
  np.testing.assert_allclose(frame[0], [[1, 0, 0], [0, 1, 0]], atol=1e-12)
  eyes = np.asarray([[[100.0, 80.0], [130.0, 95.0]]])
  frame = alignment.eye_frames(eyes)
  np.testing.assert_allclose(alignment.apply_frames(frame, face_box.ORL_EYES), eyes, atol=1e-9)
  back = alignment.apply_frames(alignment.invert_frames(frame), eyes[0])
  np.testing.assert_allclose(back[0], face_box.ORL_EYES, atol=1e-9)
  # Eye distance 30 * sqrt(1.25) against ORL's 30: scale sqrt(1.25), rotation atan(0.5).
  np.testing.assert_allclose(alignment.frame_scale(frame), [np.sqrt(1.25)], rtol=1e-9)


def test_placed_faces_have_their_eyes_where_the_geometry_says(orl):
  still = face_locator.place_faces(orl[1][:3], np.random.default_rng(0), rotate_degrees=0,
                                   scale=1.0, shift=0.0, box_noise=0.0)
  photos, boxes, eyes = still
  np.testing.assert_allclose(boxes, np.tile([52, 52, 124, 124], (3, 1)))  # Canvas centre 88.
  np.testing.assert_allclose(eyes[0], np.asarray(face_box.ORL_EYES) + [42, 28], atol=1e-5)
  assert np.array_equal(alignment.crop_to_orl_frame(photos[1], boxes[1]), orl[1][1])
  errors = face_locator.orl_eye_errors(alignment.box_frames(boxes), eyes)
  np.testing.assert_allclose(errors, 0, atol=1e-9)


def test_align_with_exact_eyes_undoes_rotation_scale_and_shift(orl, placed):
  photos, boxes, eyes = placed
  aligned = np.stack([alignment.align(p, b, ExactEyes(e[None]))
                      for p, b, e in zip(photos, boxes, eyes)])
  cropped = np.stack([alignment.crop_to_orl_frame(p, b) for p, b in zip(photos, boxes)])
  aligned_error = np.abs(aligned.astype(float) - orl[1])[:, CENTRE[0], CENTRE[1]].mean()
  cropped_error = np.abs(cropped.astype(float) - orl[1])[:, CENTRE[0], CENTRE[1]].mean()
  assert aligned_error < 4.0, aligned_error  # Grey levels: two bilinear resamplings.
  assert cropped_error > 4 * aligned_error, (cropped_error, aligned_error)
  frames, used = alignment.alignment_frames(photos[0], boxes[:1], ExactEyes(eyes[:1]))
  assert used.tolist() == [True]
  np.testing.assert_allclose(face_locator.orl_eye_errors(frames, eyes[:1]), [0], atol=1e-4)


def test_implausible_eyes_fall_back_to_the_box(orl):
  face = orl[1][0]
  boxes = np.asarray([face_box.FACE_BOX_ORL] * 5, np.float32)
  answers = [[[40, 52], [41, 52]],  # Far too close: scale 1/30.
             [[46, 20], [46, 90]],  # Rotated 90 degrees.
             [[np.nan, 0], [1, 1]],  # Not a number.
             [[0, 10], [30, 10]],  # The right size, but outside the box.
             [[33, 50], [61, 54]]]  # Plausible.
  frames, used = alignment.alignment_frames(face, boxes, ExactEyes(answers))
  assert used.tolist() == [False, False, False, False, True]
  np.testing.assert_allclose(frames[4], alignment.eye_frames(np.asarray(answers[4:], float))[0])
  answers = answers[:4]
  boxes = boxes[:4]
  out = alignment.align_many(face, boxes, ExactEyes(answers))
  assert len(out) == 4 and all(np.array_equal(o, face) for o in out)


def test_align_many_of_no_boxes(orl):
  none = np.zeros((0, 4), np.float32)
  out = alignment.align_many(orl[1][0], none, ExactEyes(np.zeros((0, 2, 2))))
  assert out.shape == (0, 112, 92) and out.dtype == np.uint8


def test_trained_locator_lowers_the_eye_error(tiny_locator, placed):
  photos, boxes, eyes = placed
  found = np.concatenate([tiny_locator.locate(p, b[None]) for p, b in zip(photos, boxes)])
  assert found.shape == (len(photos), 2, 2) and found.dtype == np.float32
  without = face_locator.orl_eye_errors(alignment.box_frames(boxes), eyes).mean()
  frames = np.concatenate([alignment.alignment_frames(p, b[None], tiny_locator)[0]
                           for p, b in zip(photos, boxes)])
  with_locator = face_locator.orl_eye_errors(frames, eyes).mean()
  # Measured: 4.2 px without, 2.25 px with (ORL-frame pixels; 40 faces of 4 unseen people).
  assert without > 3.5, without
  assert with_locator < 0.8 * without, (with_locator, without)
  training = tiny_locator.meta['training']
  assert training['steps'] == 100 and training['faces'] == 10 * TRAIN_PEOPLE
  assert 0 < training['final_eye_error_box_pixels'] < 6


def test_save_and_load_give_the_same_answers(tiny_locator, placed, tmp_path):
  path = tiny_locator.save(tmp_path / 'locator.npz')
  loaded = face_locator.Locator.load(path)
  assert loaded.meta == tiny_locator.meta
  photos, boxes, _ = placed
  np.testing.assert_array_equal(loaded.locate(photos[0], boxes[:2]),
                                tiny_locator.locate(photos[0], boxes[:2]))
  with pytest.raises(UserError, match='does not exist'):
    face_locator.Locator.load(tmp_path / 'missing.npz')
  damaged = tmp_path / 'damaged.npz'
  with open(path, 'rb') as f:
    damaged.write_bytes(f.read()[:200])
  with pytest.raises(UserError, match='damaged') as error:
    face_locator.Locator.load(damaged)
  assert '\n' not in str(error.value)
  from mlfun_jax.core import array_files  # pylint: disable=g-import-not-at-top
  other = array_files.save(tmp_path / 'other.npz', {'w': np.zeros(3)}, {'kind': 'detector'})
  with pytest.raises(UserError, match='not a face locator') as error:
    face_locator.Locator.load(other)
  assert '\n' not in str(error.value)


def test_bad_inputs_are_one_line_errors(orl, tiny_locator):
  face = orl[1][0]
  box = np.asarray(face_box.FACE_BOX_ORL, np.float32)
  cases = [
      (lambda: alignment.crop_to_orl_frame(face.astype(np.float32), box), r'^image: .*float32'),
      (lambda: alignment.crop_to_orl_frame(np.stack([face] * 3, -1), box), r'^image: .*\[H, W\]'),
      (lambda: alignment.crop_to_orl_frame(face, box[:3]), r'^box: .*\[4\]'),
      (lambda: alignment.crop_to_orl_frame(face, [10, 20, 10, 40]), r'^box: .*positive width'),
      (lambda: alignment.crop_to_orl_frame(face, [np.nan, 0, 5, 5]), r'^box: .*finite'),
      (lambda: alignment.align_many(face, box, tiny_locator), r'^boxes: .*\[N, 4\]'),
      (lambda: alignment.align(face, box, object()), r'^locator: .*locate'),
      (lambda: alignment.align(face, box, ExactEyes(np.zeros((1, 3, 2)))), r'locate\(\.\.\.\)'),
      (lambda: alignment.align_many(face, np.stack([box, box]), ExactEyes(np.ones((1, 2, 2)))),
       r'expected eyes of 2 boxes, got 1'),
      (lambda: tiny_locator.locate(face[None], box[None]), r'^image: '),
      (lambda: face_locator.train_locator(orl[0][:, :100], jax.random.key(0), steps=1),
       r'^faces: .*\[N, 112, 92\]'),
      (lambda: face_locator.train_locator(orl[0], jax.random.key(0), steps=0), r'^steps: '),
      (lambda: face_locator.train_locator(orl[0], jax.random.key(0), crop_size=30,
                                          conv_features=(4, 4)), r'^crop_size: .*multiple of 4'),
      (lambda: face_locator.train_locator(orl[0], jax.random.key(0), scale_range=(1.2, 0.8)),
       r'^scale_range: '),
  ]
  for call, match in cases:
    with raises_one_line(match):
      call()
