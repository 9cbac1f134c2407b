"""Face inputs of the wrong convention fail with one clear line naming the argument."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.core import checks
from mlfun_jax.faces import embedding
from mlfun_jax.faces import measures as face_measures
from mlfun_jax.faces import model as face_embedding
from mlfun_jax.faces import pictures as face_pictures
from mlfun_jax.faces import triplet
from tests.conftest import one_line


@pytest.fixture(scope='module')
def tiny():
  model = face_embedding.FaceEmbedding(conv_features=(4,), embedding_size=8)
  params = model.init(jax.random.key(0), jnp.zeros((1, 8, 6, 1)), train=False)['params']
  return model, params


def test_embed_and_the_embedder_take_a_uint8_batch(tiny):
  model, params = tiny
  faces = np.full((3, 8, 6, 1), 128, np.uint8)
  embedder = embedding.Embedder(model, 100.0, 50.0)
  assert embedder(params, faces).shape == (3, 8)
  assert embedding.embed(model, params, faces, 100.0, 50.0).shape == (3, 8)
  for bad, got in ((faces.astype(np.float32) / 255, 'got float32'),  # [0, 1] floats.
                   (faces[0], 'got uint8 of shape (8, 6, 1)')):  # One face, not a batch.
    for call in (lambda x: embedder(params, x),
                 lambda x: embedding.embed(model, params, x, 100.0, 50.0)):
      with pytest.raises(checks.InputConventionError, match=re.escape(got)) as error:
        call(bad)
      assert one_line(error).startswith('images: expected uint8 images [B, H, W, C]')


def test_the_network_takes_normalised_floats(tiny):
  model, params = tiny
  with pytest.raises(checks.InputConventionError, match='images: expected floating-point'):
    model.apply({'params': params}, jnp.zeros((2, 8, 6, 1), jnp.uint8), train=False)
  with pytest.raises(checks.InputConventionError, match='got float32 of shape'):
    model.apply({'params': params}, jnp.zeros((8, 6, 1)), train=False)


def test_test_time_views_take_a_batch():
  with pytest.raises(checks.InputConventionError, match=r'images: expected a batch of images'):
    embedding.test_time_views(jnp.zeros((8, 6, 1), jnp.uint8))


def test_cosface_labels_are_class_ids_of_the_centres():
  e = jnp.eye(3)
  centres = jnp.eye(3)
  assert np.isfinite(float(triplet.cosface_loss(e, jnp.array([0, 1, 2]), centres)[0]))
  with pytest.raises(checks.InputConventionError, match=r'labels: expected integer ids of rank 1 '
                     r'in 0\.\.2, got values in \[0, 3\]') as error:
    triplet.cosface_loss(e, jnp.array([0, 1, 3]), centres)
  one_line(error)
  with pytest.raises(checks.InputConventionError, match='labels: expected integer ids'):
    triplet.cosface_loss(e, jnp.array([0.0, 1.0, 2.0]), centres)
  # Under jit the values are unknown: only the dtype and rank are checked.
  jax.jit(lambda l: triplet.cosface_loss(e, l, centres)[0])(jnp.array([0, 1, 2]))


def test_triplet_and_measure_labels_are_integer_person_ids():
  e = jnp.eye(4)
  with pytest.raises(checks.InputConventionError, match='labels: expected integer ids of rank 1'):
    triplet.triplet_loss(e, jnp.array([[0, 0, 1, 1]]))
  embeddings = np.eye(4)
  with pytest.raises(checks.InputConventionError, match='labels: expected integer ids'):
    face_measures.pair_distances(embeddings, np.array(['a', 'a', 'b', 'b']))
  with pytest.raises(checks.InputConventionError, match='one person id per embedding'):
    face_measures.nearest_neighbour_top1(embeddings, np.array([0, 0, 1]))


def test_hog_picture_takes_one_uint8_face(tmp_path):
  face = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
  assert face_pictures.hog_picture(face, str(tmp_path / 'hog.png'))
  with pytest.raises(checks.InputConventionError, match=r'face: expected uint8 images \[H, W\]'):
    face_pictures.hog_picture(face[None, :, :, None], str(tmp_path / 'bad.png'))


def test_face_splits_refuse_float_faces_and_named_people():
  """triplet_batches and class_labels take an ArraySplit, which holds uint8 faces and int32 ids."""
  from mlfun_jax.faces import data as face_data  # pylint: disable=g-import-not-at-top
  labels = np.repeat(np.arange(4), 3).astype(np.int32)
  with pytest.raises(ValueError, match=r'images must be uint8 \[N, H, W, C\], got float32'):
    face_data.ArraySplit(np.zeros((12, 2, 2, 1), np.float32), labels)
  with pytest.raises(ValueError, match=r'labels must be int32 \[12\]'):
    face_data.ArraySplit(np.zeros((12, 2, 2, 1), np.uint8), labels.astype(str))
