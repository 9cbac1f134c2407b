"""Count-based character models, the baselines a recurrent model must beat (bits per character).

- `unigram_bits`: every character from its training frequency (add-one smoothed).
- `KneserNey`: interpolated Kneser-Ney n-gram model (Chen & Goodman 1998): absolute discounting of
  the highest-order counts, continuation counts for the lower orders, a uniform distribution at the
  bottom, one discount per order estimated from counts of counts.

Both score exactly the targets a recurrent model scores on `streams.eval_chunks` rows: the
characters tokens[c, 1:] where mask[c] is 1, with the history of row c only.

Ids are integers in 0..vocab_size-1: documents integer [n] each, eval chunks integer tokens
[C, L + 1] with a float mask [C, L] in [0, 1]; another convention raises `checks.InputError`.
"""

import collections
import math
from collections.abc import Iterable, Sequence

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core import progress


def _check_chunks(tokens, mask, vocab_size: int) -> None:
  checks.check_ids(tokens, name="tokens", vocab_size=vocab_size, rank=2, shape="[C, L + 1]")
  checks.check_floats(mask, name="mask", rank=2, shape="[C, L]", value_range=(0.0, 1.0))


def unigram_bits(train_documents: Iterable[np.ndarray], tokens: np.ndarray, mask: np.ndarray,
                 vocab_size: int) -> float:
  """Bits per character of the add-one unigram model of `train_documents` (integer ids [n] each)
  on the masked targets of eval chunks (tokens [C, L + 1], mask [C, L])."""
  _check_chunks(tokens, mask, vocab_size)
  counts = np.ones(vocab_size)
  for document in train_documents:
    checks.check_ids(document, name="train_documents[i]", vocab_size=vocab_size, rank=1)
    counts += np.bincount(np.asarray(document), minlength=vocab_size)[:vocab_size]
  log2_p = np.log2(counts / counts.sum())
  targets = tokens[:, 1:]
  return float(-(log2_p[targets] * mask).sum() / mask.sum())


class KneserNey:
  """Interpolated Kneser-Ney character model of order `order` over ids 0..vocab_size-1 (documents:
  integer ids [n] each).

  Documents are read after `order - 1` copies of `start_id`, so every prediction has a full
  history.
  """

  def __init__(self, documents: Iterable[Sequence[int]], order: int, vocab_size: int,
               start_id: int):
    if order < 1:
      raise ValueError(f"order {order} must be >= 1")
    self.order, self.vocab_size, self._start = order, vocab_size, start_id
    top = collections.Counter()
    with progress.Counter(f"{order}-gram counts", unit="characters") as counter:
      for document in documents:
        checks.check_ids(document, name="documents[i]", vocab_size=vocab_size, rank=1)
        sequence = self._padded(document)
        top.update(tuple(sequence[i - order + 1:i + 1]) for i in range(order - 1, len(sequence)))
        counter.add(len(document))
    # counts[k]: n-grams of length k+1 -> count (raw for the top order, continuation below).
    counts = [collections.Counter() for _ in range(order)]
    counts[order - 1] = top
    for k in range(order - 1, 0, -1):
      for gram in counts[k]:
        counts[k - 1][gram[1:]] += 1  # Each distinct left extension counts once.
    self._tables = []  # Per length k+1: history -> (total, distinct followers, {char: count}).
    self._discounts = []
    for k, grams in enumerate(counts):
      table = collections.defaultdict(lambda: [0, 0, {}])
      for gram, count in grams.items():
        entry = table[gram[:-1]]
        entry[0] += count
        entry[1] += 1
        entry[2][gram[-1]] = count
      self._tables.append(dict(table))
      n1 = sum(1 for c in grams.values() if c == 1)
      n2 = sum(1 for c in grams.values() if c == 2)
      # Without singletons the estimate is 0, which would give unseen characters probability 0.
      self._discounts.append(n1 / (n1 + 2 * n2) if n1 else 0.5)

  def _padded(self, sequence: Sequence[int]) -> list[int]:
    return [self._start] * (self.order - 1) + [int(t) for t in sequence]

  def probability(self, history: tuple[int, ...], token: int) -> float:
    """P(token | the last order-1 ids of `history`)."""
    p = 1.0 / self.vocab_size
    for k in range(self.order):  # From unigram continuation counts up to the full order.
      context = history[len(history) - k:] if k else ()
      entry = self._tables[k].get(context)
      if entry is None:
        continue
      total, followers, counts = entry
      discount = self._discounts[k]
      p = (max(counts.get(token, 0) - discount, 0.0) + discount * followers * p) / total
    return p

  def bits(self, tokens: np.ndarray, mask: np.ndarray) -> float:
    """Bits per character on eval chunks (int32 tokens [C, L + 1] in 0..vocab_size-1, float mask
    [C, L] in [0, 1])."""
    _check_chunks(tokens, mask, self.vocab_size)
    total, count = 0.0, 0.0
    mask = np.asarray(mask)
    with progress.Counter(f"{self.order}-gram baseline", total=int(np.count_nonzero(mask)),
                          unit="characters") as counter:
      for row, row_mask in zip(np.asarray(tokens), mask):
        sequence = self._padded(row[:1])  # The row's first token (the start token or a character).
        for t, weight in enumerate(row_mask.tolist()):
          if not weight:
            break
          token = int(row[t + 1])
          history = tuple(sequence[len(sequence) - self.order + 1:]) if self.order > 1 else ()
          total -= weight * math.log2(self.probability(history, token))
          count += weight
          sequence.append(token)
        counter.add(int(np.count_nonzero(row_mask)))
    return float(total / count)
