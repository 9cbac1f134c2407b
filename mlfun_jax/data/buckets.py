"""Length bucketing for variable-length examples (speech features, sentence pairs).

Every example gets a bucket size (its length rounded up to a configured bucket) and batches hold
examples of one bucket, padded to that size: few distinct shapes are compiled and little of each
batch is padding. Batches are global index batches [B]; each process takes its contiguous slice
(`local_layout`) and lays it out [D, b, ...] itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def bucket_sizes(lengths: np.ndarray, buckets: Sequence[int], multiple: int = 32) -> np.ndarray:
  """int [N]: each length rounded up to the first bucket that holds it (beyond the last bucket: to
  a multiple of `multiple`)."""
  buckets = np.sort(np.asarray(buckets, np.int64))
  over = -(-lengths // multiple) * multiple
  index = np.searchsorted(buckets, lengths)
  return np.where(index < len(buckets), buckets[np.minimum(index, len(buckets) - 1)], over)


def epoch_batches(sizes: np.ndarray, batch_size: int, seed: int, epoch: int
                  ) -> list[tuple[int, np.ndarray]]:
  """Epoch `epoch`'s (bucket size, global indices [batch_size]) batches: each bucket shuffled and
  cut into full batches (the last one topped up from the bucket's start), batches shuffled."""
  rng = np.random.default_rng((seed, epoch))
  batches = []
  for size in np.unique(sizes):
    members = rng.permutation(np.flatnonzero(sizes == size))
    count = -(-len(members) // batch_size)
    padded = np.resize(members, count * batch_size)
    batches += [(int(size), padded[b * batch_size:(b + 1) * batch_size]) for b in range(count)]
  return [batches[i] for i in rng.permutation(len(batches))]


def train_index_batches(sizes: np.ndarray, global_batch_size: int, seed: int, start_step: int = 0
                        ) -> Iterator[tuple[int, np.ndarray]]:
  """Endless (bucket size, global indices [B]) for steps start_step, start_step + 1, ...

  Step s is batch s mod E of epoch s // E (`epoch_batches`, E batches an epoch), so it depends only
  on (seed, s): resuming at start_step gives exactly the batches of a straight run. The first
  epoch is drawn at call time.
  """
  first_epoch = epoch_batches(sizes, global_batch_size, seed, 0)
  per_epoch = len(first_epoch)

  def generate():
    step, cached = start_step, (0, first_epoch)
    while True:
      epoch, offset = divmod(step, per_epoch)
      if cached[0] != epoch:
        cached = (epoch, epoch_batches(sizes, global_batch_size, seed, epoch))
      yield cached[1][offset]
      step += 1

  return generate()


def eval_index_batches(sizes: np.ndarray, global_batch_size: int
                       ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
  """One pass, bucket by bucket in index order: (bucket size, global indices [B], mask float32 [B]).

  Every example appears exactly once with mask 1.0; a bucket's last batch is filled with copies of
  its first example, masked 0.0.
  """
  for size in np.unique(sizes):
    members = np.flatnonzero(sizes == size)
    for start in range(0, len(members), global_batch_size):
      real = members[start:start + global_batch_size]
      indices = np.full(global_batch_size, real[0])
      indices[:len(real)] = real
      mask = (np.arange(global_batch_size) < len(real)).astype(np.float32)
      yield int(size), indices, mask


def local_layout(global_batch_size: int, process_index: int, process_count: int,
                 local_device_count: int) -> tuple[slice, tuple[int, int]]:
  """(rows, shape): process p takes rows [p * B / P, (p + 1) * B / P) of a global batch and lays
  them out as shape (D, B / (P * D))."""
  local = global_batch_size // process_count
  return (slice(process_index * local, (process_index + 1) * local),
          (local_device_count, local // local_device_count))


def padding_share(lengths, padded_lengths) -> float:
  """The share of padded positions: 1 - sum(lengths) / sum(padded_lengths) (0.0 when empty)."""
  total = float(np.sum(padded_lengths))
  return 1.0 - float(np.sum(lengths)) / total if total else 0.0
