"""Corpus BLEU and chrF of translations (sacrebleu, its default 13a tokenisation).

A test sentence may have several reference translations (the pairs file lists each source once per
translation). Two views are scored:
- per pair (the headline, as a single-reference test set scores): every (source, reference) pair
  is one segment, the source's translation against that one reference;
- multi-reference: every distinct source is one segment against all its references.
"""

from collections.abc import Sequence

import sacrebleu

from mlfun_jax.core import checks


def scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
  """BLEU and chrF (0-100) of one hypothesis per source against that source's references.

  Args:
    hypotheses: [N] translations.
    references: [N] lists (each non-empty) of reference translations.

  Returns:
    {'bleu', 'chrf'} per pair and {'bleu_multi_reference', 'chrf_multi_reference'}.
  """
  checks.check_texts(hypotheses, name="hypotheses")
  if isinstance(references, str) or any(isinstance(r, str) for r in references):
    raise checks.InputError("references: expected a list of lists of str (one list per "
                            "hypothesis), got a str where a list belongs")
  for refs in references:
    checks.check_texts(refs, name="references[i]")
  if len(hypotheses) != len(references) or any(not r for r in references):
    raise ValueError("need one non-empty list of references per hypothesis")
  pair_hypotheses = [h for h, refs in zip(hypotheses, references) for _ in refs]
  pair_references = [[r for refs in references for r in refs]]
  width = max(len(r) for r in references)
  streams = [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]
  return {"bleu": sacrebleu.corpus_bleu(pair_hypotheses, pair_references).score,
          "chrf": sacrebleu.corpus_chrf(pair_hypotheses, pair_references).score,
          "bleu_multi_reference": sacrebleu.corpus_bleu(list(hypotheses), streams).score,
          "chrf_multi_reference": sacrebleu.corpus_chrf(list(hypotheses), streams).score}
