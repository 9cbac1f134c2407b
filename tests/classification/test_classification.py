"""The classification task's pieces: models by name, ROC AUC from histograms, BatchNorm state."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from mlfun_jax.core import roc
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import resnet
from mlfun_jax.classification import inference
from mlfun_jax.classification import model as classifier_model
from mlfun_jax.classification import task as classification
from mlfun_jax.data import embedded
from tests import mixed_precision
from tests.conftest import refused
from tests.conftest import small_cnn_config


def test_resnet_shapes_parameters_and_batch_stats():
  model = resnet.ResNet(num_outputs=10, bn_axis_name=None)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)
  logits = model.apply(variables, jnp.zeros((3, 32, 32, 3)), train=False)
  assert logits.shape == (3, 10) and logits.dtype == jnp.float32
  # 9 convs (no bias) + 9 BatchNorms (scale, bias) + dense 128x10.
  kernels = [(3, 16), (16, 32), (32, 32), (32, 32), (32, 64), (64, 128), (128, 128), (128, 128)]
  convs = sum(9 * a * b for a, b in kernels)
  norms = 2 * sum(b for _, b in kernels)
  count = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(variables['params']))
  assert len(kernels) == 8  # stem, stage 1 (+2 residual), stage 2, stage 3 (+2 residual)
  assert count == convs + norms + 128 * 10 + 10
  assert len(jax.tree.leaves(variables['batch_stats'])) == 2 * 8


def test_resnet_train_mode_updates_running_averages_eval_mode_uses_them():
  model = resnet.ResNet(num_outputs=10, stem_features=4, stage_features=(8,),
                        residual_stages=(True,), bn_axis_name=None)
  x = jax.random.normal(jax.random.key(1), (8, 16, 16, 3)) * 3 + 1
  variables = model.init(jax.random.key(0), x, train=False)
  _, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  stem_mean = updates['batch_stats']['ConvBN_0']['BatchNorm_0']['mean']
  conv_out = jax.lax.conv_general_dilated(
      x, variables['params']['ConvBN_0']['Conv_0']['kernel'], (1, 1), 'SAME',
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(stem_mean, 0.1 * conv_out.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
  # Eval mode is deterministic and reads the running averages, not the batch.
  a = model.apply({**variables, **updates}, x, train=False)
  b = model.apply({**variables, **updates}, x[:1], train=False)
  np.testing.assert_allclose(a[:1], b, rtol=1e-5, atol=1e-6)


def test_create_model_by_name_and_unknown_name():
  config = small_cnn_config()
  assert type(classifier_model.create_model(config, 10)).__name__ == 'CNN'
  config.model.name = 'transformer'
  with pytest.raises(UserError, match='model.name'):
    classifier_model.create_model(config, 10)


def test_series_cifar_network_layout_from_nested_conv_features():
  config = small_cnn_config(model__conv_features=((32,), (64, 64)), model__dense_features=(512,))
  model = classifier_model.create_model(config, 10)
  params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)['params']
  assert [params[f'Conv_{i}']['kernel'].shape for i in range(3)] == [
      (3, 3, 3, 32), (3, 3, 32, 64), (3, 3, 64, 64)]
  assert params['Dense_0']['kernel'].shape == (8 * 8 * 64, 512)


def test_bfloat16_cnn_trains_with_float32_parameters_and_8_devices_match_1():
  """config.dtype='bfloat16': bfloat16 convolutions and matmuls, float32 parameters, optimizer
  state, logits and metrics; the loss falls, and 8 devices compute what 1 does (within bfloat16
  rounding)."""
  config = small_cnn_config(dtype='bfloat16', optimizer__schedule='constant')
  digits = embedded.load_embedded_mnist().train
  model = classifier_model.create_model(config, 10)
  state = classifier_model.create_state(model, config, (28, 28, 1), 100, jax.random.key(0))
  mixed_precision.assert_float32(state.params, 'params')
  images = digits.images[:64]
  assert mixed_precision.matmul_dtypes(model.apply, {'params': state.params}, images,
                                       train=False) == {'bfloat16': 4}
  logits = jax.eval_shape(lambda v: model.apply(v, images, train=False), {'params': state.params})
  assert logits.dtype == jnp.float32
  step = classification.make_train_step(model, config, [0.13], [0.31])
  batch_of = lambda n, _: {'image': images.reshape(n, -1, 28, 28, 1),
                           'label': digits.labels[:64].reshape(n, -1)}
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 6)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 3)
  mixed_precision.assert_devices_agree(state.params, states1[2].params, states8[2].params,
                                       metrics1[2], metrics8[2])
  mixed_precision.assert_float32((states1[-1].params, states1[-1].opt_state, metrics1), 'state')
  losses = [float(m['loss'][0]) for m in metrics1]
  assert 2.3 < losses[0] < 2.6 and losses[-1] < 0.7 * losses[0]  # 2.47 -> 1.43 when written.
  # The ResNet (shapes only, nothing compiled): bfloat16 convolutions, float32 parameters,
  # BatchNorm statistics and logits.
  resnet_model = classifier_model.create_model(small_cnn_config(dtype='bfloat16', model=dict(
      name='resnet', stem_features=4, stage_features=(8,), residual_stages=(True,),
      output_scale=0.125, bn_momentum=0.9)), 10).clone(bn_axis_name=None)  # Outside pmap.
  x = jnp.ones((2, 8, 8, 1))
  variables = jax.eval_shape(lambda: resnet_model.init(jax.random.key(0), x, train=False))
  mixed_precision.assert_float32(variables, 'resnet variables')
  mixed_precision.assert_float32(jax.eval_shape(lambda v: resnet_model.apply(
      v, x, train=True, mutable=['batch_stats']), variables), 'resnet train outputs')
  assert mixed_precision.matmul_dtypes(resnet_model.apply, variables, x, train=False) == {
      'bfloat16': 5}


def test_auc_from_logit_histograms_matches_sklearn():
  rng = np.random.default_rng(0)
  labels = rng.random(5000) < 0.1
  logits = rng.normal(size=5000) * 2 + labels * 2.5
  mask = np.ones(5000, np.float32)
  positives = classification.logit_histogram(jnp.asarray(logits), jnp.asarray(labels * mask))
  negatives = classification.logit_histogram(jnp.asarray(logits), jnp.asarray(~labels * mask))
  assert float(positives.sum()) == labels.sum() and float(negatives.sum()) == (~labels).sum()
  auc = roc.auc_from_histograms(np.asarray(positives), np.asarray(negatives))
  assert 0.8 < auc < 0.99
  assert auc == pytest.approx(sk_metrics.roc_auc_score(labels, logits), abs=1e-3)
  # Perfect separation and perfect inversion.
  assert roc.auc_from_histograms(np.array([0, 0, 3]), np.array([2, 0, 0])) == 1.0
  assert roc.auc_from_histograms(np.array([3, 0, 0]), np.array([0, 0, 2])) == 0.0
  assert np.isnan(roc.auc_from_histograms(np.zeros(3), np.array([1, 1, 0])))


def test_label_smoothing_changes_the_loss_only_for_softmax():
  logits = jnp.array([[4.0, 0.0, -1.0]])
  plain = classification._losses(logits, jnp.array([0]), 'softmax')  # pylint: disable=protected-access
  smooth = classification._losses(logits, jnp.array([0]), 'softmax', 0.1)  # pylint: disable=protected-access
  assert float(smooth[0]) > float(plain[0])
  expected = -(0.9 + 0.1 / 3) * jax.nn.log_softmax(logits)[0, 0] - (0.1 / 3) * (
      jax.nn.log_softmax(logits)[0, 1] + jax.nn.log_softmax(logits)[0, 2])
  assert float(smooth[0]) == pytest.approx(float(expected), rel=1e-6)


def test_sgd_weight_decay_applies_to_kernels_only():
  from mlfun_jax.core import optim  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(dict(
      name='momentum', learning_rate=0.1, schedule='constant', warmup_steps=0, momentum=0.0,
      weight_decay=0.5, grad_clip_norm=0.0))
  params = {'kernel': jnp.ones((2, 2)), 'bias': jnp.ones(2)}
  tx = optim.create_optimizer(config, 10)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates['kernel'], -0.1 * 0.5 * np.ones((2, 2)), rtol=1e-6)
  np.testing.assert_array_equal(updates['bias'], np.zeros(2))


def test_test_time_flip_averages_an_image_and_its_mirror():
  config = small_cnn_config(test_time_flip=True)
  model = classifier_model.create_model(config, 10)
  state = classifier_model.create_state(model, config, (8, 8, 3), 1, jax.random.key(0))
  images = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
  mean, std = [0.5] * 3, [0.25] * 3
  plain = classifier_model.inference_logits(model, state, images, mean, std)
  mirrored = classifier_model.inference_logits(model, state, images[:, :, ::-1], mean, std)
  both = classifier_model.inference_logits(model, state, images, mean, std, test_time_flip=True)
  np.testing.assert_allclose(both, 0.5 * (plain + mirrored), rtol=1e-6)
  assert not np.allclose(plain, mirrored)

  labels = np.asarray(np.argmax(both, -1), np.int32)  # Right for the averaged view by construction.
  batch = {'image': images, 'label': labels, 'mask': np.ones(6, np.float32)}
  sums = classification.make_eval_step(model, config, mean, std)(state, batch)
  metrics = classification.summarize_eval({k: float(v) for k, v in sums.items()})
  assert metrics['accuracy'] == 1.0
  assert metrics['single_view_accuracy'] == float((np.argmax(plain, -1) == labels).mean())


def test_classifier_takes_uint8_batches_of_its_input_shape_only(digit_classifier):
  classifier = inference.Classifier(str(digit_classifier[0]))
  digits = embedded.load_embedded_mnist().test
  images, labels = digits.images[:32], digits.labels[:32]
  answers = classifier.predict(images, k=1)
  assert np.mean([int(a[0][0]) == y for a, y in zip(answers, labels)]) > 0.8
  # Floats in [0, 1] used to give a confident wrong class; now one clear line.
  for call in (classifier.predict, classifier.logits):
    refused(lambda: call(images.astype(np.float32) / 255.0),
             r'images: expected uint8 images \[B, 28, 28, 1\].*got float32')
    refused(lambda: call(images[0]), r'\[B, 28, 28, 1\].*got uint8 of shape \(28, 28, 1\)')
    refused(lambda: call(images[:, :14]), r'\[B, 28, 28, 1\].*of shape \(32, 14, 28, 1\)')
    refused(lambda: call(np.repeat(images, 3, axis=-1)), r'\[B, 28, 28, 1\]')
  x = images.astype(np.float32) / 255.0
  np.testing.assert_allclose(classifier.attack_logits(classifier.state, x),
                             classifier.logits(images), rtol=1e-5, atol=1e-5)
  refused(lambda: classifier.attack_logits(classifier.state, images), 'images01: expected')
  refused(lambda: classifier.attack_logits(classifier.state, 255.0 * x), r'in \[0.0, 1.0\]')
  features, logits = classifier.features_and_logits(255.0 * x)
  assert features.ndim == 2 and features.shape[0] == 32
  np.testing.assert_allclose(logits, classifier.logits(images), rtol=1e-5, atol=1e-5)
  refused(lambda: classifier.features_and_logits(images), 'images: expected floating-point')
  refused(lambda: classifier.features_and_logits(256.0 * x + 1.0), r'in \[0.0, 255.0\]')


def test_model_logits_check_their_input_convention():
  config = small_cnn_config()
  model = classifier_model.create_model(config, 10)
  state = classifier_model.create_state(model, config, (8, 8, 3), 1, jax.random.key(0))
  images = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
  stats = ([0.5] * 3, [0.25] * 3)
  refused(lambda: classifier_model.inference_logits(model, state, images / 255.0, *stats),
           'images: expected uint8')
  refused(lambda: classifier_model.unit_range_logits(model, state, images, *stats),
           'images01: expected floating-point')
  refused(lambda: classifier_model.features_and_logits(model, state, images, *stats),
           'images: expected floating-point')
