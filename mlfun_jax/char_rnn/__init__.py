"""mlfun_jax.char_rnn: character-level language models of text, or of tile levels read column by
column (training: `task.build`; sampling: `CharSampler`, `TrainedCharRNN`; can a level be
finished: `find_path`)."""

from mlfun_jax.char_rnn.config import defaults
from mlfun_jax.char_rnn.config import FIELDS_ADDED_LATER
from mlfun_jax.char_rnn.inference import CharSampler
from mlfun_jax.char_rnn.inference import TrainedCharRNN
from mlfun_jax.char_rnn.level_pictures import write_level
from mlfun_jax.char_rnn.playability import find_path
from mlfun_jax.char_rnn.playability import playable_share

__all__ = ["CharSampler", "FIELDS_ADDED_LATER", "TrainedCharRNN", "defaults", "find_path",
           "playable_share", "write_level"]
