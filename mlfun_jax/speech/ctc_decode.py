"""CTC text handling on the host: the alphabet, greedy decoding and a prefix beam search with an
optional language model (a character n-gram or a word list) — "Hello" beats "Hullo".

Class 0 of the network's output is the CTC blank; class i >= 1 is `ALPHABET[i - 1]`.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence

import numpy as np

from mlfun_jax.core.errors import UserError

ALPHABET = " abcdefghijklmnopqrstuvwxyz'"
BLANK = 0
SPACE = ALPHABET.index(" ") + 1  # The class separating words.
NUM_CLASSES = len(ALPHABET) + 1  # Characters plus the blank.
_INDEX = {c: i + 1 for i, c in enumerate(ALPHABET)}


def encode(text: str) -> list[int]:
  """Class ids (1..NUM_CLASSES-1) of a lower-cased transcript; UserError on other characters."""
  text = text.lower()
  bad = sorted(set(c for c in text if c not in _INDEX))
  if bad:
    raise UserError(f"transcript {text!r} has characters outside the alphabet: {''.join(bad)!r}")
  return [_INDEX[c] for c in text]


def decode(ids: Iterable[int]) -> str:
  """Text of class ids; blanks (0) are skipped."""
  return "".join(ALPHABET[i - 1] for i in ids if 0 < i < NUM_CLASSES)


def collapse(path: Sequence[int]) -> list[int]:
  """CTC's rule on a frame path: merge runs of a class, then drop blanks ('hh_e_ll_l' -> 'hell')."""
  out, previous = [], None
  for c in path:
    c = int(c)
    if c != previous and c != BLANK:
      out.append(c)
    previous = c
  return out


def greedy_decode(logits: np.ndarray, length: int | None = None) -> str:
  """Best path: the most likely class per frame [T, K], collapsed; only the first `length` frames."""
  logits = np.asarray(logits)[:length]
  return decode(collapse(np.argmax(logits, axis=-1)))


def log_softmax(logits: np.ndarray) -> np.ndarray:
  logits = np.asarray(logits, np.float64)
  shifted = logits - logits.max(axis=-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class CharNgramLM:
  """A character n-gram model with add-k smoothing over the alphabet plus an end symbol.

  Sentences are padded with n-1 start symbols; `log_prob(context, c)` is log P(c | last n-1
  characters of context), c a character or `END`.
  """
  END = "$"

  def __init__(self, texts: Iterable[str], order: int = 3, k: float = 0.1):
    if order < 1:
      raise ValueError(f"order must be >= 1, got {order}")
    self.order, self.k = order, k
    self._counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for text in texts:
      padded = "^" * (order - 1) + text.lower() + self.END
      for i in range(order - 1, len(padded)):
        self._counts[padded[i - order + 1:i]][padded[i]] += 1
    self._totals = {history: sum(counts.values()) for history, counts in self._counts.items()}
    self._vocab = len(ALPHABET) + 1

  def log_prob(self, context: str, c: str) -> float:
    history = ("^" * (self.order - 1) + context)[-(self.order - 1):] if self.order > 1 else ""
    count = self._counts[history][c] if history in self._counts else 0
    return math.log((count + self.k) / (self._totals.get(history, 0) + self.k * self._vocab))


class WordListLM:
  """Only words of a list: a character that leaves every word's prefix, or a finished word not in
  the list, costs `penalty` (log scale); words are separated by spaces."""
  END = "$"

  def __init__(self, words: Iterable[str], penalty: float = -10.0):
    self.words = {w.lower() for w in words}
    self.prefixes = {w[:i] for w in self.words for i in range(len(w) + 1)}
    self.penalty = penalty

  def log_prob(self, context: str, c: str) -> float:
    word = context.split(" ")[-1]
    if c in (" ", self.END):
      return 0.0 if word in self.words or (not word and c == self.END) else self.penalty
    return 0.0 if word + c in self.prefixes else self.penalty


def _logsumexp(a: float, b: float) -> float:
  if a == -math.inf:
    return b
  if b == -math.inf:
    return a
  m = max(a, b)
  return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search(logits: np.ndarray, beam_width: int = 8, lm=None, lm_weight: float = 0.5,
                prune_log_prob: float = -12.0) -> str:
  """CTC prefix beam search (Hannun et al. 2014) over frames [T, K] (logits or log-probs).

  Each prefix keeps the log-probabilities of all its alignments ending in a blank and in a
  non-blank; at every frame the `beam_width` prefixes with the highest score survive, where
  score = log P_ctc(prefix) + lm_weight * log P_lm(prefix). The end symbol's LM probability is
  added before the final choice. Classes below `prune_log_prob` at a frame are not tried as
  extensions.

  Returns:
    the best transcript.
  """
  log_probs = log_softmax(logits)
  if beam_width < 1:
    raise UserError(f"beam width {beam_width} must be >= 1")
  neg = -math.inf
  beams = {(): (0.0, neg)}  # prefix -> (log P ending in blank, log P ending in non-blank)
  lm_scores = {(): 0.0}

  def lm_score(prefix: tuple[int, ...]) -> float:
    if prefix not in lm_scores:
      lm_scores[prefix] = lm_score(prefix[:-1]) + (
          lm.log_prob(decode(prefix[:-1]), ALPHABET[prefix[-1] - 1]) if lm else 0.0)
    return lm_scores[prefix]

  def score(prefix, probs) -> float:
    return _logsumexp(*probs) + lm_weight * lm_score(prefix)

  for frame in log_probs:
    candidates = [c for c in range(1, len(frame)) if frame[c] >= prune_log_prob]
    new: dict[tuple[int, ...], list[float]] = collections.defaultdict(lambda: [neg, neg])
    for prefix, (p_b, p_nb) in beams.items():
      total = _logsumexp(p_b, p_nb)
      entry = new[prefix]
      entry[0] = _logsumexp(entry[0], total + frame[BLANK])  # Blank: prefix unchanged.
      if prefix:  # Repeating the last character without a blank: prefix unchanged.
        entry[1] = _logsumexp(entry[1], p_nb + frame[prefix[-1]])
      for c in candidates:
        extended = prefix + (c,)
        # After a non-blank c, a second c needs a blank in between.
        source = p_b if prefix and c == prefix[-1] else total
        target = new[extended]
        target[1] = _logsumexp(target[1], source + frame[c])
    ranked = sorted(new.items(), key=lambda kv: score(kv[0], kv[1]), reverse=True)
    beams = {prefix: tuple(probs) for prefix, probs in ranked[:beam_width]}

  def final(item):
    prefix, probs = item
    end = lm.log_prob(decode(prefix), lm.END) if lm else 0.0
    return score(prefix, probs) + lm_weight * end

  best = max(beams.items(), key=final)[0]
  return decode(best)
