"""Face embeddings: triplet loss and mining, unit norm, identity splits, gathered mining under pmap,
measures, a short real ORL training and the recognize CLI."""

import json
import shutil

import flax.jax_utils
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.core import checkpoint
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import backgrounds
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import embedding
from mlfun_jax.faces import inference
from mlfun_jax.faces import measures as face_measures
from mlfun_jax.faces import model as face_embedding
from mlfun_jax.faces import task as faces
from mlfun_jax.faces import triplet
from tests import mixed_precision
from tests.conftest import run_module
from tests.faces.conftest import faces_config


def reference_loss(embeddings, labels, margin, squared=True, mining='semi_hard'):
  """Brute-force semi-hard triplet loss (loops), as tf-addons' triplet_semihard_loss defines it;
  batch_hard: every pair takes the anchor's closest negative."""
  e = np.asarray(embeddings, np.float64)
  d = np.sum(np.square(e[:, None] - e[None]), axis=2)
  if not squared:
    d = np.sqrt(d)
  losses = []
  for a in range(len(e)):
    for p in range(len(e)):
      if p == a or labels[p] != labels[a]:
        continue
      negatives = [d[a, n] for n in range(len(e)) if labels[n] != labels[a]]
      farther = [x for x in negatives if x > d[a, p]]
      d_an = min(farther) if farther else max(negatives)
      if mining == 'batch_hard':
        d_an = min(negatives)
      losses.append(max(d[a, p] - d_an + margin, 0.0))
  return float(np.mean(losses))


def test_triplet_loss_on_hand_built_embeddings():
  # Person 0 at x=0 and x=0.1, person 1 at x=1 and x=1.05 (1-D, padded to 2-D): all separated.
  e = jnp.array([[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [1.05, 0.0]])
  labels = jnp.array([0, 0, 1, 1])
  loss, metrics = triplet.triplet_loss(e, labels, margin=0.2, squared=False)
  assert float(loss) == pytest.approx(0.0, abs=1e-6)
  # With margin 1: pair (0,1): d_ap 0.1, semi-hard d_an = d(0, 2) = 1.0 -> 0.1; pair (1,0): d_an =
  # d(1,2) = 0.9 -> 0.2; pair (2,3): 0.05 - 0.9 + 1 = 0.15; pair (3,2): 0.05 - 0.95 + 1 = 0.1.
  loss, metrics = triplet.triplet_loss(e, labels, margin=1.0, squared=False)
  assert float(loss) == pytest.approx((0.1 + 0.2 + 0.15 + 0.1) / 4, abs=1e-5)
  assert float(metrics['active_fraction']) == 1.0
  assert float(metrics['semi_hard_fraction']) == 1.0
  # Random embeddings: equal to the brute-force definition, squared and plain.
  rng = np.random.default_rng(0)
  e = face_embedding.l2_normalise(jnp.asarray(rng.normal(size=(24, 8)), jnp.float32))
  labels = np.repeat(np.arange(6), 4)
  for squared in (True, False):
    for mining in triplet.MINING:
      loss, _ = triplet.triplet_loss(e, jnp.asarray(labels), margin=0.2, squared=squared,
                                     mining=mining)
      assert float(loss) == pytest.approx(reference_loss(e, labels, 0.2, squared, mining),
                                          rel=1e-4)


def test_semi_hard_mining_picks_the_right_negatives():
  # Anchor 0 (person 0) with positive 1 at distance 1.0; negatives 2, 3, 4 at 0.5, 1.5, 3.0.
  distances = jnp.array([[0.0, 1.0, 0.5, 1.5, 3.0]])
  labels = jnp.array([0, 0, 1, 1, 2])
  mined = triplet.mine_semi_hard(distances, labels[:1], labels, jnp.array([0]))
  assert mined['positive'].tolist() == [[False, True, False, False, False]]
  assert int(mined['negative_index'][0, 1]) == 3  # The closest negative farther than 1.0.
  assert bool(mined['semi_hard'][0, 1])
  # Positive at 4.0: no negative is farther, so the farthest negative (4, at 3.0) is taken.
  mined = triplet.mine_semi_hard(distances.at[0, 1].set(4.0), labels[:1], labels, jnp.array([0]))
  assert int(mined['negative_index'][0, 1]) == 4
  assert not bool(mined['semi_hard'][0, 1])
  assert float(mined['negative_distance'][0, 1]) == 3.0


def test_batch_hard_mining_takes_the_closest_negative():
  # Anchor 0 with positives 1 (at 1.0) and 5 (at 0.2); negatives 2, 3, 4 at 0.5, 1.5, 3.0.
  distances = jnp.array([[0.0, 1.0, 0.5, 1.5, 3.0, 0.2]])
  labels = jnp.array([0, 0, 1, 1, 2, 0])
  mined = triplet.mine_batch_hard(distances, labels[:1], labels, jnp.array([0]))
  assert mined['positive'].tolist() == [[False, True, False, False, False, True]]
  assert mined['negative_index'][0, 1] == 2 and mined['negative_index'][0, 5] == 2
  assert float(mined['negative_distance'][0, 1]) == 0.5
  assert not bool(mined['semi_hard'][0, 1]) and bool(mined['semi_hard'][0, 5])


def reference_cosface(embeddings, labels, centres, scale, margin):
  """NumPy CosFace: mean of -log softmax(s * (cos - m * onehot))_y."""
  e = np.asarray(embeddings, np.float64)
  w = np.asarray(centres, np.float64)
  cosines = (e / np.linalg.norm(e, axis=1, keepdims=True)) @ (
      w / np.linalg.norm(w, axis=1, keepdims=True)).T
  logits = scale * (cosines - margin * np.eye(len(w))[labels])
  logits -= logits.max(axis=1, keepdims=True)
  log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
  return -log_p[np.arange(len(labels)), labels].mean()


def test_cosface_loss_on_hand_built_embeddings():
  # Three orthogonal centres (length 2: normalised away); each embedding on its own centre: the
  # target cosine is 1, the others 0, so the loss is log(1 + 2 exp(-s (1 - m))).
  centres = 2.0 * jnp.eye(3)
  e = jnp.array([[1.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 0.5]])
  labels = jnp.array([0, 1, 2])
  loss, metrics = triplet.cosface_loss(e, labels, centres, scale=4.0, margin=0.25)
  assert float(loss) == pytest.approx(np.log(1 + 2 * np.exp(-4.0 * 0.75)), rel=1e-5)
  assert float(metrics['class_accuracy']) == 1.0 and float(metrics['target_cosine']) == 1.0
  # Wrong labels: the target cosine is 0 (logit -s m), another class's is 1 (logit s), one is 0.
  loss, metrics = triplet.cosface_loss(e, jnp.array([1, 2, 0]), centres, scale=4.0, margin=0.25)
  expected = -np.log(np.exp(-1.0) / (np.exp(-1.0) + np.exp(4.0) + 1.0))
  assert float(loss) == pytest.approx(expected, rel=1e-5)
  assert float(metrics['class_accuracy']) == 0.0
  # Random embeddings and centres: the NumPy formula.
  rng = np.random.default_rng(3)
  e, w = rng.normal(size=(12, 8)), rng.normal(size=(5, 8))
  labels = rng.integers(0, 5, size=12)
  loss, _ = triplet.cosface_loss(jnp.asarray(e, jnp.float32), jnp.asarray(labels),
                                 jnp.asarray(w, jnp.float32), scale=30.0, margin=0.35)
  assert float(loss) == pytest.approx(reference_cosface(e, labels, w, 30.0, 0.35), rel=1e-4)


def test_class_labels_and_bad_loss_config(shared_data_dir):
  split = face_data.ArraySplit(np.zeros((5, 1, 1, 1), np.uint8), np.array([7, 3, 7, 12, 3], np.int32))
  assert face_data.class_labels(split).labels.tolist() == [1, 0, 1, 2, 0]
  root = shared_data_dir / 'faces_orl'
  for overrides, message in (({'loss': 'arcface'}, 'config field loss='),
                             ({'triplet__mining': 'hardest'}, 'config field triplet.mining='),
                             ({'loss': 'cosface', 'cosface__scale': 0.0}, 'cosface.scale=0.0'),
                             ({'loss': 'triplet+cosface', 'cosface__margin': -0.1},
                              'cosface.margin=-0.1'),
                             ({'loss': 'cosface', 'cosface__weight': 0.0}, 'cosface.weight=0.0'),
                             ({'threshold_impostors': 'test'}, 'config field threshold_impostors=')):
    with pytest.raises(UserError, match=message):
      faces.build(faces_config(root, **overrides), '/nonexistent')
  model = faces.create_model(faces_config(root, loss='cosface'))
  assert model.num_classes == 16  # The training people.
  assert faces.create_model(faces_config(root, loss='triplet')).num_classes == 0


def test_embeddings_have_unit_norm():
  model = face_embedding.FaceEmbedding(conv_features=(4, 8), dense_features=(16,),
                                       embedding_size=128, dropout_rate=0.1)
  images = jax.random.normal(jax.random.key(0), (5, 28, 24, 1)) * 10.0
  params = model.init(jax.random.key(1), images, train=False)['params']
  for train_mode in (False, True):
    e = model.apply({'params': params}, images, train=train_mode, rngs={'dropout': jax.random.key(2)})
    assert e.shape == (5, 128) and e.dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(np.asarray(e), axis=1), 1.0, rtol=1e-5)


def test_test_time_augmentation_averages_six_views():
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (3, 12, 10, 1)), jnp.uint8)
  views = np.asarray(embedding.test_time_views(images, shift=2))
  assert views.shape == (6, 3, 12, 10, 1)
  np.testing.assert_array_equal(views[0], images)
  np.testing.assert_array_equal(views[1], np.asarray(images)[:, :, ::-1])
  np.testing.assert_array_equal(views[2][:, 2:], np.asarray(images)[:, :-2])  # Moved down...
  np.testing.assert_array_equal(views[2][:, :2], np.repeat(np.asarray(images)[:, :1], 2, axis=1))
  np.testing.assert_array_equal(views[5][:, :, :-2], np.asarray(images)[:, :, 2:])  # ...moved left.
  model = face_embedding.FaceEmbedding(conv_features=(4,), embedding_size=8)
  params = model.init(jax.random.key(1), images.astype(jnp.float32), train=False)['params']
  single = [embedding.embed(model, params, jnp.asarray(v), 100.0, 50.0) for v in views]
  expected = np.mean(np.asarray(single), axis=0)
  expected /= np.linalg.norm(expected, axis=1, keepdims=True)
  averaged = embedding.embed(model, params, images, 100.0, 50.0, test_time_augmentation=True)
  np.testing.assert_allclose(np.asarray(averaged), expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(single[0]), np.asarray(
      embedding.embed(model, params, images, 100.0, 50.0)), rtol=1e-6)


def test_identity_splits_are_disjoint(shared_data_dir):
  root = shared_data_dir / 'faces_orl'
  dataset = face_data.load_faces(str(root), sizes=(18, 4, 8), seed=3, image_shape=(56, 46, 1))
  people = {s: set(dataset.people_of(s)) for s in face_data.SPLITS}
  assert [len(people[s]) for s in face_data.SPLITS] == [18, 4, 8]
  assert not people['train'] & people['validation']
  assert not people['train'] & people['test']
  assert not people['validation'] & people['test']
  assert len(dataset.people) == 30 and dataset.image_shape == (56, 46, 1)
  assert len(dataset.splits['test']) == 80 and dataset.splits['test'].images.dtype == np.uint8
  # Binary PGM read at its own size (92 wide, 112 high).
  assert face_data.load_face(str(root / 's1' / '1.pgm'), (112, 92, 1)).shape == (112, 92, 1)
  # Same seed, same split; another seed, another one.
  assert face_data.split_people(30, (18, 4, 8), 3)[2].tolist() == sorted(
      dataset.splits['test'].labels[::10].tolist())
  assert face_data.split_people(30, (18, 4, 8), 4)[2].tolist() != face_data.split_people(
      30, (18, 4, 8), 3)[2].tolist()
  with pytest.raises(UserError, match='need 31 people'):
    face_data.split_people(30, (19, 4, 8), 0)


def test_triplet_batches_are_p_people_by_k_images():
  labels = np.repeat(np.arange(6), 5).astype(np.int32)
  split = face_data.ArraySplit(np.arange(30, dtype=np.uint8).reshape(30, 1, 1, 1), labels)
  batches = face_data.triplet_batches(split, people_per_batch=4, images_per_person=3, seed=0,
                                      local_device_count=2)
  batch = next(batches)
  assert batch['image'].shape == (2, 6, 1, 1, 1)
  flat = batch['label'].reshape(-1)
  assert len(set(flat.tolist())) == 4 and all((flat == p).sum() == 3 for p in set(flat.tolist()))
  assert len(set(batch['image'].reshape(-1).tolist())) == 12  # No image twice.
  resumed = next(face_data.triplet_batches(split, people_per_batch=4, images_per_person=3,
                                           seed=0, start_step=1, local_device_count=2))
  np.testing.assert_array_equal(next(batches)['image'], resumed['image'])


def _linear_embed(params, x):
  return face_embedding.l2_normalise(x @ params)


def test_gathered_mining_under_pmap_equals_one_device():
  devices = jax.local_devices()
  assert len(devices) == 8
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(32, 10)), jnp.float32)
  labels = jnp.asarray(np.repeat(rng.permutation(8), 4), jnp.int32)
  params = jnp.asarray(rng.normal(size=(10, 6)), jnp.float32)

  def one_device(p):
    return triplet.triplet_loss(_linear_embed(p, x), labels, 0.3)

  (loss, metrics), grads = jax.value_and_grad(one_device, has_aux=True)(params)

  def per_device(p, xs, ls):
    def loss_fn(p):
      return triplet.gathered_triplet_loss(_linear_embed(p, xs), ls, parallel.AXIS, 0.3)
    (device_loss, m), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
    return (jax.lax.pmean(device_loss, parallel.AXIS), m, jax.lax.pmean(g, parallel.AXIS))

  p_loss, p_metrics, p_grads = jax.pmap(per_device, axis_name=parallel.AXIS)(
      jnp.broadcast_to(params, (8, 10, 6)), x.reshape(8, 4, 10), labels.reshape(8, 4))
  assert float(metrics['active_fraction']) > 0  # The loss has work to do.
  np.testing.assert_allclose(np.asarray(p_loss), float(loss), rtol=1e-5)
  for name, value in metrics.items():
    np.testing.assert_allclose(np.asarray(p_metrics[name]), float(value), rtol=1e-5, atol=1e-7)
  for d in range(8):
    np.testing.assert_allclose(np.asarray(p_grads[d]), np.asarray(grads), rtol=1e-4, atol=1e-6)


def test_cosface_under_pmap_equals_one_device():
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(32, 10)), jnp.float32)
  labels = jnp.asarray(np.repeat(rng.permutation(8), 4), jnp.int32)
  params = {'w': jnp.asarray(rng.normal(size=(10, 6)), jnp.float32),
            'centres': jnp.asarray(rng.normal(size=(8, 6)), jnp.float32)}

  def one_device(p):
    return triplet.cosface_loss(_linear_embed(p['w'], x), labels, p['centres'], 10.0, 0.3)

  (loss, metrics), grads = jax.value_and_grad(one_device, has_aux=True)(params)

  def per_device(p, xs, ls):
    def loss_fn(p):
      return triplet.device_cosface_loss(_linear_embed(p['w'], xs), ls, p['centres'],
                                         parallel.AXIS, 10.0, 0.3)
    (device_loss, m), g = jax.value_and_grad(loss_fn, has_aux=True)(p)
    return (jax.lax.pmean(device_loss, parallel.AXIS), m, jax.lax.pmean(g, parallel.AXIS))

  replicated = jax.tree.map(lambda a: jnp.broadcast_to(a, (8, *a.shape)), params)
  p_loss, p_metrics, p_grads = jax.pmap(per_device, axis_name=parallel.AXIS)(
      replicated, x.reshape(8, 4, 10), labels.reshape(8, 4))
  assert float(loss) > 0.1  # The loss has work to do.
  np.testing.assert_allclose(np.asarray(p_loss), float(loss), rtol=1e-5)
  for name, value in metrics.items():
    np.testing.assert_allclose(np.asarray(p_metrics[name]), float(value), rtol=1e-5, atol=1e-7)
  for d in range(8):
    for name in params:
      np.testing.assert_allclose(np.asarray(p_grads[name][d]), np.asarray(grads[name]),
                                 rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('overrides', [{'loss': 'triplet'}, {'loss': 'triplet+cosface',
                                            'triplet__mining': 'batch_hard'}])
def test_train_step_on_8_devices_equals_1_device(shared_data_dir, overrides):
  # Plain SGD: updates proportional to the gradients (Adam would blow up float32 rounding in
  # near-zero gradients into whole steps).
  # No dropout: its masks are drawn per device (augmentation, new backgrounds and erasing per
  # example).
  config = faces_config(shared_data_dir / 'faces_orl', model__conv_features=(4, 8),
                        image_size=(28, 24), optimizer__name='sgd', optimizer__learning_rate=0.5,
                        optimizer__schedule='constant', model__dropout_rate=0.0, **overrides)
  dataset = faces.load_dataset(config)
  model = faces.create_model(config)
  state = faces.create_state(model, config, dataset.image_shape, 10, jax.random.key(0))
  assert config.augment.background > 0
  bank = backgrounds.background_bank(dataset.image_shape[:2], jax.random.key(1), count=16)
  step = faces.make_train_step(model, config, 100.0, 50.0, bank)
  train_split = face_data.class_labels(dataset.splits['train'])
  batch = next(face_data.triplet_batches(train_split, people_per_batch=8,
                                         images_per_person=4, seed=0, local_device_count=8))
  results = []
  for n in (1, 8):
    devices = jax.local_devices()[:n]
    p_step = train.pmap_train_step(step, jax.random.key(5), devices=devices)
    replicated = flax.jax_utils.replicate(state, devices)
    shaped = {k: v.reshape((n, -1) + v.shape[2:]) for k, v in batch.items()}
    for _ in range(2):
      replicated, metrics = p_step(replicated, shaped)
    results.append((parallel.to_host(replicated).params, jax.device_get(metrics)))
  (params_1, metrics_1), (params_8, metrics_8) = results
  np.testing.assert_allclose(metrics_8['loss'][0], metrics_1['loss'][0], rtol=1e-4)
  if overrides['loss'] == 'triplet+cosface':  # Both terms, and the class centres learn alike on 1 and 8 devices.
    assert metrics_1['loss'][0] == pytest.approx(
        metrics_1['triplet_loss'][0] + metrics_1['cosface_loss'][0], rel=1e-5)
    assert params_1['class_centres'].shape == (16, 128)
    assert np.abs(params_1['class_centres'] - state.params['class_centres']).max() > 1e-4
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=2e-4), params_8,
               params_1)


def test_bfloat16_steps_on_8_devices_match_1_device_and_the_loss_falls(shared_data_dir):
  """config.dtype='bfloat16': bfloat16 convolutions and dense layers; parameters (class centres
  too), embeddings, the triplet and CosFace losses and metrics stay float32; 8 devices compute
  what 1 does within bfloat16 rounding."""
  config = faces_config(shared_data_dir / 'faces_orl', model__conv_features=(4, 8),
                        image_size=(28, 24), optimizer__schedule='constant',
                        loss='triplet+cosface', triplet__mining='batch_hard', dtype='bfloat16',
                        model__dropout_rate=0.0, augment__background=0.0)
  dataset = faces.load_dataset(config)
  model = faces.create_model(config)
  state = faces.create_state(model, config, dataset.image_shape, 10, jax.random.key(0))
  step = faces.make_train_step(model, config, 100.0, 50.0)
  batch = next(face_data.triplet_batches(face_data.class_labels(dataset.splits['train']),
                                         people_per_batch=8, images_per_person=4, seed=0,
                                         local_device_count=8))
  batch_of = lambda n, _: {k: v.reshape((n, -1) + v.shape[2:]) for k, v in batch.items()}
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 6, key=5)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 3, key=5)
  # (Not the fractions of triplets: one distance rounded across a margin moves them a whole step.)
  mixed_precision.assert_devices_agree(state.params, states1[2].params, states8[2].params,
                                       metrics1[2], metrics8[2],
                                       names=['loss', 'triplet_loss', 'cosface_loss'])
  mixed_precision.assert_float32((states1[-1], metrics1), 'state')
  losses = [float(m['loss'][0]) for m in metrics1]
  assert 10 < losses[0] < 20 and losses[-1] < losses[0] - 1.5  # 16.5 -> 13.9 when written.
  images = jnp.zeros((2, *dataset.image_shape))
  embeddings = jax.eval_shape(lambda p: model.apply({'params': p}, images, train=False),
                              state.params)
  assert embeddings.dtype == jnp.float32
  assert mixed_precision.matmul_dtypes(model.apply, {'params': state.params}, images,
                                       train=False) == {'bfloat16': 3}


def test_impostor_pairs_lower_a_threshold_set_by_far_apart_validation_people():
  # Two validation people far apart (distances 1.06-1.41); a training face (impostor) near
  # person 0.
  validation = np.array([[1.0, 0.0, 0.0], [0.9, 0.44, 0.0], [0.0, 1.0, 0.0], [0.0, 0.9, 0.44]])
  validation /= np.linalg.norm(validation, axis=1, keepdims=True)
  labels = np.array([0, 0, 1, 1])
  impostors = np.array([[0.8, 0.0, 0.6]])
  distances, same = face_measures.calibration_pairs(validation, labels, impostors)
  assert len(distances) == 6 + 4 and same.sum() == 2 and not same[6:].any()
  np.testing.assert_allclose(distances[6:],
                             face_measures.distance_matrix(validation, impostors).ravel())
  alone = face_measures.pick_threshold(validation, labels, None)
  with_impostors = face_measures.pick_threshold(validation, labels, impostors)
  same_distance = np.linalg.norm(validation[0] - validation[1])  # ~0.45 (same person).
  impostor_distance = np.linalg.norm(validation[0] - impostors[0])  # ~0.63.
  # Alone: the middle of the gap between ~0.45 and ~1.06 (the closest different people); with
  # the impostor: between the same-person distance and the impostor's.
  assert alone > impostor_distance
  assert same_distance < with_impostors < impostor_distance
  assert face_measures.calibration_pairs(validation, labels, None)[0].shape == (6,)


def test_measures_on_known_pairs():
  distances = np.array([0.1, 0.2, 0.3, 0.25, 0.5, 0.9])
  same = np.array([True, True, True, False, False, False])
  assert face_measures.roc_auc(distances, same) == pytest.approx(8 / 9)
  threshold = face_measures.best_threshold(distances, same)
  assert 0.3 < threshold < 0.5  # Accepting the 4 closest: 5 of 6 correct.
  assert face_measures.accuracy_at(distances, same, threshold)['accuracy'] == pytest.approx(5 / 6)
  assert face_measures.tar_at_far(distances, same, 0.01) == pytest.approx(2 / 3)
  # Perfect clusters: every measure is perfect.
  e = np.repeat(np.eye(4), 3, axis=0) + 0.01 * np.random.default_rng(0).normal(size=(12, 4))
  labels = np.repeat(np.arange(4), 3)
  measures = face_measures.evaluate_people(e, labels)
  for name in ('auc', 'accuracy', 'tar_at_far_1pct', 'nearest_neighbour_top1', 'linear_top1'):
    assert measures[name] == 1.0, name


def test_short_training_on_orl_learns_unseen_people(trained_workdir):
  workdir, summary = trained_workdir
  report = json.loads((workdir / 'report.json').read_text())
  test = report['test']
  assert test['people'] == 8 and test['same_pairs'] == 360 and test['different_pairs'] == 2800
  assert not set(report['people']['test']) & set(report['people']['train'])
  assert test['auc'] > 0.9, test
  assert test['nearest_neighbour_top1'] > 0.7, test
  assert summary['eval_auc'] > 0.9
  assert (workdir / 'test_embeddings.png').stat().st_size > 0
  assert (workdir / 'hog.png').stat().st_size > 0
  # The thresholds (validation pairs + validation-vs-training impostor pairs; validation pairs
  # alone) and the test accuracies at them, recomputed from the restored network: no test person
  # takes part in picking them.
  embedder = inference.TrainedFaceEmbedder(str(workdir))
  dataset = faces.load_dataset(embedder.config)
  embedded = {s: embedder.embed(dataset.splits[s].images) for s in ('train', 'validation', 'test')}
  labels = dataset.splits['validation'].labels
  test_pairs = face_measures.pair_distances(embedded['test'], dataset.splits['test'].labels)
  for threshold, prefix in ((face_measures.best_threshold(*face_measures.calibration_pairs(
      embedded['validation'], labels, embedded['train'])), ''), (face_measures.best_threshold(
          *face_measures.pair_distances(embedded['validation'], labels)), 'validation_pairs_')):
    assert test[prefix + 'threshold'] == pytest.approx(threshold, abs=1e-4)
    at_threshold = face_measures.accuracy_at(*test_pairs, threshold)
    for name in ('accuracy', 'false_accept_rate', 'true_accept_rate'):
      assert test[prefix + name] == pytest.approx(at_threshold[name], abs=1e-3), prefix + name
  assert report['validation']['threshold'] == test['threshold']
  # recognize's tolerance: picked on the validation people alone; its naming of the test people.
  tolerance = face_measures.pick_tolerance(embedded['validation'], labels,
                                           embedder.config.tolerance_keep)
  assert test['tolerance'] == pytest.approx(tolerance, abs=1e-4)
  assert test['recognize_top1'] == pytest.approx(face_measures.recognize_identification(
      embedded['test'], dataset.splits['test'].labels, tolerance), abs=1e-3)
  assert test['strangers_unknown'] == pytest.approx(face_measures.strangers_unknown(
      embedded['test'], dataset.splits['test'].labels, tolerance), abs=1e-3)
  assert 0.3 < test['recognize_top1'] <= test['nearest_neighbour_top1']
  # The validation threshold and tolerance travel with the final checkpoint.
  meta, step = checkpoint.latest_meta(str(workdir / 'checkpoints'))
  assert step == 150
  assert meta['validation']['threshold'] == pytest.approx(report['validation']['threshold'],
                                                          abs=1e-3)
  assert embedder.tolerance == pytest.approx(meta['validation']['tolerance'])
  assert meta['validation']['tolerance'] == pytest.approx(tolerance, abs=1e-3)


def test_without_validation_people_the_given_tolerance_measures_the_test_people(shared_data_dir):
  dataset = face_data.load_faces(str(shared_data_dir / 'faces_orl'), sizes=(20, 0, 10), seed=3,
                                 image_shape=(14, 12, 1))
  assert len(dataset.splits['validation']) == 0
  # A stand-in embedder: the normalised pixels.
  embed = lambda params, images: (lambda x: x / np.linalg.norm(x, axis=1, keepdims=True))(
      images.reshape(len(images), -1).astype(np.float64))
  results = face_measures.measure_unseen(embed, None, dataset, 'validation+train', tolerance=0.2)
  test, e = results['test'], embed(None, dataset.splits['test'].images)
  labels = dataset.splits['test'].labels
  assert results['validation'] == {} and test['people'] == 10
  assert test['tolerance'] == test['threshold'] == 0.2
  assert test['recognize_top1'] == face_measures.recognize_identification(e, labels, 0.2)
  with pytest.raises(UserError, match='tolerance must be given'):
    face_measures.measure_unseen(embed, None, dataset)
  config = faces_config(shared_data_dir / 'faces_orl', tolerance=None, people=(20, 0, 10))
  with pytest.raises(UserError, match=r'tolerance=None .* needs >= 2 of them'):
    faces.build(config, '/nonexistent')


def test_face_report_reads_and_remeasures(trained_workdir):
  workdir, _ = trained_workdir
  report = json.loads((workdir / 'report.json').read_text())['test']
  read = run_module('mlfun_jax.experiments.face_report', str(workdir))
  assert read.returncode == 0, read.stderr
  line = lambda name: f"{name:34s} {report[name]:.4f}"
  assert line('accuracy') + ' +- 0.0000' in read.stdout
  again = run_module('mlfun_jax.experiments.face_report', '--remeasure', str(workdir))
  assert again.returncode == 0, again.stderr
  assert line('nearest_neighbour_top1') in again.stdout and line('accuracy') in again.stdout
  strict = run_module('mlfun_jax.experiments.face_report',
                      '--remeasure', '--threshold_impostors=validation',
                      str(workdir))
  assert strict.returncode == 0, strict.stderr
  assert f"{'threshold':34s} {report['validation_pairs_threshold']:.4f}" in strict.stdout
  assert f"{'accuracy':34s} {report['validation_pairs_accuracy']:.4f}" in strict.stdout
  tta = run_module('mlfun_jax.experiments.face_report', '--remeasure', '--test_time_augmentation',
                   str(workdir))
  assert tta.returncode == 0, tta.stderr
  auc = float(tta.stdout.split('auc')[1].split()[0])
  assert 0.9 < auc <= 1.0 and f"{auc:.4f}" != f"{report['auc']:.4f}"
  bad = run_module('mlfun_jax.experiments.face_report', '--test_time_augmentation', str(workdir))
  assert bad.returncode != 0 and 'need --remeasure' in bad.stderr


def test_recognize_prints_names_and_unknown_person(trained_workdir, shared_data_dir, tmp_path):
  workdir, _ = trained_workdir
  report = json.loads((workdir / 'report.json').read_text())
  root = shared_data_dir / 'faces_orl'
  test_people = report['people']['test']
  known = tmp_path / 'known'
  known.mkdir()
  for person in test_people[:3]:  # <person>/<image> for two people, <person>.<ext> for one.
    if person == test_people[2]:
      shutil.copy(root / person / '1.pgm', known / f'{person}.pgm')
    else:
      (known / person).mkdir()
      shutil.copy(root / person / '1.pgm', known / person / '1.pgm')
  queries = tmp_path / 'queries'
  queries.mkdir()
  expected = {}
  for person in test_people[:4]:  # The fourth person is not known.
    for i in (2, 3):
      shutil.copy(root / person / f'{i}.pgm', queries / f'{person}_{i}.pgm')
      expected[str(queries / f'{person}_{i}.pgm')] = person
  result = run_module('mlfun_jax.experiments.recognize',  # ORL faces: already framed.
                      f'--workdir={workdir}', '--no_detect', str(known), str(queries),
                      '--show_distance')
  assert result.returncode == 0, result.stderr
  lines = result.stdout.strip().splitlines()
  assert len(lines) == 8
  names = {}
  for line in lines:
    path, name, distance = line.split(',')
    assert path in expected and float(distance) >= 0.0
    names[path] = name
  assert set(names.values()) <= set(test_people[:3]) | {'unknown_person'}
  known_right = sum(names[p] == expected[p] for p in names if expected[p] in test_people[:3])
  assert known_right >= 5, lines  # Of the 6 faces of known people.
  # unknown_person exactly beyond the run's tolerance (the stranger's faces and any other).
  tolerance = inference.TrainedFaceEmbedder(str(workdir)).tolerance
  for line in lines:
    path, name, distance = line.split(',')
    if abs(float(distance) - tolerance) > 1e-4:  # Printed to 4 decimals.
      assert (name == 'unknown_person') == (float(distance) > tolerance), (line, tolerance)
  # Tolerance 0: nobody is close enough; one image: one line without a distance.
  one = str(queries / f'{test_people[0]}_2.pgm')
  result = run_module('mlfun_jax.experiments.recognize',
                      f'--workdir={workdir}', '--no_detect', '--tolerance=0', str(known),
                      one)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip() == f'{one},unknown_person'
  result = run_module('mlfun_jax.experiments.recognize',
                      f'--workdir={workdir}', str(tmp_path / 'nope'), one)
  assert result.returncode == 2 and 'does not exist' in result.stderr
