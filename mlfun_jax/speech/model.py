"""A CTC speech recogniser: optional strided 1-D convolutions over time, a stack of bidirectional
GRU or LSTM layers, and per-frame logits over the characters plus the CTC blank (class 0)."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlfun_jax.core import checks
from mlfun_jax.models import rnn


class SpeechCTC(nn.Module):
  """features float [B, T, F] + frame counts int [B] -> (logits [B, T', num_classes], counts [B]).

  Attributes:
    num_classes: characters + 1 (blank at 0).
    conv_features, conv_strides, conv_kernel: the convolution front end over time (empty: none).
    cell: a name of `rnn.CELL_CLASSES` ('gru' or 'lstm').
    hidden: units per direction of each recurrent layer.
    num_layers: bidirectional layers.
    dropout_rate: dropout on the input of each recurrent layer and of the output layer.
    dtype: computation dtype of the convolutions, norms, cells and output layer (e.g. bfloat16);
      parameters, LayerNorm statistics, the recurrent states and the logits stay float32 (the CTC
      loss and its log-sum-exp recursion run on float32 logits).
  """
  num_classes: int
  conv_features: Sequence[int] = (128,)
  conv_strides: Sequence[int] = (2,)
  conv_kernel: int = 5
  cell: str = "gru"
  hidden: int = 128
  num_layers: int = 2
  dropout_rate: float = 0.1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features: jax.Array, lengths: jax.Array, train: bool = False
               ) -> tuple[jax.Array, jax.Array]:
    checks.check_floats(features, name="features", rank=3, shape="[B, T, F] (a batch)")
    checks.check_ids(lengths, name="lengths", rank=1, shape="[B]", empty_any_dtype=True)
    x = features.astype(self.dtype)
    for features_out, stride in zip(self.conv_features, self.conv_strides):
      x = nn.Conv(features_out, (self.conv_kernel,), strides=(stride,), padding="SAME",
                  dtype=self.dtype)(x)
      x = nn.LayerNorm(dtype=self.dtype)(x)
      x = nn.gelu(x)
      lengths = -(-lengths // stride)  # SAME padding keeps ceil(length / stride) frames.
    mask = (jnp.arange(x.shape[1])[None] < lengths[:, None])[..., None]
    x = x * mask  # Padding frames carry nothing into the convolution-free layers below.
    cell = lambda: rnn.CELL_CLASSES[self.cell](self.hidden, dtype=self.dtype)
    for _ in range(self.num_layers):
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      # The cells' carries start float32 (param_dtype), so their state updates stay float32.
      x = nn.Bidirectional(nn.RNN(cell()), nn.RNN(cell()))(x, seq_lengths=lengths)
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x).astype(jnp.float32), lengths
