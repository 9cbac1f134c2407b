"""The series' character-level language model: embedding -> stacked LSTM/GRU -> softmax over characters.

The recurrent layers are flax's cells run by `nn.RNN` (a `lax.scan`), so a sequence of any length
compiles once. The carry is an explicit input and output: the same module processes a whole
sequence, continues a stream across consecutive batches (truncated backpropagation through time),
or steps one character at a time when sampling.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

CELL_CLASSES = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell}  # Names for configs.
CELLS = tuple(CELL_CLASSES)
Carry = tuple[Any, ...]  # One entry per layer: (c, h) for an LSTM, h for a GRU; each [B, hidden].


def zero_carry(cell: str, num_layers: int, hidden: int, batch_size: int) -> Carry:
  """The start-of-stream carry: float32 zeros, one entry per layer, each [batch_size, hidden]."""
  zeros = lambda: jnp.zeros((batch_size, hidden), jnp.float32)
  return tuple((zeros(), zeros()) if cell == "lstm" else zeros() for _ in range(num_layers))


def reset_carry(carry: Carry, reset: jax.Array) -> Carry:
  """`carry` with the rows where `reset` [B] (bool) is true set to zero (a stream starts anew)."""
  return jax.tree.map(lambda c: jnp.where(reset[:, None], jnp.zeros_like(c), c), carry)


class CharLM(nn.Module):
  """Stacked recurrent character model.

  Attributes:
    vocab_size: number of characters (output classes).
    embed_dim: width of the character embedding.
    hidden: units per recurrent layer.
    num_layers: stacked recurrent layers.
    cell: 'lstm' (flax OptimizedLSTMCell) or 'gru' (GRUCell).
    dropout_rate: dropout on the input of every recurrent layer and on the last layer's output.
  """

  vocab_size: int
  embed_dim: int = 64
  hidden: int = 256
  num_layers: int = 2
  cell: str = "lstm"
  dropout_rate: float = 0.0

  def zero_carry(self, batch_size: int) -> Carry:
    return zero_carry(self.cell, self.num_layers, self.hidden, batch_size)

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
    for layer in range(self.num_layers):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      cell = CELL_CLASSES[self.cell](self.hidden, name=f"{self.cell}_{layer}")
      layer_carry, x = nn.RNN(cell, return_carry=True)(x, initial_carry=carry[layer])
      new_carry.append(layer_carry)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    logits = nn.Dense(self.vocab_size, name="logits")(x)
    return tuple(new_carry), logits.astype(jnp.float32)
