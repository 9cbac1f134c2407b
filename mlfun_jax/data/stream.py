"""The streamed input pipeline: grain over random-access sources, each process reading its share.

Nothing is held whole in memory: a source (`records.RecordSource` over array_record shards of an
image folder, a TFDS `data_source`, or an in-memory split) is read one example at a time. The
training stream is the one the in-memory path draws (`arrays.train_batches`): an endless
concatenation of per-epoch permutations (`np.random.default_rng((seed, epoch))`), global batch s
being positions [s*B, (s+1)*B) of it and process p reading only positions [s*B + p*B/P,
s*B + (p+1)*B/P). The stream is a pure function of the position, so the position is all a
checkpoint needs to hold (`examples_read`, saved by the loop): a resumed run reads exactly the
batches a straight run reads, on any number of processes and devices with the same global batch.

Reading, decoding, resizing and cropping run in grain's worker threads (`workers`), which read
ahead of the training step (`prefetch` batches); `core.train` then puts the next batch on the
devices while the current step runs. Crops for training draw from
`np.random.default_rng((seed, position, 1))`: the same pixels whatever the threads and processes.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from PIL import Image

from mlfun_jax.core.errors import UserError
from mlfun_jax.core.layout import check_batch_size
from mlfun_jax.core.layout import check_process
from mlfun_jax.data import arrays
from mlfun_jax.data import images as images_lib

Batch = dict[str, np.ndarray]
Example = tuple[np.ndarray, int]
CROPS = ('center', 'random')
STATS_SAMPLE = 10_000  # Training images the channel mean and std are measured on.


class ArraySource:
  """An in-memory split as a random-access source: `source[i]` -> (uint8 [H, W, C], label)."""

  def __init__(self, split):
    self._split = split

  def __len__(self) -> int:
    return len(self._split)

  def __getitem__(self, index: int) -> Example:
    return self._split.images[index], int(self._split.labels[index])


class CountingSource:
  """Wraps a source and records which indices were read (for tests and benchmarks)."""

  def __init__(self, source: Sequence[Example]):
    self._source = source
    self._lock = threading.Lock()
    self.read: list[int] = []

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> Example:
    with self._lock:
      self.read.append(int(index))
    return self._source[index]


def _target(image_size: int | Sequence[int]) -> tuple[int, int]:
  """(height, width) from an int side or a (height, width) pair."""
  if isinstance(image_size, (int, np.integer)):
    return int(image_size), int(image_size)
  height, width = image_size
  return int(height), int(width)


def _to_pil(pixels: np.ndarray) -> Image.Image:
  return Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)


def _as_array(image: Image.Image, channels: int) -> np.ndarray:
  pixels = np.asarray(image, np.uint8)
  return pixels.reshape(pixels.shape[:2] + (channels,))


def center_crop(pixels: np.ndarray, image_size: int | Sequence[int]) -> np.ndarray:
  """uint8 [H, W, C] -> uint8 [h, w, C] (`image_size`): shorter side scaled, centre kept
  (`images.resize_and_center_crop`; an image of that size already is returned as it is)."""
  height, width = _target(image_size)
  if pixels.shape[:2] == (height, width):
    return pixels
  image = images_lib.resize_and_center_crop(_to_pil(pixels), (width, height))
  return _as_array(image, pixels.shape[-1])


def random_resized_crop(pixels: np.ndarray, image_size: int | Sequence[int],
                        rng: np.random.Generator, scale: tuple[float, float] = (0.25, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
  """uint8 [H, W, C] -> uint8 [h, w, C]: a random box of `scale` of the area and aspect `ratio`
  (Inception-style, as ImageNet training crops), resized; the centre crop after 10 misses."""
  height, width = _target(image_size)
  h, w = pixels.shape[:2]
  for _ in range(10):
    area = h * w * rng.uniform(*scale)
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
    box_w, box_h = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
    if 0 < box_w <= w and 0 < box_h <= h:
      left, top = int(rng.integers(0, w - box_w + 1)), int(rng.integers(0, h - box_h + 1))
      image = _to_pil(pixels).resize((width, height), Image.Resampling.BILINEAR,
                                     box=(left, top, left + box_w, top + box_h))
      return _as_array(image, pixels.shape[-1])
  return center_crop(pixels, image_size)


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """How each example becomes a fixed-size image: crop 'center' (scale the shorter side, keep the
  centre) or 'random' (`random_resized_crop`, training only) to `image_size` (None: images must
  already share one size), checking `channels`."""
  image_size: Any = None
  channels: int = 3
  crop: str = 'center'

  def __call__(self, example: Example, rng: np.random.Generator | None) -> Example:
    pixels, label = example
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
      pixels = pixels[..., None]
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[-1] != self.channels:
      raise UserError(f'an image is {pixels.dtype} {pixels.shape}, expected uint8 '
                      f'[H, W, {self.channels}] (config field channels)')
    if self.image_size is not None:
      if self.crop == 'random' and rng is not None:
        pixels = random_resized_crop(pixels, self.image_size, rng)
      else:
        pixels = center_crop(pixels, self.image_size)
    return pixels, label


class _TrainPositions:
  """This process' positions of the endless training stream from `start_step` on, as a sequence
  grain can read by index: element j is global position (start_step + j // b) * B + p * b + j % b
  (b = B / P), holding example permutation_{epoch}[position % N]."""

  def __init__(self, num_examples: int, seed: int, global_batch: int, local_batch: int,
               process_index: int, start_step: int):
    self._n, self._seed = num_examples, seed
    self._global, self._local = global_batch, local_batch
    self._first = start_step * global_batch + process_index * local_batch
    self._lock = threading.Lock()
    self._permutations: dict[int, np.ndarray] = {}

  def __len__(self) -> int:
    return 2**40  # Endless, for every purpose here.

  def position(self, j: int) -> int:
    step, offset = divmod(j, self._local)
    return self._first + step * self._global + offset

  def _permutation(self, epoch: int) -> np.ndarray:
    with self._lock:  # grain's threads share the cache of the latest two epochs.
      return arrays._permutation(self._n, self._seed, epoch, self._permutations)  # pylint: disable=protected-access

  def __getitem__(self, j: int) -> tuple[int, int]:
    """(global position, example index)."""
    position = self.position(int(j))
    epoch, offset = divmod(position, self._n)
    return position, int(self._permutation(epoch)[offset])


def _read_options(workers: int, prefetch: int):
  """grain's options: `workers` threads (0: one per core), `prefetch` batches read ahead (0: one
  per thread)."""
  import grain  # pylint: disable=g-import-not-at-top
  threads = max(1, workers or (os.cpu_count() or 1))
  return grain.ReadOptions(num_threads=threads, prefetch_buffer_size=max(1, prefetch or threads))


def _stack(examples: list[Example], local_device_count: int) -> Batch:
  images = np.stack([e[0] for e in examples])
  labels = np.asarray([e[1] for e in examples], np.int32)
  shape = (local_device_count, len(examples) // local_device_count)
  return {'image': images.reshape(shape + images.shape[1:]), 'label': labels.reshape(shape)}


def train_batches(source: Sequence[Example], preprocess: Preprocess, *, global_batch_size: int,
                  seed: int, start_step: int = 0, process_index: int = 0, process_count: int = 1,
                  local_device_count: int = 1, workers: int = 0,
                  prefetch: int = 0) -> Iterator[Batch]:
  """Endless training batches for steps start_step, start_step + 1, ..., read from `source`.

  The same batches as `arrays.train_batches` over the same examples (before `preprocess`), from
  this process' positions only (module docstring). `workers` threads read and preprocess
  (0: one per core) whole batches, `prefetch` batches ahead of the one taken (0: one per worker).

  Yields:
    {'image': uint8 [D, b, H, W, C], 'label': int32 [D, b]}, b = B / (P * D).

  Raises:
    UserError: B does not divide by P * D, the source is empty, or seed is negative.
  """
  import grain  # pylint: disable=g-import-not-at-top
  local_batch = arrays.check_train_stream(len(source), global_batch_size, seed, start_step,
                                          process_index, process_count, local_device_count)
  positions = _TrainPositions(len(source), seed, global_batch_size, local_batch, process_index,
                              start_step)

  def read(item: tuple[int, int]) -> Example:
    position, index = item
    rng = np.random.default_rng((seed, position, 1)) if preprocess.crop == 'random' else None
    return preprocess(source[index], rng)

  dataset = grain.MapDataset.source(positions).map(read).batch(
      local_batch, batch_fn=lambda examples: _stack(examples, local_device_count))
  return iter(dataset.to_iter_dataset(_read_options(workers, prefetch)))


def eval_batches(source: Sequence[Example], preprocess: Preprocess, *, global_batch_size: int,
                 process_index: int = 0, process_count: int = 1, local_device_count: int = 1,
                 workers: int = 0, prefetch: int = 0) -> Iterator[Batch]:
  """One pass over `source` in order, every example once over all processes (process p reads
  examples p::P), laid out and padded as `arrays.eval_batches` (mask 0.0 on padding copies of example 0);
  centre crops.

  Yields:
    {'image': uint8 [D, b, H, W, C], 'label': int32 [D, b], 'mask': float32 [D, b]}.
  """
  import grain  # pylint: disable=g-import-not-at-top
  check_batch_size(global_batch_size, process_count=process_count,
                   local_device_count=local_device_count)
  check_process(process_index, process_count)
  local_batch = global_batch_size // process_count
  mine = np.arange(process_index, len(source), process_count)
  num_batches = arrays.num_eval_batches(len(source), global_batch_size=global_batch_size,
                                        process_count=process_count)
  padded = np.zeros(num_batches * local_batch, np.int64)
  padded[:len(mine)] = mine  # Padding: copies of example 0.
  real = np.arange(len(padded)) < len(mine)
  center = dataclasses.replace(preprocess, crop='center')

  def read(j: int) -> tuple[Example, bool]:
    return center(source[int(padded[j])], None), bool(real[j])

  def stack(items: list[tuple[Example, bool]]) -> Batch:
    batch = _stack([example for example, _ in items], local_device_count)
    batch['mask'] = np.asarray([r for _, r in items], np.float32).reshape(batch['label'].shape)
    return batch

  dataset = grain.MapDataset.range(len(padded)).map(read).batch(local_batch, batch_fn=stack)
  return iter(dataset.to_iter_dataset(_read_options(workers, prefetch)))


def channel_stats_of(source: Sequence[Example], preprocess: Preprocess,
                     sample: int = STATS_SAMPLE) -> tuple[list[float], list[float]]:
  """Per-channel mean and std of the centre-cropped training images: all of them when there are
  at most `sample`, else `sample` drawn evenly (every N/sample-th)."""
  from mlfun_jax.data import image_stats  # pylint: disable=g-import-not-at-top
  n = len(source)
  indices = np.arange(n) if n <= sample else np.linspace(0, n - 1, sample).astype(np.int64)
  center = dataclasses.replace(preprocess, crop='center')
  images = np.stack([center(source[int(i)], None)[0] for i in indices])
  return image_stats.channel_stats(images)


@dataclasses.dataclass(frozen=True, eq=False)
class StreamedDataset:
  """A classification dataset read from random-access sources, never held whole.

  Attributes:
    name: the dataset's name.
    train, test: sources; `source[i]` -> (uint8 [H, W, C] of any size, int label).
    class_names: one name per class.
    preprocess: how an example becomes a fixed-size image (`Preprocess`).
    image_shape: (H, W, C) of every preprocessed image.
    info: facts about where the data came from (records folder, skipped files, ...).
  """
  name: str
  train: Sequence[Example]
  test: Sequence[Example]
  class_names: tuple[str, ...]
  preprocess: Preprocess
  image_shape: tuple[int, int, int]
  info: dict = dataclasses.field(default_factory=dict)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def first_shape(source: Sequence[Example], preprocess: Preprocess, what: str) -> tuple[int, ...]:
  """(H, W, C) of the first preprocessed example; UserError for an empty source."""
  if len(source) == 0:
    raise UserError(f'{what} is empty')
  return tuple(int(d) for d in preprocess(source[0], None)[0].shape)


def mapped(source: Sequence[Any], fn: Callable[[Any], Example]) -> Sequence[Example]:
  """A source whose items are `fn(item)` of `source`'s."""

  class _Mapped:
    def __len__(self):
      return len(source)

    def __getitem__(self, index):
      return fn(source[index])

  return _Mapped()
