"""The series' character-level language model: embedding -> stacked LSTM/GRU -> softmax over characters.

The recurrent layers are flax's cells run by `nn.RNN` (a `lax.scan`), so a sequence of any length
compiles once. The carry is an explicit input and output: the same module processes a whole
sequence, continues a stream across consecutive batches (truncated backpropagation through time),
or steps one character at a time when sampling.

Optionally (`max_position` > 0) each character's input also gets a learned embedding of its position
within its line, counted since the last `line_token` (for Super Mario levels read column by column:
the tile's height in its column). The count is part of the carry, so it too continues across
batches and one-character steps.

With `previous_line_input` as well, the input that predicts the next character also gets a learned
embedding of the character at that character's position in the previous line (levels: the tile to
the left of the one being predicted, as in the multi-dimensional Markov chains of Snodgrass &
Ontanon 2014). The previous and the current line (their first `max_position` characters) are part of
the carry too.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

CELL_CLASSES = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}  # Names for configs.
CELLS = tuple(CELL_CLASSES)
# One entry per layer: (c, h) for an LSTM, h for a GRU, each float32 [B, hidden]; with position
# inputs, then the position of the next token within its line, int32 [B]; with previous-line
# inputs, then the previous and the current line, int32 [B, max_position] (token id + 1, 0 = none,
# so a zeroed carry holds no line).
Carry = tuple[Any, ...]


def zero_carry(cell: str, num_layers: int, hidden: int, batch_size: int) -> Carry:
  """The start-of-stream carry: float32 zeros, one entry per layer, each [batch_size, hidden]."""
  zeros = lambda: jnp.zeros((batch_size, hidden), jnp.float32)
  return tuple((zeros(), zeros()) if cell == "lstm" else zeros() for _ in range(num_layers))


def reset_carry(carry: Carry, reset: jax.Array) -> Carry:
  """`carry` with the rows where `reset` [B] (bool) is true set to zero (a stream starts anew)."""
  def reset_rows(c):
    return jnp.where(reset.reshape(reset.shape + (1,) * (c.ndim - 1)), jnp.zeros_like(c), c)
  return jax.tree.map(reset_rows, carry)


def _position_after(position: jax.Array, token: jax.Array, line_token: int) -> jax.Array:
  """The line position of the token after `token` (at `position`): 0 once a line ends."""
  return jnp.where(token == line_token, 0, position + 1)


def line_positions(tokens: jax.Array, next_position: jax.Array, line_token: int
                   ) -> tuple[jax.Array, jax.Array]:
  """(int32 positions [B, T] of `tokens` [B, T] within their lines, position of the token after
  them [B]); the first token is at `next_position` [B], and a token after `line_token` is at 0."""
  def step(position, token):
    return _position_after(position, token, line_token), position
  after, positions = jax.lax.scan(step, next_position.astype(jnp.int32), tokens.T)
  return positions.T, after


def line_context(tokens: jax.Array, next_position: jax.Array, previous_line: jax.Array,
                 current_line: jax.Array, line_token: int
                 ) -> tuple[jax.Array, jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
  """Positions of `tokens` [B, T] in their lines and the previous line's entry above what follows.

  Args:
    tokens: int32 [B, T].
    next_position: int32 [B], the position of tokens[:, 0] in its line.
    previous_line, current_line: int32 [B, L], token id + 1 per position (0 = none) of the line
      before the current one and of the current line so far.
    line_token: the id that ends a line.

  Returns:
    (positions int32 [B, T] as `line_positions`; above int32 [B, T]: previous_line's entry (id + 1,
    0 = none) at the position of the token after tokens[:, t], once tokens[:, t] is read;
    (next_position, previous_line, current_line) after the last token).
  """
  length = previous_line.shape[-1]

  def step(state, token):
    position, previous, current = state
    written = jax.nn.one_hot(position, length, dtype=jnp.bool_)  # All false past the end.
    current = jnp.where(written, (token + 1)[:, None], current)
    ends = token == line_token
    previous = jnp.where(ends[:, None], current, previous)
    current = jnp.where(ends[:, None], 0, current)
    following = _position_after(position, token, line_token)
    above = jnp.take_along_axis(previous, jnp.minimum(following, length - 1)[:, None], axis=1)[:, 0]
    above = jnp.where(following < length, above, 0)
    return (following, previous, current), (position, above)

  state = (next_position.astype(jnp.int32), previous_line, current_line)
  state, (positions, above) = jax.lax.scan(step, state, tokens.T)
  return positions.T, above.T, state


class CharLM(nn.Module):
  """Stacked recurrent character model.

  Attributes:
    vocab_size: number of characters (output classes).
    embed_dim: width of the character embedding.
    hidden: units per recurrent layer.
    num_layers: stacked recurrent layers.
    cell: 'lstm' (flax OptimizedLSTMCell) or 'gru' (GRUCell).
    dropout_rate: dropout on the input of every recurrent layer and on the last layer's output.
    max_position: > 0 adds a learned embedding of each token's position within its line (positions
      beyond it share the last row); 0 disables it.
    line_token: the id that ends a line (levels: a column); needed when max_position > 0.
    previous_line_input: adds a learned embedding of the previous line's character at the position
      being predicted (needs max_position > 0; lines are remembered up to max_position).
    dtype: computation dtype of the embeddings, cells and logits layer (e.g. bfloat16); the
      parameters, the carry and the returned logits stay float32.
  """

  vocab_size: int
  embed_dim: int = 64
  hidden: int = 256
  num_layers: int = 2
  cell: str = "lstm"
  dropout_rate: float = 0.0
  max_position: int = 0
  line_token: int = -1
  previous_line_input: bool = False
  dtype: jnp.dtype = jnp.float32

  def zero_carry(self, batch_size: int) -> Carry:
    carry = zero_carry(self.cell, self.num_layers, self.hidden, batch_size)
    if self.max_position:
      carry += (jnp.zeros((batch_size,), jnp.int32),)
    if self.previous_line_input:
      carry += (jnp.zeros((batch_size, self.max_position), jnp.int32),) * 2
    return carry

  @nn.compact
  def __call__(self, carry: Carry, tokens: jax.Array, train: bool = False
               ) -> tuple[Carry, jax.Array]:
    """(carry, int32 tokens [B, T]) -> (carry after the last token, float32 logits [B, T, vocab]).

    logits[:, t] predict the character after tokens[:, t].
    """
    if self.cell not in CELLS:
      raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
    embed = lambda size, name: nn.Embed(size, self.embed_dim, dtype=self.dtype, name=name)
    x = embed(self.vocab_size, "embed")(tokens)
    new_carry, line_carry = [], []
    if self.previous_line_input and not self.max_position:
      raise ValueError("previous_line_input needs max_position > 0")
    if self.max_position:
      if self.line_token < 0:
        raise ValueError("max_position > 0 needs the line_token id")
      if self.previous_line_input:
        positions, above, line_carry = line_context(tokens, *carry[self.num_layers:],
                                                    self.line_token)
        x = x + embed(self.vocab_size + 1, "previous_line_embed")(above)
      else:
        positions, next_position = line_positions(tokens, carry[-1], self.line_token)
        line_carry = [next_position]
      x = x + embed(self.max_position + 1, "position_embed")(
          jnp.minimum(positions, self.max_position))
    for layer in range(self.num_layers):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      cell = CELL_CLASSES[self.cell](self.hidden, dtype=self.dtype, name=f"{self.cell}_{layer}")
      # The float32 carry keeps the cells' state updates float32 (their gates are `dtype`).
      layer_carry, x = nn.RNN(cell, return_carry=True)(x, initial_carry=carry[layer])
      new_carry.append(layer_carry)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    logits = nn.Dense(self.vocab_size, dtype=self.dtype, name="logits")(x)
    return tuple(new_carry) + tuple(line_carry), logits.astype(jnp.float32)
