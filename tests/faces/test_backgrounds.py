"""What the network sees of a face frame (the face box grown by face_margin) and the new
backgrounds put around training heads (augment.background)."""

import jax
import numpy as np
import pytest

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import backgrounds
from mlfun_jax.faces import config as faces_config
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import task as faces_task


def test_margin_box_grows_the_face_box_inside_the_frame():
  assert face_data.margin_box(0) == face_data.FACE_BOX == (10, 24, 82, 96)
  assert face_data.margin_box(10) == (0, 14, 92, 106)
  for bad in (-1, 11, 2.5, True):
    with pytest.raises(UserError, match='face_margin'):
      face_data.margin_box(bad)
  config = faces_config.defaults()
  config.face_margin = 4
  assert face_data.input_box(config) == (6, 20, 86, 100)
  config.face_crop = False
  assert face_data.input_box(config) is None


def test_a_box_input_is_that_part_of_the_frame_scaled():
  frame = np.tile(np.arange(92, dtype=np.uint8), (112, 1))  # Each pixel holds its column.
  face = face_data.face_box_input(frame, (23, 23, 1), face_data.margin_box(10))
  assert face.shape == (23, 23, 1) and face.dtype == np.uint8
  # 92 columns over 23 pixels: pixel j averages columns 4j..4j+3, about 4j + 1.5.
  np.testing.assert_allclose(face[11, :, 0], 4 * np.arange(23) + 1.5, atol=1.0)


def test_input_grid_maps_input_pixels_to_frame_positions():
  x, y = backgrounds.input_grid((48, 48), (0, 14, 92, 106))
  step = 92 / 48
  np.testing.assert_allclose(x[0, [0, -1]], [step / 2, 92 - step / 2], rtol=1e-6)
  np.testing.assert_allclose(y[[0, -1], 0], [14 + step / 2, 106 - step / 2], rtol=1e-6)
  # A wide input of a square box sees its middle rows only (centre crop).
  x, y = backgrounds.input_grid((24, 48), (10, 24, 82, 96))
  np.testing.assert_allclose([x[0, 0], y[0, 0]], [10.75, 42.75], rtol=1e-6)


def test_replaced_background_keeps_the_head_and_changes_the_corners():
  grid = backgrounds.input_grid((48, 48), face_data.margin_box(10))
  face = np.full((48, 48, 1), 200.0, np.float32)
  bank = np.zeros((3, 48, 48, 1), np.uint8)  # Black squares: after light changes, at most 128+40.
  key = jax.random.key(3)
  out = np.asarray(backgrounds.replace_background(key, face, bank, grid, 1.0))
  assert out.shape == (48, 48, 1) and out.dtype == np.float32
  np.testing.assert_allclose(out[22:26, 22:26], 200.0)  # The head's middle is the face.
  assert (out[[0, 0, -1, -1], [0, -1, 0, -1]] < 100).all()  # Corners are background.
  np.testing.assert_array_equal(out, backgrounds.replace_background(key, face, bank, grid, 1.0))
  untouched = backgrounds.replace_background(key, face, bank, grid, 0.0)
  np.testing.assert_array_equal(untouched, face)
  many = jax.vmap(lambda k: backgrounds.replace_background(k, face, bank, grid, 0.5))(
      jax.random.split(jax.random.key(4), 200))
  assert 0.35 < np.mean(np.asarray(many)[:, 0, 0, 0] != 200.0) < 0.65


def test_background_bank_and_training_augmentation():
  bank = backgrounds.background_bank((48, 40), jax.random.key(0), count=6)
  assert bank.shape == (6, 48, 40, 1) and bank.dtype == np.uint8 and bank.std() > 10
  config = faces_config.defaults()
  config.augment.background = 1.0
  faces = np.full((4, 48, 40, 1), 200, np.uint8)
  keys = jax.random.split(jax.random.key(1), 4)
  with pytest.raises(UserError, match='augment.background'):
    faces_task.augment_faces(keys, faces, config)
  config.augment.erase = 0.0
  config.augment.shift, config.augment.rotate_degrees = 0, 0.0
  config.augment.brightness, config.augment.contrast = 0.0, 0.0
  out = np.asarray(faces_task.augment_faces(keys, faces, config, bank))
  np.testing.assert_allclose(out[:, 24, 20], 200.0)
  assert (out[:, 0, 0] != 200.0).all()
