"""Character-level LSTM on Super Mario Bros levels read column by column, bottom to top (the series'
level generator), with the first level in name order held out (mario-1-1). The levels are read
from vglc_mario/smb in the data folder ($MLFUN_DATA_DIR, else ~/mlfun_jax_data; `mlfun-data fetch
vglc_mario`); --config.text_path=FOLDER reads another folder of level files (*.txt, rows of tiles)
and holds out that folder's first level (--config.heldout_names=NAME,... names others).

  mlfun-train --config=char_rnn_mario --workdir=workdirs/char_rnn_mario
  mlfun-generate --workdir=workdirs/char_rnn_mario --length=200 --temperature=1.0

At the end WORKDIR/samples/ holds generated levels (.txt in the corpus' row layout and .png) and
WORKDIR/report.json their measures (valid columns, well-formed pipes, novelty, the share an A*
agent finishes beside the training levels' share: `mlfun_jax.char_rnn.playability`) beside the
held-out bits per character of the model and of the n-gram baselines.

The sequence length, the height inputs and the longest n-gram follow the folder's tallest level,
so another folder of levels (e.g. vglc_mario/sml, 15-16 rows) needs no other field. The model
reads each level with the agent's path in its empty tiles; the sampler writes rectangles of the
training heights, keeps to the tile pairs of the training levels, and draws again (up to 8 times)
a column the agent cannot get to (docs/char_rnn.md).

Measured on the 2-core CPU (9.8 min wall): held-out 0.222 bits/char (16-gram on the same corpus
0.323); 64 generated levels at temperature 1.0: 100% valid columns, 99.7% well-formed pipes (356
of 357), the agent finishes 90.6% of them and 92.9% of the training levels. Super Mario Land:
held-out 0.392 (18-gram 0.770); 100% valid columns, 97.6% well-formed pipes (328 of 336); the
agent finishes 60.9% of the generated levels and 37.5% of the training levels (9.8 min).
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
  # Levels are not read mirrored: a mirrored level is one to cross from right to left (the agent
  # finishes 3 of the 15 mirrored Super Mario Bros levels), and a model that learns them draws
  # walls Mario cannot climb (42% of its levels playable against 81% without).
  config.mirror_levels = False
  # Each level also holds the A* agent's path in its empty tiles ("Super Mario as a String"): the
  # model writes where the player goes, and levels it writes can be crossed more often.
  config.annotate_paths = True
  # Generated levels put tiles side by side and on top of each other only as the training levels
  # do: pipe halves stay together, pipes stand on the ground.
  config.tile_rules = True
  # A column the A* agent cannot get to is drawn again, up to 8 times.
  config.playable_tries = 8

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
  config.num_epochs = 150.0  # 1,200 steps.
  # 0: a column and its marker plus one (16 for 14-row levels): that n-gram sees the tile beside
  # the next one.
  config.ngram_orders = (3, 7, 0)

  config.sample_temperature = 1.0
  config.num_sample_levels = 64  # About 350 pipes: the pipe share to within ~2%.
  config.eval_every = 250
  return config
