"""Autoencoders: models, the VAE's KL term, denoising, pmap, training on real digits, pictures."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
from sklearn import metrics as sk_metrics

from mlfun_jax import families
from mlfun_jax.autoencoder import model as models
from mlfun_jax.autoencoder import task as autoencoder
from mlfun_jax.core import metrics_writer
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import augment
from tests import mixed_precision
from tests.autoencoder.conftest import ae_config
from tests.conftest import run_module
from tests.conftest import train_in_fresh_process


# ----------------------------------------------------------------------------------- models


@pytest.mark.parametrize('architecture,widths,shape', [
    ('dense', (64, 32), (28, 28, 1)), ('conv', (8, 16), (28, 28, 1)), ('conv', (8, 16), (32, 32, 3))])
@pytest.mark.parametrize('bottleneck', [2, 5])
def test_bottleneck_has_the_configured_width_and_round_trip_keeps_shapes(architecture, widths,
                                                                         shape, bottleneck):
  model = models.Autoencoder(shape, architecture, widths, bottleneck)
  images = jax.random.uniform(jax.random.key(0), (3, *shape))
  params = model.init(jax.random.key(1), images)['params']
  assert params['encoder']['code']['kernel'].shape[-1] == bottleneck
  codes = model.apply({'params': params}, images, method=model.encode)
  assert codes.shape == (3, bottleneck) and codes.dtype == jnp.float32
  logits = model.apply({'params': params}, codes, method=model.decode)
  assert logits.shape == (3, *shape)
  np.testing.assert_allclose(model.apply({'params': params}, images), logits, rtol=1e-6)


@pytest.mark.parametrize('architecture,widths', [('dense', (400,)), ('conv', (8, 16))])
def test_vae_encode_decode_and_reparameterisation(architecture, widths):
  model = models.VariationalAutoencoder((28, 28, 1), architecture, widths, latent=20)
  images = jax.random.uniform(jax.random.key(0), (4, 28, 28, 1))
  noise = jax.random.normal(jax.random.key(2), (4, 20))
  params = model.init(jax.random.key(1), images, noise)['params']
  mean, logvar = model.apply({'params': params}, images, method=model.encode)
  assert mean.shape == logvar.shape == (4, 20)
  logits, mean2, logvar2 = model.apply({'params': params}, images, noise)
  np.testing.assert_allclose(mean2, mean, rtol=1e-6)
  expected = model.apply({'params': params}, mean + jnp.exp(0.5 * logvar) * noise,
                         method=model.decode)
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
  assert models.code_size(model) == 20 and models.is_vae(model)


def test_conv_body_rejects_sides_it_cannot_mirror():
  with pytest.raises(ValueError, match='divide by 4'):
    models.check_architecture('conv', (8, 16), (30, 30, 1))
  with pytest.raises(UserError, match='model.widths'):
    autoencoder.create_model(ae_config(model__architecture='conv', model__widths=(8, 16)),
                             (30, 30, 1))


def test_kl_term_matches_a_monte_carlo_estimate():
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(3, 6)).astype(np.float32)
  logvar = rng.normal(scale=0.7, size=(3, 6)).astype(np.float32)
  analytic = np.asarray(models.gaussian_kl(jnp.asarray(mean), jnp.asarray(logvar)))
  samples = 400_000
  z = mean + np.exp(0.5 * logvar) * rng.standard_normal((samples, 3, 6)).astype(np.float32)
  log_q = -0.5 * (np.square(z - mean) / np.exp(logvar) + logvar + math.log(2 * math.pi))
  log_p = -0.5 * (np.square(z) + math.log(2 * math.pi))
  monte_carlo = (log_q - log_p).sum(axis=-1).mean(axis=0)
  np.testing.assert_allclose(analytic, monte_carlo, rtol=0.02, atol=0.02)
  assert np.all(analytic > 0)
  np.testing.assert_allclose(models.gaussian_kl(jnp.zeros((1, 4)), jnp.zeros((1, 4))), [0.0])


def test_likelihoods_are_the_textbook_formulas():
  logits = jnp.array([[0.3, -1.2, 2.0]])
  targets = jnp.array([[1.0, 0.0, 1.0]])
  p = jax.nn.sigmoid(logits)
  expected = -(targets * jnp.log(p) + (1 - targets) * jnp.log(1 - p)).sum()
  np.testing.assert_allclose(models.bernoulli_nll(logits, targets), [expected], rtol=1e-5)
  scale = 0.1
  expected = (0.5 * ((targets - p) / scale) ** 2 + math.log(scale)
              + 0.5 * math.log(2 * math.pi)).sum()
  np.testing.assert_allclose(models.gaussian_nll(logits, targets, scale), [expected], rtol=1e-5)


# ------------------------------------------------------------------------------- denoising


@pytest.mark.parametrize('noise', ['masking', 'salt_and_pepper', 'gaussian'])
def test_corruption_is_seeded_bounded_and_about_as_strong_as_asked(noise):
  images = jnp.full((4, 28, 28, 1), 0.5)
  keys = jax.random.split(jax.random.key(0), 4)
  corrupted = augment.corrupt(keys, images, noise, 0.3)
  np.testing.assert_array_equal(corrupted, augment.corrupt(keys, images, noise, 0.3))
  assert float(corrupted.min()) >= 0.0 and float(corrupted.max()) <= 1.0
  changed = float(jnp.mean(corrupted != images))
  if noise == 'masking':
    assert abs(changed - 0.3) < 0.03 and set(np.unique(corrupted)) == {0.0, 0.5}
  elif noise == 'salt_and_pepper':
    assert abs(changed - 0.3) < 0.03 and set(np.unique(corrupted)) == {0.0, 0.5, 1.0}
  else:
    assert abs(float(jnp.std(corrupted)) - 0.3) < 0.05
  assert augment.corrupt(keys, images, 'none', 0.3) is images


# ------------------------------------------------------------------------------------ pmap


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_vae_step_on_8_devices_equals_1_device(digits, dtype):
  """Binarization, corruption and the VAE's noise are keyed by example: 8 devices = 1 device
  (bfloat16: within its rounding; parameters and metrics stay float32 and the loss falls)."""
  config = ae_config('vae_mnist.py', model__widths=(64,), model__latent=4, noise='masking',
                     noise_level=0.2, dtype=dtype)
  model = autoencoder.create_model(config, (28, 28, 1))
  state = autoencoder.create_state(model, config, 10, jax.random.key(0))
  step = autoencoder.make_train_step(model, config)
  images = digits.train.images[:64]
  batch_of = lambda n, _: {'image': images.reshape(n, 64 // n, 28, 28, 1),
                           'label': digits.train.labels[:64].reshape(n, 64 // n)}
  bfloat16 = dtype == 'bfloat16'
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 6 if bfloat16 else 3,
                                                    key=3)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 3, key=3)
  state1, metrics1_3, state8, metrics8_3 = states1[2], metrics1[2], states8[2], metrics8[2]
  if bfloat16:
    mixed_precision.assert_devices_agree(state.params, state1.params, state8.params, metrics1_3,
                                         metrics8_3)
    mixed_precision.assert_float32((states1[-1].params, states1[-1].opt_state, metrics1), 'state')
    losses = [float(m['loss'][0]) for m in metrics1]  # Negative ELBO, nats per image.
    assert 550 < losses[0] < 650 and losses[-1] < losses[0] - 30  # 600 -> 549 when written.
  else:
    for a, b in zip(jax.tree.leaves(state1.params), jax.tree.leaves(state8.params)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(metrics1_3['loss'][0], metrics8_3['loss'][0], rtol=1e-5)
  assert metrics8_3['kl'][0] > 0


def test_bfloat16_conv_autoencoder_computes_in_bfloat16_with_float32_outputs():
  """Shapes only, nothing compiled: every convolution and matmul in bfloat16; parameters, codes
  and logits float32."""
  config = ae_config('conv_autoencoder_mnist.py', model__widths=(8, 16), dtype='bfloat16')
  model = autoencoder.create_model(config, (28, 28, 1))
  images = jnp.zeros((2, 28, 28, 1))
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), images))
  mixed_precision.assert_float32(variables, 'variables')
  mixed_precision.assert_float32(jax.eval_shape(lambda v: (
      model.apply(v, images), model.apply(v, images, method=model.encode)), variables), 'outputs')
  assert mixed_precision.matmul_dtypes(model.apply, variables, images) == {'bfloat16': 6}


# --------------------------------------------------------------------------- on real digits


def test_autoencoder_loss_falls_on_real_digits(trained_2d):
  workdir, summary = trained_2d
  records = metrics_writer.read_metrics(str(workdir))
  train_losses = [r['train_loss'] for r in records if 'train_loss' in r]
  # Mean over steps 1-50 (from ln 2 * 784 = 543 nats at the start), then steps 351-400.
  assert train_losses[0] > 200 and train_losses[-1] < 0.75 * train_losses[0]
  evals = [r for r in records if 'eval_loss' in r]
  assert [r['step'] for r in evals] == [200, 400]
  assert evals[-1]['eval_loss'] < evals[0]['eval_loss'] < 250
  assert summary['eval_count'] == 1000
  report = json.loads((workdir / 'report.json').read_text())
  assert report['code_size'] == 2
  assert report['knn5_accuracy'] > 0.35  # Chance is 0.1: the 2 numbers separate digits.


def _assert_real_picture(path, min_size=(40, 40)):
  with Image.open(path) as image:
    image.verify()
  with Image.open(path) as image:
    pixels = np.asarray(image.convert('L'), np.float32)
  assert pixels.shape[0] >= min_size[1] and pixels.shape[1] >= min_size[0], path
  assert pixels.std() > 10, f'{path} is blank'


def test_pictures_during_and_after_training_are_real_images(trained_2d):
  workdir, _ = trained_2d
  samples = workdir / 'samples'
  names = sorted(p.name for p in samples.glob('*.png'))
  assert names == ['codes.png', 'lattice.png', 'reconstructions.png',
                   'reconstructions_step_0000200.png']
  for name in names:
    _assert_real_picture(samples / name)
  with Image.open(samples / 'lattice.png') as lattice:
    assert lattice.size == (20 * 28, 20 * 28)
  # The lattice's corners decode to different digits: the 2-D code means something.
  grid = np.asarray(Image.open(samples / 'lattice.png').convert('L'), np.float32)
  corners = [grid[:28, :28], grid[:28, -28:], grid[-28:, :28], grid[-28:, -28:]]
  assert min(np.abs(a - b).mean() for i, a in enumerate(corners) for b in corners[i + 1:]) > 5


def test_visualize_redraws_pictures_from_the_checkpoint(trained_2d):
  workdir, _ = trained_2d
  before = json.loads((workdir / 'report.json').read_text())
  for path in (workdir / 'samples').glob('*.png'):
    path.unlink()
  process = run_module('mlfun_jax.experiments.visualize', f'--workdir={workdir}')
  assert process.returncode == 0, process.stderr[-3000:]
  printed = json.loads(process.stdout.splitlines()[-1])
  assert printed['step'] == 400
  assert printed['knn5_accuracy'] == pytest.approx(before['knn5_accuracy'], abs=0.005)
  for name in ('codes.png', 'lattice.png', 'reconstructions.png'):
    _assert_real_picture(workdir / 'samples' / name)


def test_visualize_names_a_workdir_without_an_autoencoder(tmp_path):
  process = run_module('mlfun_jax.experiments.visualize', f'--workdir={tmp_path}')
  assert process.returncode == 2
  assert process.stderr.strip().splitlines()[-1].startswith('error: no checkpoints in')


def test_vae_with_2d_latent_trains_and_draws_prior_samples(tmp_path):
  config = ae_config('vae_mnist.py', num_steps=200, model__latent=2, model__widths=(128,))
  summary = train_in_fresh_process(config, tmp_path)
  # Negative ELBO (nats per image) on the binarized held-out digits, from ~543 at the start.
  assert summary['eval_loss'] < 220
  assert summary['eval_loss'] == pytest.approx(summary['eval_reconstruction'] + summary['eval_kl'],
                                               rel=1e-4)
  assert summary['eval_kl'] > 1.0  # The posterior carries information.
  for name in ('prior_samples.png', 'codes.png', 'lattice.png', 'reconstructions.png',
               'prior_samples_step_0000100.png'):
    _assert_real_picture(tmp_path / 'samples' / name)


def test_anomaly_auc_for_a_class_left_out_of_training(tmp_path, digits):
  # The histogram AUC agrees with the exact one for any parameters: a short run is enough.
  config = ae_config(num_steps=100, exclude_class=1, noise='masking', noise_level=0.1,
                     model__bottleneck=8)
  summary = train_in_fresh_process(config, tmp_path)
  report = json.loads((tmp_path / 'report.json').read_text())
  assert report['anomaly_class'] == '1'
  # The histogram AUC of the eval (log-MSE bins) matches the exact AUC of the report.
  assert summary['eval_anomaly_auc'] == pytest.approx(report['anomaly_auc'], abs=0.01)
  assert 0.0 <= report['anomaly_auc'] <= 1.0
  # The training split really lacks the class; the test split keeps it.
  dataset = autoencoder.prepare_dataset(config)
  assert 1 not in set(dataset.train.labels) and (dataset.test.labels == 1).sum() > 50
  assert len(dataset.train) == (digits.train.labels != 1).sum()


def test_test_split_binarized_once_with_a_fixed_seed(digits):
  once = autoencoder.binarize_once(digits.test.images[:50])
  np.testing.assert_array_equal(once, autoencoder.binarize_once(digits.test.images[:50]))
  assert set(np.unique(once)) == {0, 255}
  # Pixel means follow the grey levels.
  grey = digits.test.images[:50].astype(np.float64) / 255
  assert abs(once.mean() / 255 - grey.mean()) < 0.01


@pytest.mark.parametrize('field,value,message', [
    ('model__name', 'gan', 'model.name'), ('likelihood', 'poisson', 'likelihood'),
    ('noise', 'blur', 'noise'), ('exclude_class', 10, 'exclude_class=10'),
    ('model__bottleneck', 0, 'model.bottleneck=0')])
def test_bad_autoencoder_fields_are_named(tmp_path, field, value, message):
  with pytest.raises(UserError, match=message):
    families.train_and_evaluate(ae_config(**{field: value}), str(tmp_path))


def test_roc_auc_from_histograms_matches_sklearn_on_reconstruction_errors():
  rng = np.random.default_rng(1)
  errors = np.concatenate([rng.lognormal(-4, 0.5, 300), rng.lognormal(-3.3, 0.5, 100)])
  unseen = np.r_[np.zeros(300), np.ones(100)]
  positives = autoencoder.anomaly_score_histogram(jnp.asarray(errors), jnp.asarray(unseen))
  negatives = autoencoder.anomaly_score_histogram(jnp.asarray(errors), jnp.asarray(1 - unseen))
  from mlfun_jax.core import roc  # pylint: disable=g-import-not-at-top
  assert roc.auc_from_histograms(positives, negatives) == pytest.approx(
      sk_metrics.roc_auc_score(unseen, errors), abs=0.005)


def test_depth_to_space_puts_each_pixels_channels_in_a_2x2_block():
  x = jnp.arange(2 * 3 * 4 * 8, dtype=jnp.float32).reshape(2, 3, 4, 8)  # 4 * 2 features.
  y = models.depth_to_space(x, 2)
  assert y.shape == (2, 6, 8, 2)
  for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
    np.testing.assert_array_equal(y[:, i::2, j::2, :], x[..., (2 * i + j) * 2:(2 * i + j + 1) * 2])


def test_vae_stopped_and_resumed_equals_a_straight_run(tmp_path):
  """Dynamic binarization, masking noise and the VAE's samples all resume exactly."""
  config = ae_config('vae_mnist.py', num_steps=40, eval_every=0, checkpoint_every=20,
                     log_every=10, model__widths=(64,), model__latent=4, noise='masking',
                     noise_level=0.2)
  straight, _ = families.train_and_evaluate(config, str(tmp_path / 'straight'))
  families.train_and_evaluate(config, str(tmp_path / 'stopped'), stop_after_step=25)
  resumed, _ = families.train_and_evaluate(config, str(tmp_path / 'stopped'))
  for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params)):
    np.testing.assert_array_equal(a, b)
  for a, b in zip(jax.tree.leaves(straight.opt_state), jax.tree.leaves(resumed.opt_state)):
    np.testing.assert_array_equal(a, b)
