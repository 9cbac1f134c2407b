"""Character-level LSTM on Super Mario Bros levels read column by column, bottom to top (the series'
level generator), with the first level in name order held out (mario-1-1). The levels are read
from vglc_mario/smb in the data folder ($MLFUN_DATA_DIR, else ~/mlfun_jax_data; `mlfun-data fetch
vglc_mario`); --config.text_path=FOLDER reads another folder of level files (*.txt, rows of tiles)
and holds out that folder's first level (--config.heldout_names=NAME,... names others).

  mlfun-train --config=char_rnn_mario --workdir=workdirs/char_rnn_mario
  mlfun-generate --workdir=workdirs/char_rnn_mario --length=200 --temperature=1.0

At the end WORKDIR/samples/ holds generated levels (.txt in the corpus' row layout and .png) and
WORKDIR/report.json their measures (valid columns, well-formed pipes, novelty) beside the held-out
bits per character of the model and of the n-gram baselines.

The sequence length, the height inputs and the longest n-gram follow the folder's tallest level,
so another folder of levels (e.g. vglc_mario/sml, 15-16 rows) needs no other field; generated
levels are rectangles of the training heights, and report.json gives the share an A* agent
finishes (`mlfun_jax.char_rnn.playability`) beside the training levels' share.

Measured on the 2-core CPU (13.6 min wall): held-out 0.223 bits/char (16-gram on the same mirrored
corpus 0.228, unigram 1.081); over 192 generated levels at temperature 1.0: 99.3% valid columns,
92.9% well-formed pipes (1,076 of 1,158), 72.8% novel 8-column windows. With rectangular sampling
(19.7 min, partly shared): 0.225 bits/char, 100% valid columns, 92.5% well-formed pipes, the agent
finishes 40.6% of 64 generated levels and 92.9% of the training levels (docs/char_rnn.md).
"""

import os

import ml_collections

from mlfun_jax.char_rnn import config as char_rnn_config
from mlfun_jax.data import sources


def get_config() -> ml_collections.ConfigDict:
  config = char_rnn_config.defaults()
  config.text_path = os.path.join(sources.dataset_dir("vglc_mario"), "smb")
  config.corpus_format = "levels"
  config.heldout_first = 1  # The folder's first level in name order: mario-1-1 for smb/.
  # Each training level is also read mirrored (pipe halves swapped): twice the levels and pipes.
  config.mirror_levels = True

  config.model.dropout_rate = 0.1
  # Each tile also sees its height in its column and the tile to the left of the one it predicts
  # (the previous column at that height): pipe halves line up (93% well formed vs 90% without).
  config.model.max_position = -1  # Every height of the corpus' tallest column.
  config.model.previous_line_input = True
  config.sequence_length = 0  # Ten columns of the corpus' tallest level, markers included.
  config.eval_sequence_length = 8192  # A whole level per chunk.
  config.batch_size = 32
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 50
  config.num_epochs = 150.0  # Of the mirrored corpus: 2,400 steps.
  # 0: a column and its marker plus one (16 for 14-row levels): that n-gram sees the tile beside
  # the next one.
  config.ngram_orders = (3, 7, 0)

  config.sample_temperature = 1.0
  config.num_sample_levels = 64  # About 350 pipes: the pipe share to within ~2%.
  config.eval_every = 250
  return config
