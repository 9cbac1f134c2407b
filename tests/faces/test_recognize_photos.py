"""recognize on photos: every face found (scikit-image's cascade by default), aligned by the run's
eye locator, named; --json boxes, --draw pictures, no_persons_found, --no_detect as before."""

import json

import jax
import numpy as np
from PIL import Image
import pytest

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import face_box
from mlfun_jax.faces import inference
from mlfun_jax.faces import photos
from mlfun_jax.faces import recognition
from mlfun_jax.faces import scenes
from tests.conftest import run_module


def _orl(root, person, image):
  return np.asarray(Image.open(root / person / f'{image}.pgm'), np.uint8)


@pytest.fixture(scope='module')
def photo_set(trained_workdir, shared_data_dir, tmp_path_factory):
  """known/<person>.png: one photo of each of 3 test people (their image 1 pasted large on a
  background); group.png: the same 3 faces smaller, elsewhere, slightly turned, in one picture
  (the fixture's network is a short training: the same face keeps the naming test sure);
  empty.png: no face."""
  workdir, _ = trained_workdir
  people = json.loads((workdir / 'report.json').read_text())['people']['test'][:3]
  root = shared_data_dir / 'faces_orl'
  folder = tmp_path_factory.mktemp('photos')
  (folder / 'known').mkdir()
  background = scenes.background_photo('gravel')
  for i, person in enumerate(people):
    picture, _ = scenes.group_picture(background, _orl(root, person, 1)[None], jax.random.key(i),
                                      min_side=110, max_side=130, max_degrees=0)
    Image.fromarray(picture).save(folder / 'known' / f'{person}.png')
  group, truth = scenes.group_picture(background, np.stack([_orl(root, p, 1) for p in people]),
                                      jax.random.key(7), min_side=90, max_side=120, max_degrees=5)
  Image.fromarray(group).convert('RGB').save(folder / 'group.png')
  Image.fromarray(background).save(folder / 'empty.png')
  return workdir, people, folder, truth


def test_recognize_finds_names_and_draws_every_face(photo_set, tmp_path):
  workdir, people, folder, truth = photo_set
  result = run_module('mlfun_jax.experiments.recognize', f'--workdir={workdir}', '--json',
                      '--tolerance=10', f'--draw={tmp_path / "drawn"}', str(folder / 'known'),
                      str(folder))
  assert result.returncode == 0, result.stderr
  records = [json.loads(line) for line in result.stdout.strip().splitlines()]
  by_photo = {}
  for r in records:
    by_photo.setdefault(r['path'].rsplit('/', 1)[1], []).append(r)
  assert by_photo['empty.png'] == [{'path': str(folder / 'empty.png'), 'box': None,
                                    'name': 'no_persons_found', 'distance': None}]
  group = by_photo['group.png']
  boxes = np.array([r['box'] for r in group], np.float32)
  # Each of the 3 faces found (IoU >= 0.5 with its pasted box), faces listed left to right.
  overlaps = face_box.iou(truth, boxes)
  assert (overlaps.max(axis=1) >= 0.5).all(), (truth, boxes)
  assert list(boxes[:, 0]) == sorted(boxes[:, 0])
  order = np.argmax(overlaps, axis=0)  # The pasted face each found box is.
  named = [r['name'] for r in group if r['name'] != 'no_persons_found']
  right = sum(r['name'] == people[k] for r, k in zip(group, order))
  assert set(named) <= set(people) and right >= 2, (group, people)
  assert all(0 <= r['distance'] < 2.0 for r in group)
  drawn = Image.open(tmp_path / 'drawn' / 'group.png')
  assert drawn.size == Image.open(folder / 'group.png').size
  assert (np.asarray(drawn) != np.asarray(Image.open(folder / 'group.png'))).any()
  assert (tmp_path / 'drawn' / 'empty.png').exists()


def test_text_lines_and_no_detect_answer_as_before(photo_set, shared_data_dir):
  workdir, people, folder, _ = photo_set
  recognizer = recognition.Recognizer.from_workdir(str(workdir), tolerance=10.0)
  assert recognizer.enroll_folder(str(folder / 'known')) == 0
  assert recognizer.names == people
  empty = recognizer.name_photo(photos.load_photo(str(folder / 'empty.png')))
  assert empty == []
  # --no_detect: an ORL file is one face, embedded exactly as load_face reads it.
  plain = recognition.Recognizer.from_workdir(str(workdir), detector=None, tolerance=10.0)
  root = shared_data_dir / 'faces_orl'
  path = str(root / people[0] / '3.pgm')
  embedder = inference.TrainedFaceEmbedder(str(workdir))
  expected = embedder.embed_files([path])
  boxes, inputs = plain.find(photos.load_photo(path))
  np.testing.assert_array_equal(inputs[0], inference.face_data.load_face(
      path, embedder.image_shape, inference.face_data.input_box(embedder.config)))
  known = plain.embedder.embed(inputs)
  np.testing.assert_allclose(known, expected, atol=1e-6)
  np.testing.assert_array_equal(boxes, [[0, 0, 92, 112]])
  with pytest.raises(UserError, match='no known people enrolled'):
    plain.name_photo(photos.load_photo(path))


def test_photo_inputs_are_checked(trained_workdir, tmp_path):
  with pytest.raises(UserError, match='not a readable image'):
    (tmp_path / 'x.png').write_text('no')
    photos.load_photo(str(tmp_path / 'x.png'))
  with pytest.raises(Exception, match='photo'):
    photos.find_faces(np.zeros((10, 10), np.float32), None)
  workdir, _ = trained_workdir
  with pytest.raises(UserError, match='no HOG face detector'):
    recognition.Recognizer.from_workdir(str(workdir), detector='hog')
