"""Host-side error rates of transcripts against references (CER, WER, exact), per decoder."""

from collections.abc import Callable, Sequence

import numpy as np

from mlfun_jax.core import progress


def levenshtein(a: Sequence, b: Sequence) -> int:
  """Edits (insertions, deletions, substitutions) turning sequence a into b."""
  row = list(range(len(b) + 1))
  for i, x in enumerate(a, 1):
    previous, row[0] = row[0], i
    for j, y in enumerate(b, 1):
      previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
  return row[-1]


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
  """{'cer', 'wer', 'exact', 'count'} of transcripts against references (host-side)."""
  if len(references) != len(hypotheses):
    raise ValueError(f"{len(hypotheses)} transcripts for {len(references)} references")
  chars = sum(len(r) for r in references)
  words = sum(len(r.split()) for r in references)
  return {"cer": sum(levenshtein(r, h) for r, h in zip(references, hypotheses)) / max(chars, 1),
          "wer": sum(levenshtein(r.split(), h.split())
                     for r, h in zip(references, hypotheses)) / max(words, 1),
          "exact": float(np.mean([r == h for r, h in zip(references, hypotheses)])),
          "count": len(references)}


def evaluate_decoders(logits: Sequence[np.ndarray], texts: Sequence[str],
                      decoders: dict[str, Callable[[np.ndarray], str]]) -> dict[str, dict]:
  """Error rates (`error_rates`) of each named decoder (one utterance's float logits or
  log-probabilities [T', K] -> text) against the utterances' transcripts."""
  results = {}
  for name, decode in decoders.items():
    with progress.Counter(f"{name} decoding", total=len(logits), unit="utterances") as counter:
      hypotheses = []
      for x in logits:
        hypotheses.append(decode(x))
        counter.add()
    results[name] = error_rates(texts, hypotheses)
  return results
