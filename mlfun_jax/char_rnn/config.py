"""Config defaults of the character models (text, or tile levels read column by column).

Experiment configs (experiments/configs/char_rnn_*.py) start from `defaults()` and set only what
differs; `FIELDS_ADDED_LATER` fills in what configs saved before a field existed lack.
"""

import ml_collections
from ml_collections import config_dict

from mlfun_jax.core import config as core_config
from mlfun_jax.core import config_checks as cc

# Fields added after older runs were saved, with the value those runs had: the model had no
# position inputs and levels were never mirrored (the code read these with .get and these
# defaults); optimizer.momentum is unread by 'adam', the optimizer of every older char_rnn config.
FIELDS_ADDED_LATER = {
    **core_config.FIELDS_ADDED_LATER,
    "optimizer.momentum": 0.9,
    "mirror_levels": False,
    "model.max_position": 0,
    "model.previous_line_input": False,
    "heldout_first": 0,  # Held-out documents were named (heldout_names) or drawn.
    "annotate_paths": False,
    "tile_rules": False,
    "playable_tries": 0,
}

# Start-up checks of every field (core.config_checks): ranges, types, finite numbers.
FIELD_RULES = {
    **cc.LOOP_RULES,
    "text_path": cc.Text(optional=True),
    "corpus_format": cc.Text(("text", "levels")),
    "heldout_names": cc.TupleOf(cc.Item(cc.Text(), "file names")),
    "heldout_first": cc.Integer(0),
    "heldout_fraction": cc.Fraction(),
    "split_seed": cc.Integer(0),
    "mirror_levels": cc.Boolean(),
    "annotate_paths": cc.Boolean(),
    "tile_rules": cc.Boolean(),
    "playable_tries": cc.Integer(0, 1000),
    "model.cell": cc.Text(("lstm", "gru")),
    "model.embed_dim": cc.Integer(1, cc.MAX_WIDTH),
    "model.hidden": cc.Integer(1, cc.MAX_WIDTH),
    "model.num_layers": cc.Integer(1),
    "model.dropout_rate": cc.Fraction(),
    "model.max_position": cc.Integer(-1),
    "model.previous_line_input": cc.Boolean(),
    "sequence_length": cc.Integer(0, cc.MAX_SEQUENCE),
    "eval_sequence_length": cc.Integer(1, 10 * cc.MAX_SEQUENCE),
    "ngram_orders": cc.Ints(0),
    "sample_length": cc.Integer(1, 1_000_000),
    "sample_temperature": cc.NonNegative(),
    "num_sample_levels": cc.Integer(0, 4096),
    "sample_level_columns": cc.Integer(1, 1_000_000),
}


def defaults() -> ml_collections.ConfigDict:
  """Every field the char_rnn family reads, with its default (the text model's values)."""
  config = core_config.loop_defaults("char_rnn")
  config.batch_size = 64  # Streams, split over the devices.
  config.num_epochs = 25.0  # Passes over the training streams (num_steps overrides).
  config.eval_every = 500  # Steps between held-out evaluations.

  config.text_path = config_dict.placeholder(str)  # A UTF-8 file or folder; None: embedded corpus.
  config.corpus_format = "text"  # Or 'levels': a folder of tile levels read column by column.
  config.heldout_names = ()  # Documents (file names) to hold out; empty: see heldout_first.
  # With heldout_names empty: > 0 holds out the first N documents in name order (a level folder's
  # first level(s)), 0 draws heldout_fraction of them with split_seed.
  config.heldout_first = 0
  config.heldout_fraction = 0.05  # Share of characters held out (whole documents).
  config.split_seed = 0  # Seed of the held-out documents' draw.
  config.mirror_levels = False  # Levels only: also learn from each training level's mirror image.
  # Levels only: the model reads (and writes) the A* agent's path in the empty tiles
  # (`playability.with_path`); generated levels lose it before anything else sees them.
  config.annotate_paths = False
  # Levels only: generated levels put a tile beside (and above) another only where the training
  # levels do (`tile_rules`); report.json also measures levels sampled without the rules.
  config.tile_rules = False
  # Levels only: a generated column the A* agent cannot get to (`playability.Reach`) is drawn again
  # up to this many times (0: never); report.json also measures levels sampled without it.
  config.playable_tries = 0

  config.model = ml_collections.ConfigDict()
  config.model.cell = "lstm"  # Or 'gru'.
  config.model.embed_dim = 64  # Character embedding width.
  config.model.hidden = 256  # Units of each recurrent layer.
  config.model.num_layers = 2  # Stacked recurrent layers.
  config.model.dropout_rate = 0.2  # Dropout between layers and before the softmax.
  # > 0: each character also gets a learned embedding of its position in its line (levels: its
  # height in its column), clipped to this; 0 off; -1: the tallest level's column (levels).
  config.model.max_position = 0
  # With max_position > 0: the input that predicts a character also gets a learned embedding of the
  # character at its position in the previous line (levels: the tile to its left).
  config.model.previous_line_input = False

  # Steps of truncated backpropagation through time (0: ten columns of the tallest level, or 128).
  config.sequence_length = 128
  config.eval_sequence_length = 4096  # Held-out chunks, each read from a zero carry.

  config.optimizer.name = "adam"  # See core.config.optimizer_defaults.
  config.optimizer.learning_rate = 3e-3  # Peak learning rate.
  config.optimizer.schedule = "warmup_cosine"  # Linear warm-up, then cosine decay.
  config.optimizer.warmup_steps = 100  # Warm-up steps.
  config.optimizer.grad_clip_norm = 1.0  # Clip gradients to this global norm.

  # Baselines and samples in WORKDIR/report.json and WORKDIR/samples/ at the end.
  # Kneser-Ney baselines (report.json gives each); 0: a column and its marker, plus one (levels).
  config.ngram_orders = (3, 5, 7, 9)
  config.sample_length = 2000  # Characters of the text sample.
  config.sample_temperature = 0.8  # Temperature of the samples (0: argmax).
  config.num_sample_levels = 8  # Levels generated (level corpora).
  config.sample_level_columns = 200  # Columns of each generated level.
  return config


# Columns of one training sequence when sequence_length is 0 (levels).
COLUMNS_PER_SEQUENCE = 10
TEXT_SEQUENCE_LENGTH = 128  # sequence_length 0 for text.


def resolved_for_corpus(config: ml_collections.ConfigDict,
                        level_heights: tuple[int, ...] = ()) -> ml_collections.ConfigDict:
  """A copy of `config` with the fields that follow the corpus filled in from its level heights
  (the training levels' heights; empty for text):
  - sequence_length 0: COLUMNS_PER_SEQUENCE columns of the tallest level (markers included), or
    TEXT_SEQUENCE_LENGTH characters of text;
  - model.max_position -1: the tallest column plus its marker (every height gets its own
    embedding);
  - an ngram order 0: the tallest column plus its marker, plus one (the n-gram then sees the tile
    beside the next one).
  """
  config = ml_collections.ConfigDict(config.to_dict())
  column = max(level_heights) + 1 if level_heights else 0
  if config.sequence_length == 0:
    config.sequence_length = COLUMNS_PER_SEQUENCE * column if column else TEXT_SEQUENCE_LENGTH
  if config.model.max_position == -1:
    config.model.max_position = column or 0
  config.ngram_orders = tuple(order or column + 1 for order in config.ngram_orders
                              if order or column)
  return config
