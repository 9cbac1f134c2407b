"""Adversarial examples: attack invariants, a trained model fooled, adversarial training on 8 devices."""

import json

import flax
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from mlfun_jax.data import image_stats
from mlfun_jax import families
from mlfun_jax.classification import adversarial_training
from mlfun_jax.adversarial import attacks
from mlfun_jax.adversarial import pictures as attack_pictures
from mlfun_jax import data
from mlfun_jax.core import parallel
from mlfun_jax.adversarial import robustness
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import cnn
from mlfun_jax.classification import inference as classification_inference
from mlfun_jax.classification import model as classifier_model
from mlfun_jax.classification import task as classification
from mlfun_jax.core import checks
from tests import mixed_precision
from tests.conftest import refused
from tests.conftest import run_module
from tests.conftest import small_cnn_config


@pytest.fixture(scope='module')
def toy():
  """An untrained tiny CNN as logits_fn, 16 random images in [0, 1] and labels."""
  model = cnn.CNN(num_outputs=10, conv_features=(4,), dense_features=(16,), dropout_rate=0.0)
  images = jax.random.uniform(jax.random.key(1), (16, 12, 12, 1))
  variables = model.init(jax.random.key(0), images, train=False)
  logits_fn = jax.jit(lambda x: model.apply(variables, 4.0 * x - 2.0, train=False))
  labels = jnp.arange(16) % 10
  return logits_fn, images, labels


def _all_attacks(logits_fn, images, labels, epsilon):
  targets = (labels + 3) % 10
  return {
      'fgsm': attacks.fgsm(logits_fn, images, labels, epsilon=epsilon),
      'fgsm_targeted': attacks.fgsm(logits_fn, images, targets, epsilon=epsilon, targeted=True),
      'pgd': attacks.pgd(logits_fn, images, labels, epsilon=epsilon, step_size=epsilon / 3,
                         num_steps=5, rng=jax.random.key(0)),
      'pgd_targeted': attacks.pgd(logits_fn, images, targets, epsilon=epsilon, step_size=0.7,
                                  num_steps=4, rng=jax.random.key(0), targeted=True),
      'pgd_restarts': attacks.pgd_restarts(logits_fn, images, labels, epsilon=epsilon,
                                           step_size=0.1, num_steps=3, rng=jax.random.key(2),
                                           num_restarts=3),
      'targeted_iterative': attacks.targeted_iterative(
          logits_fn, images, targets, epsilon=epsilon, step_size=0.05, max_steps=10).images,
  }


@pytest.mark.parametrize('epsilon', [0.05, 0.3])
def test_perturbation_within_epsilon_and_range(toy, epsilon):
  logits_fn, images, labels = toy
  for name, adversarial in _all_attacks(logits_fn, images, labels, epsilon).items():
    assert adversarial.shape == images.shape and adversarial.dtype == jnp.float32, name
    assert float(jnp.abs(adversarial - images).max()) <= epsilon + 1e-6, name
    assert float(adversarial.min()) >= 0.0 and float(adversarial.max()) <= 1.0, name
    assert float(jnp.abs(adversarial - images).max()) > 0.0, name  # It did move.


def test_fgsm_equals_one_pgd_step_of_size_epsilon_without_random_start(toy):
  logits_fn, images, labels = toy
  for targeted in (False, True):
    fgsm = attacks.fgsm(logits_fn, images, labels, epsilon=0.1, targeted=targeted)
    pgd = attacks.pgd(logits_fn, images, labels, epsilon=0.1, step_size=0.1, num_steps=1,
                      targeted=targeted)
    np.testing.assert_array_equal(fgsm, pgd)


def test_attacks_are_deterministic_for_a_seed_and_jit(toy):
  logits_fn, images, labels = toy
  run = jax.jit(lambda key, eps: attacks.pgd(logits_fn, images, labels, epsilon=eps,
                                            step_size=0.02, num_steps=3, rng=key))
  a, b = run(jax.random.key(7), 0.1), run(jax.random.key(7), 0.1)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, run(jax.random.key(8), 0.1))
  # Per-example keys: an example's random start does not depend on the rest of its batch.
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(3), i))(jnp.arange(16))
  whole = attacks.random_start(keys, images, 0.1)
  np.testing.assert_array_equal(whole[4:8], attacks.random_start(keys[4:8], images[4:8], 0.1))


def test_targeted_iterative_stops_per_example_at_threshold(toy):
  toy_logits, images, _ = toy
  logits_fn = lambda x: 10.0 * toy_logits(x)  # Sharper probabilities.
  probabilities = jax.nn.softmax(logits_fn(images))
  predicted = jnp.argmax(probabilities, axis=-1)
  targets = predicted.at[:8].set((predicted[:8] + 1) % 10)  # The last 8 are already the target.
  below = float(probabilities[jnp.arange(8), targets[:8]].max())
  above = float(probabilities[8:].max(-1).min())
  assert below < above
  threshold = (below + above) / 2
  result = attacks.targeted_iterative(logits_fn, images, targets, epsilon=0.3, step_size=0.02,
                                      max_steps=25, threshold=threshold)
  np.testing.assert_array_equal(result.steps[8:], 0)
  np.testing.assert_array_equal(result.images[8:], images[8:])
  assert (result.steps[:8] >= 1).all() and (result.steps <= 25).all()
  p = jax.nn.softmax(logits_fn(result.images))[jnp.arange(16), targets]
  np.testing.assert_allclose(result.target_probability, p, rtol=1e-5)
  np.testing.assert_array_equal(result.reached, p >= threshold)
  # Examples that stopped early reached the threshold; the others used the whole budget.
  assert ((result.steps == 25) | result.reached).all()


def test_attacks_refuse_uint8_images_values_outside_the_range_and_bad_labels(toy):
  logits_fn, images, labels = toy
  pixels = np.asarray(images * 255).astype(np.uint8)  # The silently wrong call of old.
  kinds = {
      'fgsm': lambda x, y: attacks.fgsm(logits_fn, x, y, epsilon=0.1),
      'pgd': lambda x, y: attacks.pgd(logits_fn, x, y, epsilon=0.1, step_size=0.05, num_steps=2),
      'pgd_restarts': lambda x, y: attacks.pgd_restarts(
          logits_fn, x, y, epsilon=0.1, step_size=0.05, num_steps=2, rng=jax.random.key(0),
          num_restarts=2),
      'targeted_iterative': lambda x, y: attacks.targeted_iterative(
          logits_fn, x, y, epsilon=0.1, step_size=0.05, max_steps=2),
  }
  for name, attack in kinds.items():
    message = refused(lambda: attack(pixels, labels), 'images: expected floating-point images')
    assert 'uint8' in message, name
    refused(lambda: attack(255.0 * images, labels), r'images: .*in \[0.0, 1.0\], got values')
    refused(lambda: attack(images[0], labels[:1]), r'images: expected .*\[B, H, W, C\]')
    refused(lambda: attack(images, labels + 10), r'(labels|targets): expected integer .*0\.\.9')
    refused(lambda: attack(images, labels.astype(jnp.float32)), '(labels|targets): expected')
  refused(lambda: attacks.random_start(jax.random.key(0), pixels, 0.1), 'images: expected')
  refused(lambda: attacks.project(images, pixels, 0.1), 'images: expected')
  # Under jit the values are unknown: dtype and shape are still checked, the range is not.
  with pytest.raises(checks.InputConventionError, match='images'):
    jax.jit(lambda x: attacks.fgsm(logits_fn, x, labels, epsilon=0.1))(pixels)
  jax.jit(lambda x: attacks.fgsm(logits_fn, x, labels, epsilon=0.1))(images)


def test_attack_pictures_and_targets_refuse_other_conventions(toy, tmp_path):
  _, images, labels = toy
  images, labels = np.asarray(images), np.asarray(labels)
  probabilities = np.full((16, 10), 0.1, np.float32)
  names = [str(i) for i in range(10)]
  refused(lambda: attack_pictures.example_grid(
      (images * 255).astype(np.uint8), images, probabilities, probabilities, names,
      str(tmp_path / 'x.png')), 'original: expected floating-point images')
  refused(lambda: attack_pictures.example_grid(
      images, images, probabilities, probabilities, names, str(tmp_path / 'x.png'),
      labels=labels + 10), 'labels: expected integer ids')
  refused(lambda: robustness.random_targets(labels + 10, 10, seed=0), 'labels: expected')


# ------------------------------------------------------------------------ on a trained model


@pytest.fixture(scope='module')
def trained(digit_classifier):
  """The tiny CNN trained 300 steps on the embedded digits (about 90% held out)."""
  workdir, summary = digit_classifier
  assert summary['eval_accuracy'] > 0.85
  return str(workdir), classification_inference.Classifier(str(workdir))


def test_targeted_attack_raises_target_probability_of_trained_model(trained):
  _, classifier = trained
  test = data.load_image_dataset('embedded_mnist').test
  images, labels = test.images[:64], test.labels[:64]
  targets = robustness.random_targets(labels, 10, seed=0)
  logits_fn = lambda x: classifier.attack_logits(classifier.state, x)
  x = jnp.asarray(images, jnp.float32) / 255.0
  before = jax.nn.softmax(logits_fn(x))[jnp.arange(64), targets]
  result = jax.jit(lambda x: attacks.targeted_iterative(
      logits_fn, x, jnp.asarray(targets), epsilon=0.2, step_size=0.01, max_steps=60,
      threshold=0.9))(x)
  after = result.target_probability
  assert float(after.mean()) > float(before.mean()) + 0.5
  assert float((after > before).mean()) > 0.95
  assert float(jnp.abs(result.images - x).max()) <= 0.2 + 1e-6
  # PGD at 0.2 breaks the undefended model; at epsilon 0 it changes nothing.
  outcome = robustness.run_attack(classifier, images, labels, robustness.AttackSpec(steps=10),
                                  [0.0, 0.2], batch_size=32, keep=4)
  clean, attacked = outcome['results']
  assert clean['accuracy'] == clean['clean_accuracy'] > 0.8
  assert attacked['accuracy'] < 0.3 and attacked['max_perturbation'] <= 0.2 + 1e-6
  assert outcome['examples'][1]['adversarial'].shape == (4, 28, 28, 1)


def test_run_attack_takes_uint8_images_of_the_model_shape_and_its_classes(trained):
  _, classifier = trained
  test = data.load_image_dataset('embedded_mnist').test
  images, labels = test.images[:8], test.labels[:8]
  spec = robustness.AttackSpec(steps=2)
  run = lambda x, y, **kw: robustness.run_attack(classifier, x, y, spec, [0.1], batch_size=8, **kw)
  refused(lambda: run(images.astype(np.float32) / 255.0, labels), 'images: expected uint8')
  refused(lambda: run(images[0], labels[:1]), r'images: expected uint8 images \[B, 28, 28, 1\]')
  refused(lambda: run(images[:, :14], labels), r'images: expected .*\[B, 28, 28, 1\]')
  refused(lambda: run(images, labels + 10), r'labels: expected integer ids .* in 0\.\.9')
  targeted = robustness.AttackSpec(name='targeted', steps=2)
  refused(lambda: robustness.run_attack(classifier, images, labels, targeted, [0.1],
                                         targets=np.full(8, 12)), 'targets: expected')


def test_attack_cli_report_pictures_and_single_image(trained, tmp_path):
  workdir, _ = trained
  out = tmp_path / 'report'
  result = run_module('mlfun_jax.experiments.attack', f'--workdir={workdir}', '--attack=targeted',
                      '--epsilon=0.1,2/10', '--steps=30', '--num_examples=40', '--show=3',
                      f'--output_dir={out}')
  assert result.returncode == 0, result.stderr[-2000:]
  report = json.loads((out / 'report.json').read_text())
  assert report['num_examples'] == 40 and [r['epsilon'] for r in report['results']] == [0.1, 0.2]
  assert report['results'][1]['success_rate'] >= report['results'][0]['success_rate']
  assert {p.name for p in out.glob('*.png')} == {'success_curve.png', 'examples_eps0.1.png',
                                                 'examples_eps0.2.png'}
  digit = np.zeros((40, 40), np.uint8)
  digit[8:32, 18:23] = 255  # A "1".
  Image.fromarray(digit).save(tmp_path / 'one.png')
  out = tmp_path / 'one'
  result = run_module('mlfun_jax.experiments.attack',
                      f'--workdir={workdir}', f'--image={tmp_path}/one.png',
                      '--target=7', '--attack=targeted', '--epsilon=0.3', '--steps=100',
                      '--threshold=0.9', f'--output_dir={out}')
  assert result.returncode == 0, result.stderr[-2000:]
  single = json.loads((out / 'report.json').read_text())['results'][0]
  assert single['mean_target_probability'] >= 0.9 or single['attempts'] == 0
  assert (out / 'adversarial_eps0.3.png').is_file()
  bad = run_module('mlfun_jax.experiments.attack', f'--workdir={workdir}', '--epsilon=0.1',
                   '--target=giraffe', f'--output_dir={out}')
  assert bad.returncode == 2 and 'giraffe' in bad.stderr


# ------------------------------------------------------------------------ adversarial training


def _adversarial_config(**overrides):
  config = small_cnn_config(**overrides)
  config.adversarial.update(dict(
      enabled=True, epsilon=0.3, num_steps=2, relative_step_size=0.6, random_start=True,
      warmup_steps=2, eval_steps=3))
  return config


def test_adversarial_training_on_8_devices_equals_1_device():
  digits = data.load_image_dataset('embedded_mnist')
  config = _adversarial_config()
  model = classifier_model.create_model(config, 10)
  mean, std = image_stats.channel_stats(digits.train.images)
  state = classifier_model.create_state(model, config, (28, 28, 1), 10, jax.random.key(0))
  step = classification.make_train_step(model, config, mean, std)
  images, labels = digits.train.images[:64], digits.train.labels[:64]
  results, first_loss = {}, {}
  for n in (1, 8):
    devices = jax.local_devices()[:n]
    p_step = train.pmap_train_step(step, jax.random.key(3), devices=devices)
    replicated = flax.jax_utils.replicate(state, devices)
    batch = {'image': images.reshape(n, 64 // n, 28, 28, 1), 'label': labels.reshape(n, 64 // n)}
    for i in range(3):
      replicated, metrics = p_step(replicated, batch)
      if i == 0:
        first_loss[n] = float(metrics['loss'][0])
    results[n] = (parallel.to_host(replicated), jax.device_get(metrics))
  (state1, metrics1), (state8, metrics8) = results[1], results[8]
  for a, b in zip(jax.tree.leaves(state1.params), jax.tree.leaves(state8.params)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
  np.testing.assert_allclose(metrics1['loss'][0], metrics8['loss'][0], rtol=1e-4)
  # The step really trains on attacks: its loss is above the clean loss of the same state.
  one_device = jax.local_devices()[:1]
  plain = classification.make_train_step(model, small_cnn_config(), mean, std)
  _, clean_metrics = train.pmap_train_step(plain, jax.random.key(3), devices=one_device)(
      flax.jax_utils.replicate(state, one_device), {'image': images[None], 'label': labels[None]})
  assert first_loss[1] >= float(clean_metrics['loss'][0])


def test_bfloat16_adversarial_training_on_8_devices_matches_1_device_and_the_loss_falls():
  """config.dtype='bfloat16': the PGD examples and the step's gradients come from the bfloat16
  network; parameters, optimizer state, attacked images and metrics stay float32; 8 devices
  compute what 1 does within bfloat16 rounding."""
  digits = data.load_image_dataset('embedded_mnist')
  config = _adversarial_config(dtype='bfloat16', optimizer__schedule='constant')
  config.adversarial.num_steps = 1  # One PGD step: the smallest program.
  model = classifier_model.create_model(config, 10)
  mean, std = image_stats.channel_stats(digits.train.images)
  state = classifier_model.create_state(model, config, (28, 28, 1), 10, jax.random.key(0))
  step = classification.make_train_step(model, config, mean, std)
  images, labels = digits.train.images[:64], digits.train.labels[:64]
  batch_of = lambda n, _: {'image': images.reshape(n, 64 // n, 28, 28, 1),
                           'label': labels.reshape(n, 64 // n)}
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 6, key=3)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 1, key=3)
  # One step: its PGD examples come from the same parameters on 1 and 8 devices. Later steps
  # attack slightly different parameters (bfloat16 rounding through Adam, see mixed_precision),
  # and PGD's sign of each pixel's gradient turns that into whole attack steps on some pixels:
  # the two runs then drift apart faster than plain training does (0.1 after 3 steps).
  mixed_precision.assert_devices_agree(state.params, states1[0].params, states8[0].params,
                                       metrics1[0], metrics8[0])
  mixed_precision.assert_float32((states1[-1].params, states1[-1].opt_state, metrics1), 'state')
  losses = [float(m['loss'][0]) for m in metrics1]
  assert 3.0 < losses[0] < 3.8 and losses[-1] < losses[0] - 0.5  # 3.11 -> 2.34 when written.
  attack = lambda x: classifier_model.unit_range_logits(model, state, x, mean, std)
  adversarial = jax.eval_shape(lambda x: adversarial_training.evaluation_images(
      adversarial_training.settings(config), attack, x, labels[:4]), jnp.zeros((4, 28, 28, 1)))
  assert adversarial.dtype == jnp.float32


def test_adversarial_training_run_reports_adversarial_accuracy(tmp_path):
  config = _adversarial_config(num_steps=40, eval_every=40, checkpoint_every=40)
  config.adversarial.epsilon = 0.1  # 0.3 takes a bigger model and many more steps.
  _, summary = families.train_and_evaluate(config, str(tmp_path))
  assert summary['eval_count'] == 1000
  assert 0.0 <= summary['eval_adversarial_accuracy'] < summary['eval_accuracy']
  assert summary['eval_accuracy'] > 0.3


def test_adversarial_config_checks():
  assert adversarial_training.settings(small_cnn_config()) is None
  config = _adversarial_config()
  config.adversarial.num_steps = 0
  with pytest.raises(UserError, match='adversarial.num_steps'):
    adversarial_training.settings(config)
  config = _adversarial_config(head='sigmoid')
  with pytest.raises(UserError, match='softmax'):
    adversarial_training.settings(config)
  epsilon = adversarial_training.epsilon_at(_adversarial_config().adversarial, jnp.int32(0))
  assert float(epsilon) == pytest.approx(0.15)
