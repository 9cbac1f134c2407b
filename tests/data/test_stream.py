"""The streamed input pipeline: the in-memory path's batches, each process reading only its share,
resuming on another topology, array_record shards of a 20,000-JPEG folder of varying sizes, a TFDS
dataset with other split names and features, and a classification run on each."""

import io
import sys
import zipfile

import numpy as np
from PIL import Image
import pytest

from mlfun_jax import data
from mlfun_jax import families
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import arrays
from mlfun_jax.data import embedded
from mlfun_jax.data import records
from mlfun_jax.data import stream
from tests.conftest import small_cnn_config

NUM_JPEGS = 20_000
CLASSES = ('disc', 'square', 'stripes', 'cross')


@pytest.fixture(scope='module')
def digits():
  return embedded.load_embedded_mnist()


def _stream_batches(split, steps, start=0, **layout):
  batches = stream.train_batches(stream.ArraySource(split), stream.Preprocess(None, 1),
                                 global_batch_size=32, seed=3, start_step=start, workers=2,
                                 **layout)
  return [next(batches) for _ in range(steps)]


def test_the_stream_draws_the_in_memory_batches(digits):
  memory = arrays.train_batches(digits.train, global_batch_size=32, seed=3, local_device_count=2)
  # 130 steps of 32 cross the first epoch's end (4,000 examples = 125 steps).
  for streamed in _stream_batches(digits.train, 130, local_device_count=2):
    expected = next(memory)
    np.testing.assert_array_equal(streamed['image'], expected['image'])
    np.testing.assert_array_equal(streamed['label'], expected['label'])
    assert streamed['image'].shape == (2, 16, 28, 28, 1) and streamed['label'].dtype == np.int32


def test_each_process_reads_only_its_share_and_resumes_on_another_topology(digits):
  def read_by(process_index, process_count, steps, start=0, local_device_count=1):
    counting = stream.CountingSource(stream.ArraySource(digits.train))
    batches = stream.train_batches(counting, stream.Preprocess(None, 1), global_batch_size=32,
                                   seed=3, start_step=start, process_index=process_index,
                                   process_count=process_count,
                                   local_device_count=local_device_count, workers=2, prefetch=2)
    got = [next(batches) for _ in range(steps)]
    return got, counting.read

  one, read_by_one = read_by(0, 1, 20, local_device_count=2)
  (first, read_by_first), (second, read_by_second) = read_by(0, 2, 20), read_by(1, 2, 20)
  # Each process of two read 16 examples per step (plus what it read ahead), none of the other's.
  assert set(read_by_first).isdisjoint(read_by_second)
  # grain reads up to 2 batches (+1 being read) ahead; a worker may be part-way through a batch
  # when the count is taken (321 was seen), so the count need not be a whole number of batches.
  for read in (read_by_first, read_by_second):
    assert 20 * 16 <= len(read) <= 23 * 16
  for whole, a, b in zip(one, first, second):  # ... and together the one process' batches.
    np.testing.assert_array_equal(whole['label'].reshape(-1),
                                  np.concatenate([a['label'], b['label']], axis=None))
  # Stopped at step 12 on 1 process x 2 devices, resumed on 2 processes x 1 device: the same.
  resumed = [read_by(p, 2, 8, start=12)[0] for p in (0, 1)]
  for s in range(8):
    np.testing.assert_array_equal(
        one[12 + s]['image'].reshape(32, 28, 28, 1),
        np.concatenate([resumed[0][s]['image'][0], resumed[1][s]['image'][0]]))


def test_eval_stream_equals_the_in_memory_eval_batches(digits):
  for process_index in (0, 1):
    layout = dict(global_batch_size=48, process_index=process_index, process_count=2,
                  local_device_count=2)
    streamed = list(stream.eval_batches(stream.ArraySource(digits.test),
                                        stream.Preprocess(None, 1), workers=2, **layout))
    expected = list(arrays.eval_batches(digits.test, **layout))
    assert len(streamed) == len(expected) == 21
    for a, b in zip(streamed, expected):
      for key in ('image', 'label', 'mask'):
        np.testing.assert_array_equal(a[key], b[key])


def test_crops_are_the_same_whatever_the_threads():
  pictures = np.random.default_rng(0).integers(0, 256, (40, 30, 50, 3), np.uint8)
  split = arrays.ArraySplit(images=pictures, labels=np.arange(40, dtype=np.int32) % 4)
  runs = []
  for workers in (1, 3):
    batches = stream.train_batches(stream.ArraySource(split), stream.Preprocess(16, 3, 'random'),
                                   global_batch_size=8, seed=1, workers=workers)
    runs.append([next(batches)['image'] for _ in range(6)])
  for a, b in zip(*runs):
    assert a.shape == (1, 8, 16, 16, 3)
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(runs[0][0], runs[0][5])


def _jpeg(rng, label: int) -> bytes:
  height, width = (int(v) for v in rng.integers(12, 40, size=2))
  y, x = np.mgrid[:height, :width]
  shape = {0: (y - height / 2) ** 2 + (x - width / 2) ** 2 < (min(height, width) / 3) ** 2,
           1: (abs(y - height / 2) < height / 4) & (abs(x - width / 2) < width / 4),
           2: (y // 3) % 2 == 0,
           3: (abs(y - height / 2) < 2) | (abs(x - width / 2) < 2)}[label]
  colour = rng.integers(60, 256, 3)
  pixels = (shape[..., None] * colour + rng.integers(0, 40, (height, width, 3))).clip(0, 255)
  out = io.BytesIO()
  Image.fromarray(pixels.astype(np.uint8)).save(out, 'JPEG', quality=90)
  return out.getvalue()


@pytest.fixture(scope='module')
def record_cache(tmp_path_factory):
  return tmp_path_factory.mktemp('records')


@pytest.fixture(scope='module')
def jpeg_zip(tmp_path_factory):
  """A zip of 20,000 JPEGs of 12-39 x 12-39 pixels in 4 class folders (shapes a CNN tells apart)."""
  path = tmp_path_factory.mktemp('jpegs') / 'shapes.zip'
  rng = np.random.default_rng(0)
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
    for i in range(NUM_JPEGS):
      label = i % len(CLASSES)
      zf.writestr(f'train/{CLASSES[label]}/{i:05d}.jpg', _jpeg(rng, label))
  return path


def test_a_folder_of_20000_jpegs_is_decoded_once_into_shards(jpeg_zip, record_cache):
  folder, info = records.prepare_image_folder(jpeg_zip, name='shapes', image_size=16, channels=3,
                                              validation_fraction=0.1, cache_dir=record_cache)
  assert info['splits']['train']['num_records'] == 18_000
  assert info['splits']['test']['num_records'] == 2_000
  assert info['class_names'] == sorted(CLASSES) and info['num_shapes'] > 100
  assert len(info['splits']['train']['shards']) == 5  # 4,096 records a shard.
  # Images keep their size (at most 19 = 16 / 0.875 on the shorter side), read back as written.
  train = records.RecordSource(folder, info['splits']['train']['shards'])
  image, label = train[17_999]
  assert image.dtype == np.uint8 and min(image.shape[:2]) <= 19 and 0 <= label < 4
  with zipfile.ZipFile(jpeg_zip) as zf:
    first = sorted(n for n in zf.namelist() if n.startswith(f'train/{CLASSES[0]}/'))[0]
    original = np.asarray(Image.open(io.BytesIO(zf.read(first))).convert('RGB'))
  if min(original.shape[:2]) <= 19:
    assert any(np.array_equal(train[i][0], original) for i in range(4))
  # The same call again finds the shards: nothing is decoded.
  again, info_again = records.prepare_image_folder(jpeg_zip, name='shapes', image_size=16,
                                                   channels=3, validation_fraction=0.1,
                                                   cache_dir=record_cache)
  assert again == folder and info_again == info


def test_a_classification_run_streams_the_jpegs_and_learns(jpeg_zip, record_cache, tmp_path):
  config = small_cnn_config(dataset='shapes', data_dir=str(jpeg_zip), image_size=16,
                            input_pipeline='stream', train_crop='random', num_steps=60,
                            eval_every=60, batch_size=64, cache_dir=str(record_cache))
  config.optimizer.learning_rate = 3e-3
  state, summary = families.train_and_evaluate(config, str(tmp_path / 'run'))
  assert int(state.step) == 60 and summary['eval_count'] == 2_000
  assert summary['eval_accuracy'] > 0.6  # 4 classes: chance is 0.25.


def test_auto_reads_small_data_into_memory_and_varying_sizes_need_an_image_size(tmp_path):
  config = small_cnn_config(input_pipeline='auto')
  assert data.load_configured_input(config).pipeline == 'memory'
  rng = np.random.default_rng(1)
  with zipfile.ZipFile(tmp_path / 'few.zip', 'w') as zf:
    for i in range(8):
      zf.writestr(f'{CLASSES[i % 2]}/{i}.jpg', _jpeg(rng, i % 2))
  config = small_cnn_config(dataset='few', data_dir=str(tmp_path / 'few.zip'),
                            input_pipeline='stream', cache_dir=str(tmp_path / 'cache'))
  with pytest.raises(UserError, match='sizes .* set config field image_size'):
    data.load_configured_input(config)


@pytest.fixture(scope='module')
def tfds_pictures(tmp_path_factory):
  """A TFDS dataset (array_record) of pictures of varying sizes under the features 'picture' and
  'kind', split 'train' and 'validation'."""
  tfds = pytest.importorskip('tensorflow_datasets')

  class MlfunPictures(tfds.core.GeneratorBasedBuilder):
    """40 train + 12 validation RGB pictures of 12-39 pixels a side, 4 kinds."""
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          'picture': tfds.features.Image(shape=(None, None, 3)),
          'kind': tfds.features.ClassLabel(names=list(CLASSES))}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {'train': self._generate_examples(40, 0),
              'validation': self._generate_examples(12, 1)}

    def _generate_examples(self, n, seed):
      rng = np.random.default_rng(seed)
      for i in range(n):
        yield i, {'picture': Image.open(io.BytesIO(_jpeg(rng, i % 4))), 'kind': i % 4}

  data_dir = tmp_path_factory.mktemp('tfds_pictures')
  MlfunPictures(data_dir=str(data_dir), file_format='array_record').download_and_prepare()
  return data_dir


def test_a_tfds_dataset_with_other_splits_and_features_streams(tfds_pictures):
  config = small_cnn_config(dataset='mlfun_pictures', data_dir=str(tfds_pictures),
                            input_pipeline='stream', train_split='train[:75%]',
                            eval_split='validation', image_key='picture', label_key='kind',
                            image_size=20, batch_size=8)
  inputs = data.load_configured_input(config)
  assert inputs.pipeline == 'stream' and inputs.num_train == 30
  assert inputs.class_names == CLASSES and inputs.image_shape == (20, 20, 3)
  batch = next(inputs.train_batches(0, global_batch_size=8, local_device_count=2))
  assert batch['image'].shape == (2, 4, 20, 20, 3) and batch['label'].max() < 4
  passes = list(inputs.eval_batches(global_batch_size=8, local_device_count=2))
  assert sum(b['mask'].sum() for b in passes) == 12
  # The same dataset into memory, resized on the way in.
  config.input_pipeline = 'memory'
  memory = data.load_configured_input(config)
  assert memory.pipeline == 'memory' and memory.num_train == 30
  assert memory.image_shape == (20, 20, 3)
  assert 'tensorflow' not in sys.modules


def test_a_missing_tfds_split_or_feature_is_named(tfds_pictures):
  config = small_cnn_config(dataset='mlfun_pictures', data_dir=str(tfds_pictures),
                            input_pipeline='stream', image_key='picture', label_key='kind',
                            image_size=12, eval_split='dev')
  with pytest.raises(UserError, match="no usable 'dev' split"):
    data.load_configured_input(config)
  config.eval_split, config.label_key = 'validation', 'label'
  with pytest.raises(UserError, match="no 'label' feature"):
    data.load_configured_input(config)


def test_the_gan_reads_the_same_images_streamed():
  from mlfun_jax.gan import config as gan_config  # pylint: disable=g-import-not-at-top
  inputs = {}
  for pipeline in ('memory', 'stream'):
    config = gan_config.defaults()
    config.input_pipeline = pipeline
    inputs[pipeline] = data.load_configured_input(config)
  memory, streamed = inputs['memory'], inputs['stream']
  assert (memory.pipeline, streamed.pipeline) == ('memory', 'stream')
  assert streamed.image_shape == memory.image_shape == (28, 28, 1)
  np.testing.assert_array_equal(streamed.test_images(300), memory.test_images(300))
  layout = dict(global_batch_size=64, local_device_count=2)
  np.testing.assert_array_equal(next(streamed.train_batches(7, **layout))['image'],
                                next(memory.train_batches(7, **layout))['image'])
