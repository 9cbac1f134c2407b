"""Greedy vs prefix beam search (with and without a digit-word LM) on a trained recogniser's test set.

  mlfun-evaluate-speech --workdir=workdirs/speech_phone --beam_width=8

Rebuilds the test split from the checkpoint's config (same data_dir, split and seeds) and prints one
JSON line per decoder: {"decoder": ..., "cer": ..., "wer": ..., "exact": ..., "count": ...}.
Several --workdir flags (e.g. seeds of one recipe, trained on the same split) are decoded as one
ensemble: the mean of their per-frame output distributions (`mlfun_jax.speech.ensemble`).
With --adapt_steps > 0 (default 20) the greedy and LM decoders are also run on features adapted to
each test speaker without transcripts (`mlfun_jax.speech.speaker_adaptation`; decoders named
"...+adapted"), cross-fitted by default: each utterance is decoded with a transform fitted on the
other half of its speaker's utterances.
"""

import functools
import json

from absl import app
from absl import flags

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_multi_string("workdir", None, "Workdir of a trained speech recogniser; "
                                      "repeat the flag for an ensemble.")
_BEAM = flags.DEFINE_integer("beam_width", 8, "Prefix beam width (at most 256).", lower_bound=1,
                             upper_bound=256)
_LM_WEIGHT = flags.DEFINE_float("lm_weight", 1.0, "Weight of the word-list LM.")
_ADAPT_STEPS = flags.DEFINE_integer("adapt_steps", 20, "Steps of unsupervised speaker adaptation "
                                    "(0: none; at most 10,000).", lower_bound=0,
                                    upper_bound=10_000)
_ADAPT_LR = flags.DEFINE_float("adapt_learning_rate", 0.01, "Adam learning rate of the adaptation.")
_CROSS_FITTED = flags.DEFINE_bool("adapt_cross_fitted", True, "Decode each utterance with a "
                                  "transform fitted on the other half of its speaker's utterances.")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 0, "Only the first N test utterances (0: all).",
                                     lower_bound=0)
flags.register_validator("adapt_learning_rate", lambda value: value > 0, message="must be > 0")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from mlfun_jax.speech import ctc_decode  # pylint: disable=g-import-not-at-top
  from mlfun_jax.speech import data as speech_data  # pylint: disable=g-import-not-at-top
  from mlfun_jax.speech import ensemble as speech_ensemble  # pylint: disable=g-import-not-at-top
  from mlfun_jax.speech import scoring  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    ensemble = speech_ensemble.Ensemble(_WORKDIR.value)
    splits = ensemble.test_splits(limit=_NUM_EXAMPLES.value)
    texts, speakers = splits[0].texts, splits[0].speakers
    features = [split.features for split in splits]
    lm = ctc_decode.WordListLM(speech_data.DIGIT_WORDS)
    greedy = functools.partial(ctc_decode.greedy_decode, alphabet=ensemble.alphabet)
    beam = functools.partial(ctc_decode.beam_search, beam_width=_BEAM.value,
                             alphabet=ensemble.alphabet)
    with_lm = functools.partial(beam, lm=lm, lm_weight=_LM_WEIGHT.value)
    results = scoring.evaluate_decoders(ensemble.log_probs(features), texts, {
        "greedy": greedy,
        f"beam{_BEAM.value}": beam,
        f"beam{_BEAM.value}+digit_words": with_lm})
    if _ADAPT_STEPS.value:
      adapted = ensemble.adapt(features, speakers, cross_fitted=_CROSS_FITTED.value,
                               steps=_ADAPT_STEPS.value, learning_rate=_ADAPT_LR.value)
      results.update(scoring.evaluate_decoders(ensemble.log_probs(adapted), texts, {
          "greedy+adapted": greedy,
          f"beam{_BEAM.value}+digit_words+adapted": with_lm}))
    for name, rates in results.items():
      print(json.dumps({"decoder": name, **rates}), flush=True)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
