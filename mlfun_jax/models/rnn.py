"""The series' character-level language model: embedding -> stacked LSTM/GRU -> softmax over characters.

The recurrent layers are flax's cells run by `nn.RNN` (a `lax.scan`), so a sequence of any length
compiles once. The carry is an explicit input and output: the same module processes a whole
sequence, continues a stream across consecutive batches (truncated backpropagation through time),
or steps one character at a time when sampling.

Optionally (`max_position` > 0) each character's input also gets a learned embedding of its position
within its line, counted since the last `line_token` (for Super Mario levels read column by column:
the tile's height in its column). The count is part of the carry, so it too continues across
batches and one-character steps.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

CELL_CLASSES = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}  # Names for configs.
CELLS = tuple(CELL_CLASSES)
# One entry per layer: (c, h) for an LSTM, h for a GRU, each float32 [B, hidden]; with position
# inputs, then the position of the next token within its line, int32 [B].
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


def line_positions(tokens: jax.Array, next_position: jax.Array, line_token: int
                   ) -> tuple[jax.Array, jax.Array]:
  """(int32 positions [B, T] of `tokens` [B, T] within their lines, position of the token after
  them [B]); the first token is at `next_position` [B], and a token after `line_token` is at 0."""
  def step(position, token):
    return jnp.where(token == line_token, 0, position + 1), position
  after, positions = jax.lax.scan(step, next_position.astype(jnp.int32), tokens.T)
  return positions.T, after


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
  """

  vocab_size: int
  embed_dim: int = 64
  hidden: int = 256
  num_layers: int = 2
  cell: str = "lstm"
  dropout_rate: float = 0.0
  max_position: int = 0
  line_token: int = -1

  def zero_carry(self, batch_size: int) -> Carry:
    carry = zero_carry(self.cell, self.num_layers, self.hidden, batch_size)
    if self.max_position:
      carry += (jnp.zeros((batch_size,), jnp.int32),)
    return carry

  @nn.compact
  def __call__(self, carry: Carry, tokens: jax.Array, train: bool = False
               ) -> tuple[Carry, jax.Array]:
    """(carry, int32 tokens [B, T]) -> (carry after the last token, float32 logits [B, T, vocab]).

    logits[:, t] predict the character after tokens[:, t].
    """
    if self.cell not in CELLS:
      raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
    x = nn.Embed(self.vocab_size, self.embed_dim, name="embed")(tokens)
    new_carry = []
    if self.max_position:
      if self.line_token < 0:
        raise ValueError("max_position > 0 needs the line_token id")
      positions, next_position = line_positions(tokens, carry[-1], self.line_token)
      x = x + nn.Embed(self.max_position + 1, self.embed_dim, name="position_embed")(
          jnp.minimum(positions, self.max_position))
    for layer in range(self.num_layers):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      cell = CELL_CLASSES[self.cell](self.hidden, name=f"{self.cell}_{layer}")
      layer_carry, x = nn.RNN(cell, return_carry=True)(x, initial_carry=carry[layer])
      new_carry.append(layer_carry)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    logits = nn.Dense(self.vocab_size, name="logits")(x)
    if self.max_position:
      new_carry.append(next_position)
    return tuple(new_carry), logits.astype(jnp.float32)
