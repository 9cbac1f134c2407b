"""Character-level LSTM language model on text (the series' RNN that writes like its training text).

Main RNN job, offline on the embedded corpus (Python's reference documentation, which ships with
CPython; 5% of its topics held out):
  python -m experiments.train --config=experiments/configs/char_rnn_text.py --workdir=workdirs/char_rnn_text
Your own text (a UTF-8 file, or a folder of them):
  ... --config.text_path=novel.txt
Then sample from it:
  python -m experiments.generate --workdir=workdirs/char_rnn_text --length=500 --temperature=0.8
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "char_rnn"
  config.seed = 0

  config.text_path = config_dict.placeholder(str)  # None: the embedded corpus.
  config.corpus_format = "text"  # Or 'levels': a folder of tile levels read column by column.
  config.heldout_names = ()  # Documents (file names) to hold out; empty: heldout_fraction of them.
  config.heldout_fraction = 0.05
  config.split_seed = 0
  config.mirror_levels = False  # Levels only: also learn from each training level's mirror image.

  config.model = ml_collections.ConfigDict()
  config.model.cell = "lstm"  # Or 'gru'.
  config.model.embed_dim = 64
  config.model.hidden = 256
  config.model.num_layers = 2
  config.model.dropout_rate = 0.2
  # > 0: each character also gets a learned embedding of its position in its line (levels: its
  # height in its column), clipped to this; 0 off.
  config.model.max_position = 0
  # With max_position > 0: the input that predicts a character also gets a learned embedding of the
  # character at its position in the previous line (levels: the tile to its left).
  config.model.previous_line_input = False

  config.sequence_length = 128  # Steps of truncated backpropagation through time.
  config.eval_sequence_length = 4096  # Held-out chunks, each read from a zero carry.
  config.batch_size = 64  # Streams, split over the devices.

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 3e-3
  config.optimizer.schedule = "warmup_cosine"
  config.optimizer.warmup_steps = 100
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.grad_clip_norm = 1.0

  config.num_epochs = 25.0
  config.num_steps = config_dict.placeholder(int)  # Overrides num_epochs when set.

  # Baselines and samples in WORKDIR/report.json and WORKDIR/samples/ at the end.
  config.ngram_orders = (3, 5, 7, 9)  # Kneser-Ney baselines (report.json gives each).
  config.sample_length = 2000
  config.sample_temperature = 0.8
  config.num_sample_levels = 8
  config.sample_level_columns = 200

  config.log_every = 50
  config.eval_every = 500
  config.checkpoint_every = 500
  config.keep_checkpoints = 3
  config.max_inflight_steps = 4
  return config
