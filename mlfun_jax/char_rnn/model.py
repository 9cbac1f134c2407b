"""The character model of a char_rnn config and its train state (shared by training and inference).

Every document is read after START, which also ends every line (levels: every column).
"""

from typing import Any

import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections

from mlfun_jax.char_rnn import text
from mlfun_jax.core import optim
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn
from mlfun_jax.models.init import init_variables

START = "\n"  # Every document is read after this token (levels: an empty column before each).


class CharRNNState(train_state.TrainState):
  """flax TrainState plus the carry of every stream of the global batch ([batch_size, ...])."""
  carry: Any = flax.struct.field(default_factory=tuple)


def start_id(vocab: text.Vocabulary) -> int:
  """The id of START, which begins every document and ends every line (levels: every column)."""
  return int(vocab.encode(START)[0])


def create_model(config: ml_collections.ConfigDict, vocab: text.Vocabulary) -> rnn.CharLM:
  """The model of `config.model` over `vocab`, computing in config.dtype; lines (levels: columns)
  end with START."""
  if config.model.cell not in rnn.CELLS:
    raise UserError(f"unknown config field model.cell={config.model.cell!r}; choose one of "
                    f"{', '.join(rnn.CELLS)}")
  max_position = config.model.max_position
  if not isinstance(max_position, int) or max_position < 0:
    raise UserError(f"config field model.max_position={max_position!r} must be an integer >= 0")
  previous_line_input = config.model.previous_line_input
  if not isinstance(previous_line_input, bool):
    raise UserError(f"config field model.previous_line_input={previous_line_input!r} must be "
                    "True or False")
  if previous_line_input and not max_position:
    raise UserError("config field model.previous_line_input=True needs model.max_position > 0 "
                    "(the length of line it remembers)")
  return rnn.CharLM(vocab_size=len(vocab), embed_dim=config.model.embed_dim,
                    hidden=config.model.hidden, num_layers=config.model.num_layers,
                    cell=config.model.cell, dropout_rate=config.model.dropout_rate,
                    max_position=max_position, line_token=start_id(vocab),
                    previous_line_input=previous_line_input, dtype=jnp.dtype(config.dtype))


def create_state(model: rnn.CharLM, config: ml_collections.ConfigDict, num_steps: int,
                 rng: jax.Array) -> CharRNNState:
  """Fresh parameters from `rng`, the optimizer of `config.optimizer`, zero carries."""
  params = init_variables(model, {"params": rng}, model.zero_carry(1),
                          jnp.zeros((1, 1), jnp.int32))["params"]
  return CharRNNState.create(apply_fn=model.apply, params=params,
                             tx=optim.create_optimizer(config.optimizer, num_steps,
                                                       config.grad_accum_steps),
                             carry=model.zero_carry(config.batch_size))
