"""Sentence pairs for translation: the tab-separated file, source-grouped splits, bucketed batches.

A pairs file has one `source<TAB>target` pair a line (e.g. manythings.org's Tatoeba `spa.txt`:
English<TAB>Spanish; further columns are ignored), read in either direction. Splits are drawn per
distinct source sentence, so the several translations of one sentence all land in one split and
no source sentence is seen in training and evaluated on. Batches hold one length bucket each
(`data.buckets`, bucketed by max(source, target) length) with source and target padded to the
bucket, so each bucket is one compiled shape.

Pairs are (source str, target str) tuples in a list; token ids are int32, PAD 0, BOS 2, EOS 3
(`subwords`). A list of pairs given as anything else raises `checks.InputError`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import arrays
from mlfun_jax.data import buckets as buckets_lib
from mlfun_jax.data import sources
from mlfun_jax.translation import subwords

DIRECTIONS = ("forward", "reverse")
Batch = dict[str, np.ndarray]
Pair = tuple[str, str]


def read_pairs(path: str | os.PathLike, direction: str = "forward") -> list[Pair]:
  """(source, target) of every non-blank line of `path`: columns (0, 1) for 'forward', (1, 0) for
  'reverse'; surrounding whitespace stripped.

  Raises:
    UserError: unknown direction (config field direction), a missing or unreadable file, no pairs,
      or a line that is not UTF-8, has no tab or an empty side (naming the file and line).
  """
  if direction not in DIRECTIONS:
    raise UserError(f"unknown config field direction={direction!r}; choose one of "
                    f"{', '.join(DIRECTIONS)}")
  try:
    with open(path, "rb") as f:
      raw_lines = f.read().splitlines()
  except OSError as e:
    if not os.path.exists(path) and sources.missing_for_path(path):
      raise sources.missing_for_path(path) from None
    raise UserError(f"cannot read sentence pairs file {path}: {e.strerror or e}") from None
  pairs = []
  for number, raw in enumerate(raw_lines, 1):
    try:
      line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as e:
      raise UserError(f"{path} line {number}: not UTF-8 text (byte {e.start})") from None
    if not line.strip():
      continue
    columns = line.split("\t")
    if len(columns) < 2:
      raise UserError(f"{path} line {number}: no tab between source and target: {line[:60]!r}")
    first, second = columns[0].strip(), columns[1].strip()
    if not first or not second:
      side = "first" if not first else "second"
      raise UserError(f"{path} line {number}: the {side} column is empty")
    pairs.append((first, second) if direction == "forward" else (second, first))
  if not pairs:
    raise UserError(f"sentence pairs file {path} holds no pairs")
  return pairs


def check_pairs(pairs: Sequence[Pair], *, name: str = "pairs") -> None:
  """InputError unless `pairs` is a list of (source str, target str) pairs (not one pair)."""
  if isinstance(pairs, (str, bytes)) or not isinstance(pairs, Sequence):
    raise checks.InputError(f"{name}: expected a list of (source, target) str pairs, got "
                            f"{type(pairs).__name__}")
  for pair in pairs:
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2
            and isinstance(pair[0], str) and isinstance(pair[1], str)):
      raise checks.InputError(f"{name}: expected a list of (source, target) str pairs, got an "
                              f"item {str(pair)[:60]!r}")


@dataclasses.dataclass(frozen=True)
class PairSplits:
  """Pairs of the three splits, each in file order."""
  train: list[Pair]
  validation: list[Pair]
  test: list[Pair]


def split_pairs(pairs: Sequence[Pair], validation_fraction: float, test_fraction: float,
                seed: int) -> PairSplits:
  """Seeded split by source sentence: the distinct sources (sorted, then permuted with `seed`) are
  cut into test, validation and train; every pair goes where its source went. The fractions are
  of distinct sources (rounded; at least one source for a positive fraction).

  Raises:
    UserError: a fraction outside [0, 1) or fractions that leave no training source.
  """
  check_pairs(pairs)
  for name, fraction in (("validation_fraction", validation_fraction),
                         ("test_fraction", test_fraction)):
    if not 0.0 <= fraction < 1.0:
      raise UserError(f"config field {name}={fraction} must be in [0, 1)")
  sources = sorted({source for source, _ in pairs})
  counts = [max(1, round(f * len(sources))) if f > 0 else 0
            for f in (test_fraction, validation_fraction)]
  if sum(counts) >= len(sources):
    raise UserError(f"config fields validation_fraction={validation_fraction} and test_fraction="
                    f"{test_fraction} leave none of {len(sources)} source sentences for training")
  order = np.random.default_rng(seed).permutation(len(sources))
  split_of = np.zeros(len(sources), np.int64)  # 0 train, 1 validation, 2 test.
  split_of[order[:counts[0]]] = 2
  split_of[order[counts[0]:sum(counts)]] = 1
  where = dict(zip(sources, split_of.tolist()))
  out = ([], [], [])
  for pair in pairs:
    out[where[pair[0]]].append(pair)
  return PairSplits(*out)


def group_by_source(pairs: Sequence[Pair]) -> list[tuple[str, list[str]]]:
  """(source, all its targets) in order of first appearance: the references of each source.
  `pairs`: a list of (source str, target str)."""
  check_pairs(pairs)
  groups: dict[str, list[str]] = {}
  for source, target in pairs:
    groups.setdefault(source, []).append(target)
  return list(groups.items())


@dataclasses.dataclass(frozen=True, eq=False)
class TokenizedPairs:
  """Token ids of sentence pairs.

  Attributes:
    sources: per pair int32 [n] source ids (no BOS or EOS).
    targets: per pair int32 [m + 2] target ids, BOS ... EOS.
    texts: per pair its (source, target) text.
  """
  sources: list[np.ndarray]
  targets: list[np.ndarray]
  texts: list[Pair]

  def __len__(self) -> int:
    return len(self.texts)

  @classmethod
  def of(cls, pairs: Sequence[Pair], source_tokenizer: subwords.Tokenizer,
         target_tokenizer: subwords.Tokenizer) -> TokenizedPairs:
    """The pairs (a list of (source str, target str)) encoded; targets framed by BOS and EOS."""
    check_pairs(pairs)
    pairs = list(pairs)
    sources = source_tokenizer.encode_all([s for s, _ in pairs])
    bos, eos = np.array([subwords.BOS], np.int32), np.array([subwords.EOS], np.int32)
    targets = [np.concatenate([bos, ids, eos])
               for ids in target_tokenizer.encode_all([t for _, t in pairs])]
    return cls(sources, targets, pairs)

  @property
  def source_lengths(self) -> np.ndarray:
    """int32 [N]."""
    return np.array([len(s) for s in self.sources], np.int32)

  @property
  def target_lengths(self) -> np.ndarray:
    """int32 [N], BOS and EOS included."""
    return np.array([len(t) for t in self.targets], np.int32)

  @property
  def lengths(self) -> np.ndarray:
    """int32 [N]: max(source length, target length), what batches are bucketed by."""
    return np.maximum(self.source_lengths, self.target_lengths)

  def subset(self, indices) -> TokenizedPairs:
    return TokenizedPairs([self.sources[i] for i in indices], [self.targets[i] for i in indices],
                          [self.texts[i] for i in indices])

  def filter_length(self, max_source_tokens: int, max_target_tokens: int
                    ) -> tuple[TokenizedPairs, int]:
    """(the pairs with at most max_source_tokens source ids and max_target_tokens target ids, BOS
    and EOS counted; how many were dropped). For the training split."""
    keep = np.flatnonzero((self.source_lengths <= max_source_tokens)
                          & (self.target_lengths <= max_target_tokens))
    return self.subset(keep.tolist()), len(self) - len(keep)


def _gather(split: TokenizedPairs, indices: np.ndarray, size: int, shape: tuple[int, int]
            ) -> Batch:
  """Source and target of `indices` [L], both padded with 0 to `size`, laid out `shape` (D, b)."""
  source = np.zeros((len(indices), size), np.int32)
  target = np.zeros((len(indices), size), np.int32)
  lengths = np.zeros(len(indices), np.int32)
  for row, i in enumerate(indices):
    s, t = split.sources[i], split.targets[i]
    source[row, :len(s)] = s
    target[row, :len(t)] = t
    lengths[row] = len(s)
  return {"source": source.reshape(shape + (size,)), "source_length": lengths.reshape(shape),
          "target": target.reshape(shape + (size,))}


def _check_layout(split: TokenizedPairs, global_batch_size: int, process_index: int,
                  process_count: int, local_device_count: int) -> None:
  arrays.check_batch_size(global_batch_size, process_count=process_count,
                          local_device_count=local_device_count)
  arrays.check_process(process_index, process_count)
  if not len(split):
    raise UserError("the sentence pairs split is empty: no batches to draw")


def train_batches(split: TokenizedPairs, buckets: Sequence[int], *, global_batch_size: int,
                  seed: int, start_step: int = 0, process_index: int = 0, process_count: int = 1,
                  local_device_count: int = 1) -> Iterator[Batch]:
  """Endless deterministic batches for steps start_step, ...; batch s depends only on (seed, s).

  Each process takes its contiguous slice of every global batch (b = B / (P * D) rows a device).

  Yields:
    {'source': int32 [D, b, S], 'source_length': int32 [D, b], 'target': int32 [D, b, S]} with S
    the batch's bucket; target is BOS ... EOS then 0s (a model reads target[..., :-1] and predicts
    target[..., 1:]).

  Raises:
    UserError: B does not divide by P * D, the split is empty or seed is negative.
  """
  _check_layout(split, global_batch_size, process_index, process_count, local_device_count)
  if seed < 0:
    raise UserError(f"seed {seed} must be non-negative (config field seed)")
  if start_step < 0:
    raise ValueError(f"start_step {start_step} must be non-negative")
  sizes = buckets_lib.bucket_sizes(split.lengths, buckets)
  part, shape = buckets_lib.local_layout(global_batch_size, process_index, process_count,
                                         local_device_count)
  return (_gather(split, indices[part], size, shape) for size, indices in
          buckets_lib.train_index_batches(sizes, global_batch_size, seed, start_step))


def eval_batches(split: TokenizedPairs, buckets: Sequence[int], *, global_batch_size: int,
                 process_index: int = 0, process_count: int = 1, local_device_count: int = 1
                 ) -> Iterator[Batch]:
  """One pass, bucket by bucket, every pair exactly once over all processes.

  Yields:
    `train_batches`' arrays plus 'mask' float32 [D, b] (0.0 for padding rows) and 'index' int32
    [D, b] (each row's pair in the split).
  """
  _check_layout(split, global_batch_size, process_index, process_count, local_device_count)
  sizes = buckets_lib.bucket_sizes(split.lengths, buckets)
  part, shape = buckets_lib.local_layout(global_batch_size, process_index, process_count,
                                         local_device_count)

  def generate():
    for size, indices, mask in buckets_lib.eval_index_batches(sizes, global_batch_size):
      batch = _gather(split, indices[part], size, shape)
      batch["mask"] = mask[part].reshape(shape)
      batch["index"] = indices[part].astype(np.int32).reshape(shape)
      yield batch

  return generate()


def padding_report(split: TokenizedPairs, buckets: Sequence[int], global_batch_size: int,
                   seed: int) -> dict:
  """The share of padded token positions (source plus target) in one epoch of batches.

  Returns:
    {'fixed': random batches padded to the split's longest source and target,
     'longest_in_batch': random batches padded to their own longest source and target,
     'bucketed': `train_batches`' epoch 0 (source and target padded to the bucket),
     'shapes_fixed' / 'shapes_longest_in_batch' / 'shapes_bucketed': distinct batch shapes,
     'num_examples', 'num_batches'}.
  """
  source, target = split.source_lengths.astype(np.int64), split.target_lengths.astype(np.int64)
  count = -(-len(split) // global_batch_size)
  rows = np.resize(np.random.default_rng(seed).permutation(len(split)),
                   count * global_batch_size).reshape(count, global_batch_size)
  real = (source[rows] + target[rows]).sum(axis=1)  # [count]
  longest = np.stack([source[rows].max(axis=1), target[rows].max(axis=1)], axis=1)  # [count, 2]
  bucketed = buckets_lib.epoch_batches(buckets_lib.bucket_sizes(split.lengths, buckets),
                                       global_batch_size, seed, 0)
  return {
      "fixed": buckets_lib.padding_share(
          real, np.full(count, global_batch_size * (source.max() + target.max()))),
      "longest_in_batch": buckets_lib.padding_share(real, global_batch_size * longest.sum(axis=1)),
      "bucketed": buckets_lib.padding_share(
          [(source[i] + target[i]).sum() for _, i in bucketed],
          [global_batch_size * 2 * size for size, _ in bucketed]),
      "shapes_fixed": 1,
      "shapes_longest_in_batch": len({tuple(x) for x in longest.tolist()}),
      "shapes_bucketed": len({size for size, _ in bucketed}),
      "num_examples": len(split),
      "num_batches": count,
  }
