"""mlfun_jax.char_rnn: character-level language models of text, or of tile levels read column by
column (training: `task.build`; sampling: `CharSampler`, `TrainedCharRNN`, `TileRules`; can a
level be finished: `find_path`, `Reach`; the agent's path in a level: `with_path`)."""

from mlfun_jax.char_rnn.config import defaults
from mlfun_jax.char_rnn.config import FIELDS_ADDED_LATER
from mlfun_jax.char_rnn.inference import CharSampler
from mlfun_jax.char_rnn.inference import TrainedCharRNN
from mlfun_jax.char_rnn.level_pictures import write_level
from mlfun_jax.char_rnn.playability import find_path
from mlfun_jax.char_rnn.playability import playable_share
from mlfun_jax.char_rnn.playability import Reach
from mlfun_jax.char_rnn.playability import with_path
from mlfun_jax.char_rnn.tile_rules import TileRules

__all__ = ["CharSampler", "FIELDS_ADDED_LATER", "Reach", "TileRules", "TrainedCharRNN",
           "defaults", "find_path", "playable_share", "with_path", "write_level"]
