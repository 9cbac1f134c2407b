"""CTC text handling on the host: alphabets, greedy decoding and a prefix beam search with an
optional language model (a character n-gram or a word list) — "Hello" beats "Hullo".

Class 0 of the network's output is the CTC blank; class i >= 1 is `alphabet[i - 1]`. Every decoder
takes the run's alphabet (config field `alphabet`; `ALPHABET` is the default) and refuses logits
whose class count is not len(alphabet) + 1 and ids outside 0..len(alphabet).
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable, Sequence

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.speech.config import ALPHABET

BLANK = 0
SPACE = ALPHABET.index(" ") + 1  # The class separating words (default alphabet).
NUM_CLASSES = len(ALPHABET) + 1  # Characters plus the blank (default alphabet).


def check_alphabet(alphabet: str) -> str:
  """`alphabet` (the characters of classes 1..len) when it is a non-empty str of distinct
  characters; UserError naming config field `alphabet` otherwise."""
  if not isinstance(alphabet, str) or not alphabet or len(set(alphabet)) != len(alphabet):
    raise UserError(f"config field alphabet={alphabet!r} must be a non-empty str of distinct "
                    "characters")
  return alphabet


def num_classes(alphabet: str) -> int:
  """Output classes of a CTC network over `alphabet`: its characters plus the blank."""
  return len(check_alphabet(alphabet)) + 1


def space_id(alphabet: str) -> int:
  """The class of ' ' in `alphabet` (separates words); -1 when it has no space."""
  return check_alphabet(alphabet).find(" ") + 1 or -1


def check_logits(logits, alphabet: str, name: str = "logits") -> np.ndarray:
  """`logits` as a numpy array after checking it is float [T, len(alphabet) + 1] (one utterance).

  Raises:
    checks.InputError: another dtype, rank or class count (a network over another alphabet).
  """
  logits = np.asarray(logits)
  checks.check_floats(logits, name=name, rank=2, shape="[T, K] (one utterance's frames)")
  if logits.shape[1] != num_classes(alphabet):
    raise checks.InputError(
        f"{name} has {logits.shape[1]} classes per frame; the alphabet {alphabet!r} needs "
        f"{num_classes(alphabet)} ({len(alphabet)} characters + the CTC blank): pass the "
        "alphabet the network was trained with")
  return logits


def encode(text: str, alphabet: str = ALPHABET) -> list[int]:
  """Class ids (1..len(alphabet)) of a lower-cased transcript; UserError on other characters."""
  checks.check_text(text, name="text")
  index = {c: i + 1 for i, c in enumerate(check_alphabet(alphabet))}
  text = text.lower()
  bad = sorted(set(c for c in text if c not in index))
  if bad:
    raise UserError(f"transcript {text!r} has characters outside the alphabet: {''.join(bad)!r}")
  return [index[c] for c in text]


def decode(ids: Iterable[int], alphabet: str = ALPHABET) -> str:
  """Text of class ids in 0..len(alphabet); blanks (0) are skipped.

  Raises:
    checks.InputError: an id outside 0..len(alphabet).
  """
  ids = [int(i) for i in ids]
  checks.check_ids(np.array(ids, np.int64), name="ids", vocab_size=num_classes(alphabet))
  return _text(ids, alphabet)


def _text(ids: Iterable[int], alphabet: str) -> str:
  """`decode` without the check (ids known to be in range)."""
  return "".join(alphabet[i - 1] for i in ids if i != BLANK)


def collapse(path: Sequence[int]) -> list[int]:
  """CTC's rule on a frame path of class ids (ints >= 0) [T]: merge runs of a class, then drop
  blanks ('hh_e_ll_l' -> 'hell')."""
  path = np.asarray(path)
  checks.check_ids(path, name="path", rank=1, shape="[T]", empty_any_dtype=True)
  if path.size and path.min() < 0:
    raise checks.InputError(f"path must hold class ids >= 0, got {int(path.min())}")
  out, previous = [], None
  for c in path:
    c = int(c)
    if c != previous and c != BLANK:
      out.append(c)
    previous = c
  return out


def greedy_decode(logits: np.ndarray, length: int | None = None, *,
                  alphabet: str = ALPHABET) -> str:
  """Best path of one utterance: the most likely class per frame of float logits (or
  log-probabilities) [T, len(alphabet) + 1], collapsed; only the first `length` frames."""
  logits = check_logits(logits, alphabet)[:length]
  return decode(collapse(np.argmax(logits, axis=-1)), alphabet)


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

  def __init__(self, texts: Iterable[str], order: int = 3, k: float = 0.1, *,
               alphabet: str = ALPHABET):
    if order < 1:
      raise ValueError(f"order must be >= 1, got {order}")
    self.order, self.k = order, k
    self._counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for text in texts:
      padded = "^" * (order - 1) + text.lower() + self.END
      for i in range(order - 1, len(padded)):
        self._counts[padded[i - order + 1:i]][padded[i]] += 1
    self._totals = {history: sum(counts.values()) for history, counts in self._counts.items()}
    self._vocab = len(check_alphabet(alphabet)) + 1

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
                prune_log_prob: float = -12.0, *, alphabet: str = ALPHABET) -> str:
  """CTC prefix beam search (Hannun et al. 2014) over one utterance's float frames
  [T, len(alphabet) + 1] (logits or log-probs).

  Each prefix keeps the log-probabilities of all its alignments ending in a blank and in a
  non-blank; at every frame the `beam_width` prefixes with the highest score survive, where
  score = log P_ctc(prefix) + lm_weight * log P_lm(prefix). The end symbol's LM probability is
  added before the final choice. Classes below `prune_log_prob` at a frame are not tried as
  extensions.

  Returns:
    the best transcript.
  """
  log_probs = log_softmax(check_logits(logits, alphabet))
  if beam_width < 1:
    raise UserError(f"beam width {beam_width} must be >= 1")
  neg = -math.inf
  beams = {(): (0.0, neg)}  # prefix -> (log P ending in blank, log P ending in non-blank)
  lm_scores = {(): 0.0}

  def lm_score(prefix: tuple[int, ...]) -> float:
    if prefix not in lm_scores:
      lm_scores[prefix] = lm_score(prefix[:-1]) + (
          lm.log_prob(_text(prefix[:-1], alphabet), alphabet[prefix[-1] - 1]) if lm else 0.0)
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
    end = lm.log_prob(_text(prefix, alphabet), lm.END) if lm else 0.0
    return score(prefix, probs) + lm_weight * end

  best = max(beams.items(), key=final)[0]
  return _text(best, alphabet)
