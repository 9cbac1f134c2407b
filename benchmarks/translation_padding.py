"""How much of a translation batch is padding, before and after length bucketing?

  python benchmarks/translation_padding.py    # the data folder's pairs (mlfun-data fetch translation_eng_spa)

Reads the pairs file, splits it by source sentence, trains sentencepiece subwords (one model per
language) on the training split, drops training pairs longer than --max_tokens and prints the share
of padded token positions (source plus target) in one epoch of batches of --batch_size:
(a) random batches padded to the split's longest sentences, (b) random batches padded to their own
longest, (c) bucketed batches as `sentence_pairs.train_batches` draws them; and how many distinct
batch shapes (compilations) each needs.
"""

import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from mlfun_jax.data import sources
from mlfun_jax.translation import subwords
from mlfun_jax.translation import data as sentence_pairs
# pylint: enable=g-import-not-at-top,wrong-import-position

_DATA_PATH = flags.DEFINE_string(
    "data_path", os.path.join(sources.dataset_dir("translation_eng_spa"), "spa.txt"),
    "The source<TAB>target file.")
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 8000, "Subword pieces per language.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Global batch size.")
_BUCKETS = flags.DEFINE_list("buckets", ["8", "12", "16", "20", "24", "32", "48", "64"],
                             "Bucket sizes in tokens.")
_MAX_TOKENS = flags.DEFINE_integer("max_tokens", 64, "Longest training source and target kept.")
_DIRECTION = flags.DEFINE_enum("direction", "forward", sentence_pairs.DIRECTIONS,
                               "forward: column 0 -> column 1.")
_SEED = flags.DEFINE_integer("seed", 0, "Split, tokeniser and batch seed.")


def main(argv):
  del argv
  start = time.perf_counter()
  pairs = sentence_pairs.read_pairs(_DATA_PATH.value, _DIRECTION.value)
  splits = sentence_pairs.split_pairs(pairs, 0.05, 0.05, _SEED.value)
  train = splits.train
  source = subwords.train_subwords([s for s, _ in train], _VOCAB_SIZE.value, seed=_SEED.value)
  target = subwords.train_subwords([t for _, t in train], _VOCAB_SIZE.value, seed=_SEED.value)
  tokenized, dropped = sentence_pairs.TokenizedPairs.of(train, source, target).filter_length(
      _MAX_TOKENS.value, _MAX_TOKENS.value)
  buckets = [int(b) for b in _BUCKETS.value]
  report = sentence_pairs.padding_report(tokenized, buckets, _BATCH_SIZE.value, _SEED.value)
  print(f"{_DATA_PATH.value}: {len(pairs)} pairs, {len(train)} in training "
        f"({dropped} longer than {_MAX_TOKENS.value} tokens dropped), subwords {_VOCAB_SIZE.value} "
        f"a language, batch {_BATCH_SIZE.value}, {report['num_batches']} batches an epoch, "
        f"buckets {buckets} ({time.perf_counter() - start:.1f} s)")
  print("batches                                  padding  shapes")
  for key, name in (("fixed", "(a) random, padded to the split's longest"),
                    ("longest_in_batch", "(b) random, padded to the batch's longest"),
                    ("bucketed", "(c) bucketed by max(source, target)")):
    print(f"{name:42s} {report[key]:6.1%}  {report['shapes_' + key]:6d}")


if __name__ == "__main__":
  app.run(main)
