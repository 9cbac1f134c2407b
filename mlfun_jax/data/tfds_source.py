"""Image classification datasets from an already prepared TFDS data_dir, read fully into memory.

Reads through `tfds.data_source` (array_record random access, no TensorFlow) in chunks of
`__getitems__`, the fast path here. Never downloads. tensorflow_datasets is imported lazily; it
comes with the tfds extra (pip install 'mlfun_jax[tfds]'), and without it these functions raise one
line naming that extra.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from mlfun_jax.core import extras
from mlfun_jax.data.arrays import ArraySplit, ImageDataset
from mlfun_jax.core.errors import UserError

_CHUNK = 10_000
SPLITS = ('train', 'test')


def base_name(name: str) -> str:
  """'cifar10/config:1.0.0' -> 'cifar10'."""
  return re.split(r'[/:]', name, maxsplit=1)[0]


def available() -> bool:
  """True when tensorflow_datasets (the tfds extra) is installed."""
  return extras.available('tensorflow_datasets')


def _tfds(needed_for: str):
  return extras.require('tensorflow_datasets', needed_for)


def catalog_names() -> list[str]:
  """Names in the installed TFDS catalog (no community datasets: that needs the network)."""
  tfds = _tfds('the TFDS catalog of datasets')
  return tfds.list_builders(with_community_datasets=False)


def _read_split(source: Sequence[Any], name: str, split: str, image_key: str = 'image',
                label_key: str = 'label', image_size=None) -> ArraySplit:
  """All records of one split -> images uint8 [N, H, W, C], labels int32 [N] (each image centre
  cropped to `image_size` when given)."""
  from mlfun_jax.data import stream  # pylint: disable=g-import-not-at-top
  fit = (lambda x: x) if image_size is None else (
      lambda x: stream.center_crop(x if x.ndim == 3 else x[..., None], image_size))
  images, labels = [], []
  for start in range(0, len(source), _CHUNK):
    records = source.__getitems__(list(range(start, min(start + _CHUNK, len(source)))))
    try:
      chunk = np.stack([fit(np.asarray(r[image_key])) for r in records])
    except ValueError as e:
      raise UserError(f'dataset {name!r} split {split!r}: images differ in shape, cannot hold '
                      f'them in one array ({e})') from e
    images.append(chunk[..., None] if chunk.ndim == 3 else chunk)
    labels.append(np.asarray([r[label_key] for r in records]))
  if not images:
    raise UserError(f'dataset {name!r} split {split!r} is empty')
  images, labels = np.concatenate(images), np.concatenate(labels)
  if images.ndim != 4 or images.dtype != np.uint8:
    raise UserError(f'dataset {name!r} split {split!r}: images are {images.dtype} '
                    f'{images.shape[1:]}, expected uint8 [H, W] or [H, W, C]')
  if labels.ndim != 1 or labels.dtype.kind not in 'iu':
    raise UserError(f'dataset {name!r} split {split!r}: labels are {labels.dtype} '
                    f'{labels.shape[1:]}, expected integer class ids')
  return ArraySplit(images=images, labels=labels.astype(np.int32))


def open_splits(name: str, data_dir: str | None, splits: Sequence[str], image_key: str = 'image',
                label_key: str = 'label') -> tuple[dict[str, Any], tuple[str, ...], Any]:
  """Random-access TFDS data sources of `splits` (names or slices such as 'train[:90%]',
  'validation'), with the class names of the `label_key` feature and the `image_key` feature.

  Raises:
    UserError: as `load_tfds`.
  """
  tfds = _tfds(f'the TFDS dataset {name!r}')
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except (tfds.core.registered.DatasetNotFoundError, ValueError, AssertionError) as e:
    # Unknown name or config: DatasetNotFoundError / ValueError; unknown version: AssertionError.
    raise UserError(f'dataset {name!r}: {str(e).splitlines()[0]}') from e
  if not builder.is_prepared():
    raise UserError(f'dataset {name!r} is not prepared in {str(builder.data_dir)!r} and this '
                    'machine cannot download: prepare it where there is network and copy it there, '
                    'or set another data_dir (config field data_dir)')
  features = builder.info.features
  missing = [key for key in (image_key, label_key) if key not in features.keys()]
  if missing:
    raise UserError(f'dataset {name!r} has no {" or ".join(map(repr, missing))} feature (it has '
                    f'{", ".join(features.keys())}): set config fields image_key and label_key '
                    'to an image classification dataset\'s features')
  sources = {}
  for split in splits:
    try:
      sources[split] = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except (KeyError, ValueError, AssertionError) as e:
      raise UserError(f'dataset {name!r} in {str(builder.data_dir)!r} has no usable {split!r} '
                      f'split: {str(e).splitlines()[0] if str(e) else type(e).__name__}') from e
  class_names = getattr(features[label_key], 'names', None) or ()
  return sources, tuple(class_names), features[image_key]


def load_tfds(name: str, data_dir: str | None, *, train_split: str = 'train',
              eval_split: str = 'test', image_key: str = 'image', label_key: str = 'label',
              image_size=None) -> ImageDataset:
  """Reads two splits of a prepared TFDS image dataset into memory.

  Args:
    name: a TFDS catalog name, optionally with config/version ('mnist', 'cifar10:3.0.2').
    data_dir: the TFDS data_dir it was prepared in; None for TFDS's default (~/tensorflow_datasets).
    train_split, eval_split: split names or slices ('train[:90%]', 'validation').
    image_key, label_key: the features holding the image and the class id.
    image_size: None: the images must share one shape; else each is centre cropped to it.

  Returns:
    ImageDataset with images uint8 [N, H, W, C] (grey images get C = 1), labels int32,
    class_names from the label feature.

  Raises:
    UserError: unknown name or config, not prepared (this machine cannot download), no such
      features, a split missing, or images of differing shapes.
  """
  sources, class_names, _ = open_splits(name, data_dir, (train_split, eval_split), image_key,
                                        label_key)
  splits = {split: _read_split(source, name, split, image_key, label_key, image_size)
            for split, source in sources.items()}
  if not class_names:
    top = max(int(s.labels.max()) for s in splits.values())
    class_names = tuple(str(i) for i in range(top + 1))
  return ImageDataset(name=name, train=splits[train_split], test=splits[eval_split],
                      class_names=tuple(class_names))
