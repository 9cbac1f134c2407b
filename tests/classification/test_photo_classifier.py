"""End to end on a folder of photos: train from flags, class names through the checkpoint, predict.

Three colour classes ('grass', 'sea', 'sunset') of noisy 48x40 JPEGs are trained at image_size 16
with the CIFAR-10 configs shrunk; predictions on new photos of other sizes print the class names.
"""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from mlfun_jax.data import images
from mlfun_jax.core import metrics_writer
from mlfun_jax.classification import inference
from tests.conftest import REPO_ROOT
from tests.conftest import run_module

COLOURS = {'grass': (40, 170, 50), 'sea': (30, 70, 200), 'sunset': (230, 120, 40)}
CIFAR_CONFIG = str(REPO_ROOT / 'experiments' / 'configs' / 'cnn_cifar10.py')
RESNET_CONFIG = str(REPO_ROOT / 'experiments' / 'configs' / 'resnet_cifar10.py')


def _photo(colour, size, rng) -> Image.Image:
  w, h = size
  pixels = np.clip(np.array(colour)[None, None] + rng.normal(0, 40, (h, w, 3)), 0, 255)
  return Image.fromarray(pixels.astype(np.uint8))


@pytest.fixture(scope='module')
def photo_folder(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp('photos')
  rng = np.random.default_rng(0)
  for name, colour in COLOURS.items():
    (root / name).mkdir()
    for i in range(40):
      _photo(colour, (48, 40), rng).save(root / name / f'{i:03d}.jpg', quality=90)
  return root


def _train(config, workdir, folder, cache, *extra):
  result = run_module(
      'mlfun_jax.experiments.train', f'--config={config}', f'--workdir={workdir}',
      '--config.dataset=image_folder', f'--config.data_dir={folder}', '--config.image_size=16',
      f'--config.cache_dir={cache}', '--config.batch_size=32', '--config.num_steps=40',
      '--config.eval_every=40', '--config.checkpoint_every=40', '--config.log_every=20',
      '--config.validation_fraction=0.25', *extra)
  assert result.returncode == 0, result.stderr[-3000:]
  return metrics_writer.read_metrics(str(workdir))


def test_cnn_on_image_folder_learns_and_predict_prints_class_names(photo_folder, tmp_path):
  workdir = tmp_path / 'run'
  records = _train(CIFAR_CONFIG, workdir, photo_folder, tmp_path / 'cache',
                   '--config.model.conv_features=((8,), (16, 16))',
                   '--config.model.dense_features=(32,)', '--config.optimizer.learning_rate=0.01')
  final = [r for r in records if 'eval_accuracy' in r][-1]
  assert final['eval_count'] == 30  # 25% of 40 photos of each of 3 classes
  assert final['eval_accuracy'] >= 0.9

  rng = np.random.default_rng(1)
  paths = []
  for name, size in (('sea', (120, 90)), ('sunset', (33, 64)), ('grass', (16, 16))):
    path = tmp_path / f'new_{name}.png'
    _photo(COLOURS[name], size, rng).save(path)
    paths.append(str(path))
  result = run_module('mlfun_jax.experiments.predict', f'--workdir={workdir}', *paths)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = [json.loads(line) for line in result.stdout.splitlines()]
  assert [line['path'] for line in lines] == paths
  assert [line['top'][0][0] for line in lines] == ['sea', 'sunset', 'grass']
  for line in lines:  # Top-5 asked, only 3 classes exist: all three, probabilities summing to 1.
    assert sorted(name for name, _ in line['top']) == sorted(COLOURS)
    assert sum(p for _, p in line['top']) == pytest.approx(1.0, abs=1e-4)
  classifier = inference.Classifier(str(workdir))
  assert classifier.class_names == sorted(COLOURS) and classifier.fit == 'crop'
  assert classifier.image_shape == (16, 16, 3)


def test_resnet_batch_stats_are_checkpointed_and_sigmoid_head_reports_auc(photo_folder, tmp_path):
  workdir = tmp_path / 'run'
  records = _train(RESNET_CONFIG, workdir, photo_folder, tmp_path / 'cache',
                   '--config.model.stem_features=4', '--config.model.stage_features=(8, 8)',
                   '--config.model.residual_stages=(True, False)', '--config.head=sigmoid',
                   '--config.positive_class=1', '--config.optimizer.learning_rate=0.05')
  final = [r for r in records if 'eval_accuracy' in r][-1]
  assert final['eval_count'] == 30
  assert {'eval_precision', 'eval_recall', 'eval_auc'} <= set(final)
  assert final['eval_auc'] >= 0.95 and final['eval_accuracy'] >= 0.9

  classifier = inference.Classifier(str(workdir))
  means = [v['mean'] for v in classifier.state.batch_stats.values() for v in v.values()]
  assert len(means) == 5 and all(np.abs(np.asarray(m)).max() > 1e-3 for m in means)
  photo = _photo(COLOURS['sea'], (48, 40), np.random.default_rng(2))
  answers = classifier.predict(images.to_model_input(photo, (16, 16, 3), fit='crop')[None])
  assert answers[0][0][0] == 'sea' and answers[0][1][0] == 'not sea'


SPEEDRUN_CONFIG = str(REPO_ROOT / 'experiments' / 'configs' / 'cifar10_speedrun.py')


def test_speedrun_recipe_learns_and_predict_answers_as_its_evaluation(photo_folder, tmp_path):
  """The speedrun config shrunk (whitening from the training photos, alternating flips, Lookahead,
  6-view test-time augmentation): mlfun-predict on the held-out photos, saved as files, is right
  exactly as often as the run's last evaluation says."""
  workdir = tmp_path / 'run'
  records = _train(SPEEDRUN_CONFIG, workdir, photo_folder, tmp_path / 'cache',
                   '--config.model.stage_features=(8, 16, 16)', '--config.input_pipeline=memory',
                   '--config.optimizer.learning_rate=0.4')
  final = [r for r in records if 'eval_accuracy' in r][-1]
  assert final['eval_count'] == 30 and final['eval_accuracy'] >= 0.9
  assert 'eval_single_view_accuracy' in final
  classifier = inference.Classifier(str(workdir))
  assert classifier.test_time_flip and classifier.test_time_shift == 1
  from mlfun_jax import data  # pylint: disable=g-import-not-at-top
  held_out = data.load_configured_input(classifier.config, 0, 1)
  batch = next(held_out.eval_batches(global_batch_size=32, local_device_count=1))
  count = int(batch['mask'].sum())
  paths = []
  for i in range(count):
    paths.append(str(tmp_path / f'held_out_{i:02d}.png'))
    Image.fromarray(batch['image'][0, i]).save(paths[-1])
  result = run_module('mlfun_jax.experiments.predict', f'--workdir={workdir}', '--top_k=1',
                      *paths)
  assert result.returncode == 0, result.stderr[-3000:]
  names = [json.loads(line)['top'][0][0] for line in result.stdout.splitlines()]
  truth = [classifier.class_names[label] for label in batch['label'][0, :count]]
  assert np.mean([n == t for n, t in zip(names, truth)]) == pytest.approx(final['eval_accuracy'])
  # What predict answers from: the 6-view logits, not the single view's.
  from mlfun_jax.classification import model as classifier_model  # pylint: disable=g-import-not-at-top
  held = batch['image'][0, :count]
  views = classifier_model.inference_logits(classifier.model, classifier.state, held,
                                            classifier.mean, classifier.std, True, 1)
  single = classifier_model.inference_logits(classifier.model, classifier.state, held,
                                             classifier.mean, classifier.std)
  np.testing.assert_allclose(classifier.logits(held), views, rtol=1e-4, atol=1e-5)
  assert not np.allclose(views, single, rtol=1e-3)


def test_nothing_held_out_trains_on_every_photo_without_evaluating(photo_folder, tmp_path):
  result = run_module(
      'mlfun_jax.experiments.train', f'--config={CIFAR_CONFIG}', f'--workdir={tmp_path / "run"}',
      '--config.dataset=image_folder', f'--config.data_dir={photo_folder}',
      '--config.image_size=16', f'--config.cache_dir={tmp_path / "cache"}',
      '--config.batch_size=40', '--config.num_epochs=1', '--config.validation_fraction=0',
      '--config.model.conv_features=((4,), (8,))', '--config.model.dense_features=(8,)')
  assert result.returncode == 0, result.stderr[-3000:]
  records = metrics_writer.read_metrics(str(tmp_path / 'run'))
  assert max(r['step'] for r in records) == 3  # 120 photos, batch 40: all trained on.
  assert not any('eval_accuracy' in r for r in records)
