"""An image run's input (classification, GAN), in memory or streamed (`config.input_pipeline`).

'memory' reads the whole dataset into arrays once (`registry.load_image_dataset`): the fastest for
data that fits. 'stream' never holds it whole (`stream`): image folders and zips are decoded once
into array_record shards (`records`), TFDS datasets are read through `tfds.data_source`, and
every process reads only its own share of each batch. 'auto' (the default) streams when the
decoded dataset would take more than a quarter of the memory available. Both paths draw the same
batches from the same examples.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mlfun_jax.core.errors import UserError
from mlfun_jax.data import arrays
from mlfun_jax.data import records
from mlfun_jax.data import registry
from mlfun_jax.data import stream
from mlfun_jax.data import tfds_source

PIPELINES = ('auto', 'memory', 'stream')
MEMORY_SHARE = 0.25  # 'auto' streams a dataset whose decoded images exceed this share of memory.


@dataclasses.dataclass(frozen=True, eq=False)
class Inputs:
  """What a classification task reads, whichever the pipeline.

  Attributes:
    name, class_names, image_shape ((H, W, C) of every batch image), info: as `ImageDataset`.
    pipeline: 'memory' or 'stream'.
    num_train: training examples.
    mean, std: per-channel statistics of the training images (`stream.channel_stats_of`).
    train_batches: (start_step, **`core.train.batch_layout`) -> endless batch iterator.
    eval_batches: (**layout) -> one pass over the evaluation split.
    test_images: limit -> uint8 [min(limit, N), H, W, C], the first evaluation images.
    train_images: limit -> uint8 [min(limit, N), H, W, C], the first training images (in split
      order, not shuffled).
    alternate_flips: whether `train_batches` can carry `arrays.train_batches`' 'flip' field (the
      in-memory pipeline can).
  """
  name: str
  class_names: tuple[str, ...]
  image_shape: tuple[int, int, int]
  info: dict
  pipeline: str
  num_train: int
  mean: list[float]
  std: list[float]
  train_batches: Callable[..., Iterator[arrays.Batch]]
  eval_batches: Callable[..., Iterator[arrays.Batch]]
  test_images: Callable[[int], np.ndarray]
  train_images: Callable[[int], np.ndarray]
  alternate_flips: bool = False

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def available_memory() -> int:
  """Bytes of memory available to new allocations (MemAvailable; else physical memory)."""
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')


def _from_memory(dataset: arrays.ImageDataset, config, pipeline: str) -> Inputs:
  """An in-memory dataset, batched from arrays ('memory') or through the stream ('stream')."""
  from mlfun_jax.data import image_stats  # pylint: disable=g-import-not-at-top  (imports jax)
  mean, std = image_stats.channel_stats(dataset.train.images)
  if pipeline == 'memory':
    augment = config.get('augment', {})  # Flips alternate only when there are flips.
    alternate = bool(augment.get('flip', False) and augment.get('alternate_flips', False))
    train = lambda start, **layout: arrays.train_batches(dataset.train, seed=config.seed,
                                                         start_step=start,
                                                         alternate_flips=alternate, **layout)
    evaluate = lambda **layout: arrays.eval_batches(dataset.test, **layout)
  else:
    preprocess = stream.Preprocess(None, dataset.image_shape[-1], 'center')
    train, evaluate = _streams(stream.ArraySource(dataset.train),
                               stream.ArraySource(dataset.test), preprocess, config)
  return Inputs(dataset.name, dataset.class_names, dataset.image_shape, dataset.info, pipeline,
                len(dataset.train), mean, std, train, evaluate,
                lambda limit: dataset.test.images[:limit],
                lambda limit: dataset.train.images[:limit], alternate_flips=pipeline == 'memory')


def _streams(train_source, test_source, preprocess: stream.Preprocess, config):
  workers = config.input_workers

  def train(start, **layout):
    return stream.train_batches(train_source, preprocess, seed=config.seed, start_step=start,
                                workers=workers, **layout)

  def evaluate(**layout):
    return stream.eval_batches(test_source, preprocess, workers=workers, **layout)

  return train, evaluate


def _streamed(name: str, train_source, test_source, class_names, preprocess, config,
              info: dict) -> Inputs:
  shape = stream.first_shape(train_source, preprocess, f'the training split of {name!r}')
  mean, std = stream.channel_stats_of(train_source, preprocess)
  train, evaluate = _streams(train_source, test_source, preprocess, config)
  center = dataclasses.replace(preprocess, crop='center')

  def first_images(source, limit: int) -> np.ndarray:
    count = min(limit, len(source))
    return np.stack([center(source[i], None)[0] for i in range(count)]) if count else (
        np.zeros((0,) + shape, np.uint8))

  return Inputs(name, tuple(class_names), shape, info, 'stream', len(train_source), mean, std,
                train, evaluate, lambda limit: first_images(test_source, limit),
                lambda limit: first_images(train_source, limit))


def _side_pixels(image_size) -> int | None:
  if image_size is None:
    return None
  height, width = stream._target(image_size)  # pylint: disable=protected-access
  return height * width


def _folder_inputs(config, source: str, pipeline: str, process_index: int,
                   process_count: int) -> Inputs:
  from mlfun_jax.data import image_folder  # pylint: disable=g-import-not-at-top
  if pipeline == 'auto':
    count, pixels = _count_folder(source)
    per_image = (_side_pixels(config.image_size) or pixels) * config.channels
    pipeline = 'stream' if count * per_image > MEMORY_SHARE * available_memory() else 'memory'
  if pipeline == 'memory':
    size = config.image_size
    if size is not None and not isinstance(size, int):
      raise UserError(f'config field image_size={tuple(size)!r}: image folders read into memory '
                      "take one side; use input_pipeline 'stream' for (height, width)")
    dataset = image_folder.load_image_folder(
        source, name=config.dataset, image_size=size, channels=config.channels,
        validation_fraction=config.validation_fraction, split_seed=config.split_seed,
        bad_images=config.bad_images, cache_dir=config.cache_dir)
    return _from_memory(dataset, config, 'memory')
  side = config.image_size if isinstance(config.image_size, int) else (
      None if config.image_size is None else max(config.image_size))
  folder, info = records.prepare_image_folder(
      source, name=config.dataset, image_size=side, channels=config.channels,
      validation_fraction=config.validation_fraction, split_seed=config.split_seed,
      bad_images=config.bad_images, cache_dir=config.cache_dir, process_index=process_index,
      process_count=process_count)
  if info['num_shapes'] > 1 and config.image_size is None:
    raise UserError(f'the images of {source!r} have {info["num_shapes"]} sizes (e.g. '
                    f'{info["shapes"][0]} and {info["shapes"][1]}): set config field image_size '
                    'to resize and crop them to one')
  splits = info['splits']
  preprocess = stream.Preprocess(config.image_size, config.channels, config.train_crop)
  return _streamed(info['name'], records.RecordSource(folder, splits['train']['shards']),
                   records.RecordSource(folder, splits['test']['shards']), info['class_names'],
                   preprocess, config,
                   {'source': info['source'], 'records': folder, 'num_skipped': len(info['skipped']),
                    'skipped': info['skipped']})


def _count_folder(source: str) -> tuple[int, int]:
  """(number of images, pixels of the first) of an image folder or zip, without decoding all."""
  from mlfun_jax.data import image_folder  # pylint: disable=g-import-not-at-top
  described = image_folder.open_source(source)
  paths = described.image_paths()
  if not paths:
    return 0, 0
  reader = image_folder._Reader(described.path, described.is_zip)  # pylint: disable=protected-access
  try:
    first = image_folder._decode_image(reader(paths[0]), 3, None)  # pylint: disable=protected-access
  except Exception:  # pylint: disable=broad-except  (the decode pass names bad files)
    return len(paths), 0
  finally:
    reader.close()
  return len(paths), first.shape[0] * first.shape[1]


def _tfds_inputs(config, data_dir: str | None, pipeline: str) -> Inputs:
  sources, class_names, image_feature = tfds_source.open_splits(
      config.dataset, data_dir, (config.train_split, config.eval_split), config.image_key,
      config.label_key)
  train_source, test_source = sources[config.train_split], sources[config.eval_split]
  if pipeline == 'auto':
    shape = tuple(getattr(image_feature, 'shape', ()) or ())
    known = all(d for d in shape[:2]) and len(shape) >= 2
    pixels = _side_pixels(config.image_size) or (shape[0] * shape[1] if known else 500 * 375)
    bytes_ = (len(train_source) + len(test_source)) * pixels * config.channels
    pipeline = 'stream' if bytes_ > MEMORY_SHARE * available_memory() else 'memory'
  if pipeline == 'memory':
    dataset = tfds_source.load_tfds(
        config.dataset, data_dir, train_split=config.train_split, eval_split=config.eval_split,
        image_key=config.image_key, label_key=config.label_key, image_size=config.image_size)
    return _from_memory(dataset, config, 'memory')
  image_key, label_key = config.image_key, config.label_key
  as_example = lambda record: (np.asarray(record[image_key]), int(record[label_key]))
  if not class_names:
    raise UserError(f'dataset {config.dataset!r}: its {label_key!r} feature has no class names; '
                    "the streamed path needs them (input_pipeline 'memory' counts the labels)")
  preprocess = stream.Preprocess(config.image_size, config.channels, config.train_crop)
  return _streamed(config.dataset, stream.mapped(train_source, as_example),
                   stream.mapped(test_source, as_example), class_names, preprocess, config,
                   {'tfds_splits': [config.train_split, config.eval_split]})


def load_configured_input(config: Any, process_index: int = 0, process_count: int = 1) -> Inputs:
  """The input of an image config (classification, GAN): its dataset fields (`data.config`) and
  input_pipeline, input_workers, train_split, eval_split, image_key, label_key, train_crop.

  Raises:
    UserError: naming the field or file at fault (see `registry.load_image_dataset`).
  """
  pipeline = config.input_pipeline
  if pipeline not in PIPELINES:
    raise UserError(f'config field input_pipeline={pipeline!r} must be one of '
                    f'{", ".join(PIPELINES)}')
  kind, where = registry.resolve(config.dataset, config.data_dir)
  if kind == 'folder':
    return _folder_inputs(config, where, pipeline, process_index, process_count)
  if kind == 'tfds':
    return _tfds_inputs(config, where, pipeline)
  dataset = registry.load_configured_dataset(config)  # Built-in or IDX: small, in memory.
  return _from_memory(dataset, config, 'stream' if pipeline == 'stream' else 'memory')
