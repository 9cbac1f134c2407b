"""DCGAN: shapes, what one step changes, pmap, quality sums, sampling, a short run with pictures."""

import json

import flax.jax_utils
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from mlfun_jax.core import parallel
from mlfun_jax.gan import sample_quality
from mlfun_jax import families
from mlfun_jax.core import train
from mlfun_jax.core import warm_start
from mlfun_jax.data import embedded
from mlfun_jax.core.errors import UserError
from mlfun_jax.gan import inference as gan_inference
from mlfun_jax.gan import model as models
from mlfun_jax.gan import pictures as gan_pictures
from mlfun_jax.gan import task as gan
from tests import mixed_precision
from tests.conftest import refused
from tests.conftest import run_module

from tests.gan.conftest import gan_config


@pytest.fixture(scope='module')
def digits():
  return embedded.load_embedded_mnist()


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize('upsampling', ['transpose', 'subpixel'])
def test_shapes_of_both_networks(shape, upsampling):
  generator = models.Generator(shape, features=8, upsampling=upsampling)
  noise = jax.random.normal(jax.random.key(0), (5, 10))
  variables = generator.init(jax.random.key(1), noise, train=False)
  images = generator.apply(variables, noise, train=False)
  assert images.shape == (5, *shape) and images.dtype == jnp.float32
  assert float(jnp.abs(images).max()) <= 1.0  # tanh
  first = variables['params']['Dense_0']['kernel']
  assert first.shape == (10, (shape[0] // 2**models.num_upsamplings(shape[0]))**2 * 8 * 2**(
      models.num_upsamplings(shape[0]) - 1))
  discriminator = models.Discriminator(features=8)
  d_params = discriminator.init(jax.random.key(2), images)
  logits, code_logits = discriminator.apply(d_params, images)
  assert logits.shape == (5,) and code_logits.shape == (5, 0)  # No Q head.
  assert models.num_upsamplings(28) == 2 and models.num_upsamplings(32) == 3


def test_optional_dense_layers_and_discriminator_batchnorm():
  generator = models.Generator((28, 28, 1), features=8, dense_features=32)
  noise = jax.random.normal(jax.random.key(0), (6, 10))
  variables = generator.init(jax.random.key(1), noise, train=False)
  assert variables['params']['hidden']['kernel'].shape == (10, 32)
  assert variables['params']['Dense_0']['kernel'].shape == (32, 7 * 7 * 16)
  images = generator.apply(variables, noise, train=False)
  discriminator = models.Discriminator(features=8, dense_features=24, norm='batch')
  d_vars = discriminator.init(jax.random.key(2), images)
  assert d_vars['params']['hidden']['kernel'].shape == (7 * 7 * 16, 24)
  assert set(d_vars['batch_stats']) == {'BatchNorm_0', 'BatchNorm_1'}  # Not after the first conv.
  assert 'bias' not in d_vars['params']['Conv_1'] and 'bias' in d_vars['params']['Conv_0']
  # Train mode normalises with the batch's statistics: a batch's logits depend on the others.
  apply = jax.vmap(lambda x: discriminator.apply(d_vars, x, train=True, mutable=['batch_stats']),
                   axis_name=parallel.AXIS)
  (logits, _), updates = apply(images[None])
  (alone, _), _ = apply(images[None, :3])
  assert logits.shape == (1, 6) and not np.allclose(logits[0, :3], alone[0])
  assert all(_changed(d_vars['batch_stats'], updates['batch_stats']))
  with pytest.raises(UserError, match='model.discriminator_norm'):
    models.create_models(gan_config(model__discriminator_norm='layer'), (28, 28, 1))


def test_latent_draws_noise_and_a_one_hot_code():
  keys = jax.random.split(jax.random.key(0), 500)
  plain, codes = models.Latent(6).draw(keys)
  np.testing.assert_array_equal(plain, models.noise_from_keys(keys, 6))
  assert plain.shape == (500, 6) and not codes.any()
  latent = models.Latent(6, codes=10)
  inputs, codes = latent.draw(keys)
  assert latent.size == 16 and inputs.shape == (500, 16) and codes.dtype == jnp.int32
  np.testing.assert_array_equal(inputs[:, :6], plain)  # The same noise with or without a code.
  np.testing.assert_array_equal(inputs[:, 6:], jax.nn.one_hot(codes, 10))
  assert set(np.asarray(codes).tolist()) == set(range(10))  # Uniform: every class drawn.
  assert np.bincount(np.asarray(codes)).min() > 25
  given, given_codes = latent.draw(keys[:4], jnp.array([3, 3, 0, 9]))
  np.testing.assert_array_equal(given_codes, [3, 3, 0, 9])
  np.testing.assert_array_equal(given[:, :6], plain[:4])
  np.testing.assert_array_equal(jnp.argmax(given[:, 6:], -1), [3, 3, 0, 9])


def test_q_head_predicts_the_code_from_the_last_hidden_layer():
  images = jax.random.uniform(jax.random.key(0), (6, 28, 28, 1), minval=-1, maxval=1)
  discriminator = models.Discriminator(features=8, dense_features=24, norm='batch',
                                       code_classes=10, code_features=12)
  d_vars = discriminator.init(jax.random.key(2), images)
  assert d_vars['params']['code_hidden']['kernel'].shape == (24, 12)
  assert d_vars['params']['code_logits']['kernel'].shape == (12, 10)
  assert 'BatchNorm_2' in d_vars['batch_stats']  # The Q head's hidden layer is normalised too.
  logits, code_logits = discriminator.apply(d_vars, images)
  assert logits.shape == (6,) and code_logits.shape == (6, 10)
  generator, discriminator = models.create_models(gan_config(model__categorical_code=10),
                                                  (28, 28, 1))
  assert discriminator.code_classes == 10
  state = models.create_state(generator, discriminator, gan_config(model__categorical_code=10),
                              1, jax.random.key(0))
  assert state.generator['hidden']['kernel'].shape == (16 + 10, 32)  # Noise + one-hot code.
  for codes in (1, -1):
    with pytest.raises(UserError, match=f'model.categorical_code={codes}'):
      gan.build(gan_config(model__categorical_code=codes), '/nonexistent')


def _state_and_step(config, n_devices, images):
  generator, discriminator = models.create_models(config, (28, 28, 1))
  state = models.create_state(generator, discriminator, config, 10, jax.random.key(0))
  step = gan.make_train_step(generator, discriminator, config)
  devices = jax.local_devices()[:n_devices]
  p_step = train.pmap_train_step(step, jax.random.key(4), devices=devices)
  replicated = flax.jax_utils.replicate(state, devices)
  batch = {'image': images.reshape(n_devices, -1, 28, 28, 1),
           'label': np.zeros((n_devices, len(images) // n_devices), np.int32)}
  return state, p_step, replicated, batch


def _changed(a, b):
  return [not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]


@pytest.mark.parametrize('frozen,codes', [(None, 0), (None, 10), ('generator_optimizer', 10),
                                          ('discriminator_optimizer', 0)])
def test_one_step_changes_each_network_through_its_own_optimizer_only(digits, frozen, codes):
  config = gan_config(model__categorical_code=codes)
  if frozen:
    config[frozen].learning_rate = 0.0
  before, p_step, replicated, batch = _state_and_step(config, 8, digits.train.images[:64])
  replicated, metrics = p_step(replicated, batch)
  after = parallel.to_host(replicated)
  assert int(after.step) == 1
  generator_changed = _changed(before.generator, after.generator)
  discriminator_changed = _changed(before.discriminator, after.discriminator)
  assert all(generator_changed) == (frozen != 'generator_optimizer')
  assert not any(generator_changed) == (frozen == 'generator_optimizer')
  assert all(discriminator_changed) == (frozen != 'discriminator_optimizer')
  assert not any(discriminator_changed) == (frozen == 'discriminator_optimizer')
  assert all(_changed(before.batch_stats, after.batch_stats))  # BatchNorm averages move anyway.
  assert all(_changed(before.ema_batch_stats, after.ema_batch_stats))
  # The averaged generator follows the generator (and stays put when the generator does).
  assert _changed(before.ema_generator, after.ema_generator) == generator_changed
  assert 0 < float(metrics['d_fake'][0]) < 1 and float(metrics['generator_loss'][0]) > 0
  if codes:  # Cross entropy of the Q head, near log(10) at the start, part of the generator loss.
    assert 1.5 < float(metrics['code_loss'][0]) < 3.5
    assert float(metrics['generator_loss'][0]) > float(metrics['code_loss'][0])
  else:
    assert 'code_loss' not in metrics


def test_the_code_term_reaches_the_generator(digits):
  """With the discriminator frozen, only code_weight differs: the generator steps differ."""
  generators = []
  for weight in (0.0, 5.0):
    config = gan_config(model__categorical_code=10, model__code_weight=weight,
                        discriminator_optimizer__learning_rate=0.0)
    before, p_step, replicated, batch = _state_and_step(config, 2, digits.train.images[:64])
    after = parallel.to_host(p_step(replicated, batch)[0])
    assert not any(_changed(before.discriminator, after.discriminator))
    generators.append(after.generator)
  assert all(_changed(*generators))


PLAIN = {'model__generator_dense': 0, 'model__discriminator_dense': 0,
         'model__discriminator_norm': 'none', 'model__upsampling': 'transpose'}


@pytest.mark.parametrize('extras', [{}, {'model__categorical_code': 10}, PLAIN])
def test_step_on_8_devices_equals_1_device(digits, extras):
  """Noise keyed by example and BatchNorm over the global batch: 8 devices compute what 1 does."""
  config = gan_config(**extras)
  results = {}
  for n in (1, 8):
    _, p_step, replicated, batch = _state_and_step(config, n, digits.train.images[:64])
    for _ in range(3):
      replicated, metrics = p_step(replicated, batch)
    results[n] = (parallel.to_host(replicated), jax.device_get(metrics))
  (state1, metrics1), (state8, metrics8) = results[1], results[8]
  for tree in ('generator', 'discriminator', 'batch_stats', 'ema_generator', 'ema_batch_stats',
               'discriminator_stats'):
    for a, b in zip(jax.tree.leaves(getattr(state1, tree)), jax.tree.leaves(getattr(state8, tree))):
      np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=tree)
  np.testing.assert_allclose(metrics1['generator_loss'][0], metrics8['generator_loss'][0], rtol=1e-4)


def test_bfloat16_step_on_8_devices_matches_1_device_and_the_discriminator_learns(digits):
  """config.dtype='bfloat16': both networks compute in bfloat16; parameters, BatchNorm statistics,
  optimizer states, images, logits and metrics stay float32; 8 devices compute what 1 does within
  bfloat16 rounding, and the discriminator's loss falls."""
  config = gan_config(dtype='bfloat16', batch_size=32, **PLAIN)  # (Slow bfloat16 convs on CPU.)
  generator, discriminator = models.create_models(config, (28, 28, 1))
  state = models.create_state(generator, discriminator, config, 10, jax.random.key(0))
  step = gan.make_train_step(generator, discriminator, config)
  batch_of = lambda n, _: {'image': digits.train.images[:32].reshape(n, -1, 28, 28, 1),
                           'label': np.zeros((n, 32 // n), np.int32)}
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 5, key=4)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 3, key=4)
  trees = lambda s: (s.generator, s.discriminator, s.batch_stats, s.ema_generator)
  mixed_precision.assert_devices_agree(trees(state), trees(states1[2]), trees(states8[2]),
                                       metrics1[2], metrics8[2])
  mixed_precision.assert_float32((states1[-1], metrics1), 'state')
  losses = [float(m['discriminator_loss'][0]) for m in metrics1]
  assert 1.2 < losses[0] < 1.6 and losses[-1] < losses[0] - 0.08  # 1.38 -> 1.25 when written.
  # The default networks (dense layers, discriminator BatchNorm; shapes only): bfloat16 products.
  generator, discriminator = models.create_models(gan_config(dtype='bfloat16'), (28, 28, 1))
  noise, images = jnp.zeros((2, 16)), jnp.zeros((2, 28, 28, 1))
  g_vars = jax.eval_shape(lambda: generator.init(jax.random.key(0), noise, train=False))
  d_vars = jax.eval_shape(lambda: discriminator.init(jax.random.key(0), images))
  mixed_precision.assert_float32((g_vars, d_vars, jax.eval_shape(
      lambda g, d: (generator.apply(g, noise, train=False), discriminator.apply(d, images)),
      g_vars, d_vars)), 'default networks')
  assert set(mixed_precision.matmul_dtypes(
      lambda g: generator.apply(g, noise, train=False), g_vars)) == {'bfloat16'}
  assert set(mixed_precision.matmul_dtypes(discriminator.apply, d_vars, images)) == {'bfloat16'}


def test_generator_average_weights_and_config_check(digits):
  for step, expected in ((0, 0.1), (10, 11 / 20), (10_000, 0.999)):
    assert float(gan.ema_decay_at(step, 0.999)) == pytest.approx(expected, rel=1e-6)
  # Two steps by hand: weights of the old average min(0.5, 1/10) at step 0, min(0.5, 2/11) at 1.
  config = gan_config(model__ema_decay=0.5)
  before, p_step, replicated, batch = _state_and_step(config, 8, digits.train.images[:64])
  states = [before]
  for _ in range(2):
    replicated, _ = p_step(replicated, batch)
    states.append(parallel.to_host(replicated))
  expected = jax.tree.map(lambda e, g: 0.1 * e + 0.9 * g, before.generator, states[1].generator)
  expected = jax.tree.map(lambda e, g: 2 / 11 * e + 9 / 11 * g, expected, states[2].generator)
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(states[2].ema_generator)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # ema_decay 0: the average is the generator.
  config = gan_config(model__ema_decay=0.0)
  _, p_step, replicated, batch = _state_and_step(config, 8, digits.train.images[:64])
  after = parallel.to_host(p_step(replicated, batch)[0])
  for a, b in zip(jax.tree.leaves(after.generator), jax.tree.leaves(after.ema_generator)):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(UserError, match='model.ema_decay=1.0'):
    gan.build(gan_config(model__ema_decay=1.0), '/nonexistent')


def test_quality_sums_give_the_statistics_of_the_features():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(300, 6)).astype(np.float32) @ rng.normal(size=(6, 6)).astype(
      np.float32)
  probabilities = jax.nn.softmax(jnp.asarray(rng.normal(size=(300, 4)) * 3), axis=-1)
  mask = jnp.asarray((np.arange(300) < 250).astype(np.float32))  # 50 padding rows.
  sums = jax.device_get(gan._moment_sums(jnp.asarray(features), probabilities, mask, 'fake'))  # pylint: disable=protected-access
  mean, covariance, score, counts = gan.quality_from_sums(sums, 'fake')
  expected_mean, expected_covariance = sample_quality.feature_statistics(features[:250])
  np.testing.assert_allclose(mean, expected_mean, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(covariance, expected_covariance, rtol=1e-3, atol=1e-4)
  assert score == pytest.approx(sample_quality.inception_score(np.asarray(probabilities[:250]))[0],
                                rel=1e-4)
  np.testing.assert_array_equal(counts, sample_quality.class_histogram(
      np.asarray(probabilities[:250])))


def test_short_run_measures_its_samples_and_draws_fixed_noise_grids(trained_gan):
  workdir, summary = trained_gan
  for name in ('eval_frechet_distance', 'eval_inception_score', 'eval_classes_found',
               'eval_code_accuracy', 'eval_code_class_purity'):
    assert np.isfinite(summary[name]), name
  assert 1.0 <= summary['eval_inception_score'] <= 10.0
  assert summary['eval_real_inception_score'] > 5.0  # The judge recognises real digits.
  report = json.loads((workdir / 'report.json').read_text())
  # Training moves the samples toward the real digits in the judge's feature space.
  assert report['frechet_distance_final'] < report['frechet_distance_initial']
  assert report['inception_score_final'] > report['inception_score_initial']
  assert sum(report['class_counts_in_1000']) == 1000
  assert report['classes_found_in_1000'] == sum(c > 0 for c in report['class_counts_in_1000'])
  # The categorical code: the Q head names codes above chance; each code's 100 samples classified.
  assert summary['eval_code_accuracy'] > 0.2
  counts = np.array(report['code_class_counts'])
  assert counts.shape == (10, 10) and (counts.sum(axis=1) == 100).all()
  assert report['code_to_class'] == counts.argmax(axis=1).tolist()
  assert report['code_class_purity'] == pytest.approx(counts.max(axis=1).sum() / 1000)
  assert 0.1 <= summary['eval_code_class_purity'] <= 1.0
  names = sorted(p.name for p in (workdir / 'samples').glob('*.png'))
  with Image.open(workdir / 'samples' / 'codes.png') as picture:
    assert picture.size == (10 * (28 * 2 + 2) + 2, 10 * (28 * 2 + 2) + 2)  # 10 codes x 10 noises.
  assert names == ['codes.png', 'fixed_noise.png', 'fixed_noise_pixel_art.png', 'fixed_noise_step_0000030.png',
                   'fixed_noise_step_0000030_pixel_art.png']
  for name in names:
    with Image.open(workdir / 'samples' / name) as picture:
      pixels = np.asarray(picture.convert('RGB'), np.float32)
    assert pixels.std() > 10, name


def test_sampling_is_deterministic_for_a_seed(trained_gan, tmp_path):
  workdir, _ = trained_gan
  trained = gan_inference.TrainedGAN(str(workdir))
  np.testing.assert_array_equal(trained.sample(8, seed=3), trained.sample(8, seed=3))
  assert not np.allclose(trained.sample(8, seed=3), trained.sample(8, seed=4))
  # The command draws exactly what the library draws for the same seed.
  process = run_module('mlfun_jax.experiments.sample', f'--workdir={workdir}', '--num_samples=12',
                       '--seed=5', f'--output_dir={tmp_path}', '--pixel_art', '--scale=2')
  assert process.returncode == 0, process.stderr[-3000:]
  assert process.stdout.strip() == str(tmp_path / 'samples_seed5.png')
  with Image.open(tmp_path / 'samples_seed5.png') as picture:
    drawn = np.asarray(picture)
  assert drawn.shape == (2 * (28 * 2 + 2) + 2, 8 * (28 * 2 + 2) + 2, 3)
  np.testing.assert_array_equal(drawn, gan_pictures.sample_grid(trained.sample(12, seed=5),
                                                                pixel_art=True, scale=2, columns=8))
  # One code: the same noise as without it, the code's one-hot fixed.
  np.testing.assert_array_equal(trained.sample(4, seed=3, code=7),
                                trained.sample(4, seed=3, code=7))
  assert not np.allclose(trained.sample(4, seed=3, code=7), trained.sample(4, seed=3, code=2))
  process = run_module('mlfun_jax.experiments.sample', f'--workdir={workdir}', '--code=10',
                       f'--output_dir={tmp_path / "c"}')
  assert process.returncode == 2
  assert process.stderr.strip().splitlines()[-1].endswith(
      "code 10 is out of range: this GAN's categorical code has 10 classes (0..9)")


def test_warm_start_takes_both_networks_and_the_average_but_fresh_optimizers(trained_gan):
  """--init_from on a GAN: a decay phase with another schedule after a constant-rate run."""
  workdir, _ = trained_gan
  config = gan_config(generator_optimizer__schedule='cosine', model__categorical_code=10,
                      discriminator_optimizer__schedule='cosine')
  task = families.get('gan').build(config, str(workdir / 'unused'))
  fresh = jax.device_get(task.init(jax.random.key(1)))
  warm, origin = warm_start.weights_from(fresh, task.meta, str(workdir))
  assert origin['step'] == 60 and int(warm.step) == 0
  trained = gan_inference.TrainedGAN(str(workdir)).state
  for name in ('generator', 'batch_stats', 'ema_generator', 'ema_batch_stats', 'discriminator',
               'discriminator_stats'):
    assert not any(_changed(getattr(warm, name), getattr(trained, name))), name
  for name in ('generator_opt_state', 'discriminator_opt_state'):
    assert not any(_changed(getattr(warm, name), getattr(fresh, name))), name


def test_a_classifier_of_another_image_shape_is_refused(judge, tmp_path):
  config = gan_config(quality__classifier_workdir=str(judge), dataset='digits')
  with pytest.raises(UserError, match='quality.classifier_workdir'):
    families.train_and_evaluate(config, str(tmp_path))


def test_sample_cli_names_a_workdir_without_a_gan(judge, tmp_path):
  process = run_module('mlfun_jax.experiments.sample', f'--workdir={judge}',
                       f'--output_dir={tmp_path / "x"}')
  assert process.returncode == 2
  assert "is not a GAN (task 'classification')" in process.stderr.strip().splitlines()[-1]


def test_images_and_codes_of_another_convention_are_refused():
  latent = models.Latent(6, codes=10)
  keys = jax.random.split(jax.random.key(0), 4)
  refused(lambda: latent.draw(keys, jnp.array([0, 3, 10, 1])), r'codes: .* in 0\.\.9')
  refused(lambda: latent.draw(keys, jnp.array([0.0, 3.0, 1.0, 1.0])), 'codes: expected integer')
  generator, discriminator = models.create_models(gan_config(model__categorical_code=10),
                                                  (28, 28, 1))
  state = models.create_state(generator, discriminator, gan_config(model__categorical_code=10),
                              1, jax.random.key(0))
  refused(lambda: gan_pictures.samples(generator, latent, state, 4, 0, code=10), r'code: .*0\.\.9')
  refused(lambda: gan_pictures.samples(generator, latent, state, 4, 0, code=2.5),
           'code: expected integer')
  refused(lambda: gan_pictures.samples(generator, models.Latent(6), state, 4, 0, code=1),
           'no categorical code')
  digits = np.zeros((2, 28, 28, 1), np.uint8)
  d_vars = discriminator.init(jax.random.key(1), jnp.zeros((1, 28, 28, 1)))
  refused(lambda: discriminator.apply(d_vars, digits), 'images: expected floating-point')
  refused(lambda: discriminator.apply(d_vars, digits.astype(np.float32) + 255.0),
           r'images: .*in \[-1.0, 1.0\], got values')
  refused(lambda: gan.to_signed(digits.astype(np.float32)), 'images: expected uint8')
  refused(lambda: gan_pictures.sample_grid(digits.astype(np.float32) + 2.0),
           r'images: .*\[-1.0, 1.0\]')
  refused(lambda: gan_pictures.sample_grid(digits[0].astype(np.float32)), r'\[B, H, W, C\]')


def test_quality_classifier_takes_images_in_the_generator_range(judge):
  quality = gan.QualityClassifier(str(judge), (28, 28, 1))
  signed = np.linspace(-1, 1, 4 * 28 * 28, dtype=np.float32).reshape(4, 28, 28, 1)
  features, probabilities = quality(signed)
  assert features.shape[0] == 4 and probabilities.shape == (4, 10)
  refused(lambda: quality((signed + 1) * 127.5), r'images: .*\[-1.0, 1.0\], got values')
  refused(lambda: quality(((signed + 1) * 127.5).astype(np.uint8)), 'images: expected floating')
  refused(lambda: quality(signed[:, :14]), r'images: .*\[B, 28, 28, 1\]')
