"""In-memory image splits and deterministic numpy batching laid out for pmap.

Every batch is a dict of numpy arrays with a leading device axis:
`{'image': uint8 [D, b, H, W, C], 'label': int32 [D, b]}` (plus `'mask': float32 [D, b]` for eval),
where D is the number of local devices and b the per-device batch.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from mlfun_jax.core.errors import UserError
from mlfun_jax.core.layout import check_batch_size
from mlfun_jax.core.layout import check_process

Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySplit:
  """One split held in memory.

  Attributes:
    images: uint8 [N, H, W, C], values 0..255.
    labels: int32 [N].
  """
  images: np.ndarray
  labels: np.ndarray

  def __post_init__(self):
    if self.images.ndim != 4 or self.images.dtype != np.uint8:
      raise ValueError(f'images must be uint8 [N, H, W, C], got {self.images.dtype} '
                       f'{self.images.shape}')
    if self.labels.dtype != np.int32 or self.labels.shape != self.images.shape[:1]:
      raise ValueError(f'labels must be int32 [{self.images.shape[0]}], got {self.labels.dtype} '
                       f'{self.labels.shape}')

  def __len__(self) -> int:
    return int(self.labels.shape[0])


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
  """A classification dataset held in memory.

  Attributes:
    name: the name it was loaded under, e.g. 'embedded_mnist'.
    train: training split.
    test: held-out split.
    class_names: one name per class; labels lie in 0..len(class_names)-1.
    info: facts about where the data came from, e.g. for an image folder {'source': path,
      'num_skipped': 2, 'skipped': [...], 'cache': path}; empty when there is nothing to say.
  """
  name: str
  train: ArraySplit
  test: ArraySplit
  class_names: tuple[str, ...]
  info: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.train.images.shape[1:] != self.test.images.shape[1:]:
      raise UserError(f'dataset {self.name!r}: train images are {self.train.images.shape[1:]} but '
                      f'test images are {self.test.images.shape[1:]}')
    for split_name, split in (('train', self.train), ('test', self.test)):
      if len(split) and (split.labels.min() < 0 or split.labels.max() >= self.num_classes):
        raise UserError(f'dataset {self.name!r}: {split_name} labels span '
                        f'{split.labels.min()}..{split.labels.max()}, outside 0..'
                        f'{self.num_classes - 1} for {self.num_classes} classes')

  @property
  def image_shape(self) -> tuple[int, int, int]:
    """(H, W, C) of every image."""
    h, w, c = self.train.images.shape[1:]
    return int(h), int(w), int(c)

  @property
  def num_classes(self) -> int:
    return len(self.class_names)


def _permutation(num_examples: int, seed: int, epoch: int,
                 cache: dict[int, np.ndarray]) -> np.ndarray:
  """int64 [N]: the order of epoch `epoch`; `cache` keeps the latest two epochs."""
  if epoch not in cache:
    cache[epoch] = np.random.default_rng((seed, epoch)).permutation(num_examples)
    for old in [e for e in cache if e < epoch - 1]:
      del cache[old]
  return cache[epoch]


def _stream_indices(num_examples: int, seed: int, start: int, stop: int,
                    cache: dict[int, np.ndarray]) -> np.ndarray:
  """int64 [stop - start]: positions [start, stop) of the endless concatenation of permutations."""
  out = np.empty(stop - start, np.int64)
  pos = start
  while pos < stop:
    epoch, offset = divmod(pos, num_examples)
    take = min(num_examples - offset, stop - pos)
    out[pos - start:pos - start + take] = _permutation(num_examples, seed, epoch, cache)[
        offset:offset + take]
    pos += take
  return out


def gather(split: ArraySplit, indices: np.ndarray, local_device_count: int) -> Batch:
  """Images and labels at `indices` [L], laid out [D, L / D, ...]."""
  shape = (local_device_count, len(indices) // local_device_count)
  return {'image': split.images[indices].reshape(shape + split.images.shape[1:]),
          'label': split.labels[indices].reshape(shape)}


def check_train_stream(num_examples: int, global_batch_size: int, seed: int, start_step: int,
                       process_index: int, process_count: int, local_device_count: int) -> int:
  """This process' share of each global batch (B / P), after checking the arguments of a
  training stream (`train_batches`, `stream.train_batches`).

  Raises:
    UserError: B does not divide by P * D, there are no examples, or seed is negative.
  """
  check_batch_size(global_batch_size, process_count=process_count,
                   local_device_count=local_device_count)
  check_process(process_index, process_count)
  if num_examples == 0:
    raise UserError('the training split is empty: no batches to draw')
  if seed < 0:
    raise UserError(f'seed {seed} must be non-negative (config field seed)')
  if start_step < 0:
    raise ValueError(f'start_step {start_step} must be non-negative')
  return global_batch_size // process_count


def first_epoch_flips(num_examples: int, seed: int) -> np.ndarray:
  """bool [N]: which examples `train_batches` flips in epoch 0 with alternate_flips (half at
  random, from `seed`)."""
  return np.random.default_rng((seed, 1 << 20)).random(num_examples) < 0.5


def train_batches(split: ArraySplit, *, global_batch_size: int, seed: int, start_step: int = 0,
                  process_index: int = 0, process_count: int = 1,
                  local_device_count: int = 1, alternate_flips: bool = False) -> Iterator[Batch]:
  """Infinite, deterministic stream of training batches for steps start_step, start_step + 1, ...

  The data is an endless concatenation of per-epoch permutations (epoch e permuted with
  `np.random.default_rng((seed, e))`) and global batch s is elements [s*B, (s+1)*B) of that stream:
  batches may straddle epochs, no example is skipped or repeated within an epoch, and batch s
  depends only on (seed, s), so resuming at start_step gives exactly the batches of a straight run.
  Each process takes the contiguous slice [p*B/P, (p+1)*B/P) of every global batch.
  With `alternate_flips` each batch also holds 'flip' bool [D, B/(P*D)]: example i is flipped in
  epoch e when `first_epoch_flips`[i] differs from e's parity (every example flipped in every
  other epoch; the CIFAR-10 speedrun's alternating flips).

  Yields:
    {'image': uint8 [D, B/(P*D), H, W, C], 'label': int32 [D, B/(P*D)]}, D = local_device_count.

  Raises:
    UserError: B does not divide by P * D, the split is empty, or seed is negative.
  """
  local_batch = check_train_stream(len(split), global_batch_size, seed, start_step, process_index,
                                   process_count, local_device_count)

  first_flips = first_epoch_flips(len(split), seed) if alternate_flips else None

  def generate() -> Iterator[Batch]:
    cache: dict[int, np.ndarray] = {}
    step = start_step
    while True:
      start = step * global_batch_size + process_index * local_batch
      indices = _stream_indices(len(split), seed, start, start + local_batch, cache)
      batch = gather(split, indices, local_device_count)
      if first_flips is not None:
        odd_epoch = (np.arange(start, start + local_batch) // len(split)) % 2 == 1
        batch['flip'] = (first_flips[indices] != odd_epoch).reshape(batch['label'].shape)
      yield batch
      step += 1

  return generate()


def num_eval_batches(num_examples: int, *, global_batch_size: int, process_count: int = 1) -> int:
  """Batches each process yields in `eval_batches`: ceil(ceil(N / P) / (B / P))."""
  check_batch_size(global_batch_size, process_count=process_count, local_device_count=1)
  local_batch = global_batch_size // process_count
  per_process = -(-num_examples // process_count)
  return -(-per_process // local_batch)


def eval_batches(split: ArraySplit, *, global_batch_size: int, process_index: int = 0,
                 process_count: int = 1, local_device_count: int = 1) -> Iterator[Batch]:
  """One pass over the split in order, every example exactly once over all processes.

  Process p takes examples p::P. Every process yields the same number of batches
  (`num_eval_batches`) so pmap collectives line up; the last batch(es) are padded with copies of
  example 0, marked by mask 0.0.

  Yields:
    {'image': uint8 [D, b, H, W, C], 'label': int32 [D, b], 'mask': float32 [D, b]} with
    b = B / (P * D); mask is 1.0 for real examples, 0.0 for padding.

  Raises:
    UserError: B does not divide by P * D.
  """
  check_batch_size(global_batch_size, process_count=process_count,
                   local_device_count=local_device_count)
  check_process(process_index, process_count)
  local_batch = global_batch_size // process_count
  local_indices = np.arange(process_index, len(split), process_count)
  num_batches = num_eval_batches(len(split), global_batch_size=global_batch_size,
                                 process_count=process_count)

  def generate() -> Iterator[Batch]:
    for b in range(num_batches):
      real = local_indices[b * local_batch:(b + 1) * local_batch]
      indices = np.zeros(local_batch, np.int64)
      indices[:len(real)] = real
      mask = np.zeros(local_batch, np.float32)
      mask[:len(real)] = 1.0
      batch = gather(split, indices, local_device_count)
      batch['mask'] = mask.reshape(batch['label'].shape)
      yield batch

  return generate()
