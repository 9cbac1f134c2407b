"""The series' translator: a bidirectional recurrent encoder and a recurrent decoder with attention.

Encoder: embedding -> stacked bidirectional GRU/LSTM layers (flax `nn.Bidirectional` with the
source lengths, so the backward direction starts at each sentence's last real token) -> one vector
per source token (the attention memory) and the final states of both directions (the decoder's
first state).

Decoder (Luong et al. 2015, "global attention" without input feeding): stacked GRU/LSTM layers over
the target embeddings; every top-layer state h_t attends over the memory (additive or
multiplicative scores, padded source positions masked out), and tanh(W [h_t; context_t]) feeds the
softmax. Without input feeding the recurrent part does not depend on the attention, so a
teacher-forced pass runs the recurrence once and attends for all target positions in one batched
product; decoding calls the same `decode` one token at a time with the carry.

Inputs are int token ids [B, S] / [B, T] (0 = padding) below the vocabulary sizes and int32
lengths [B]; another dtype, rank or id raises `checks.InputError` (ids checked outside jit only).
`create_model` and `create_state` build the model and train state of a translation config.
"""

from typing import Any

import flax.linen as nn
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections

from mlfun_jax.core import checks
from mlfun_jax.core import optim
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn
from mlfun_jax.models.rnn import CELL_CLASSES
from mlfun_jax.models.rnn import CELLS
from mlfun_jax.models.init import init_variables

TrainState = train_state.TrainState

ATTENTIONS = ("additive", "multiplicative")
Carry = tuple[Any, ...]  # One entry per decoder layer: (c, h) for an LSTM, h for a GRU; [B, hidden].
Memory = dict[str, jax.Array]  # 'values' [B, S, 2H], 'keys' [B, S, A], 'mask' bool [B, S].


def _hidden_state(carry) -> jax.Array:
  """A cell's output state [B, H] from its carry ((c, h) for LSTMs, h for GRUs)."""
  return carry[1] if isinstance(carry, tuple) else carry


class Attention(nn.Module):
  """Scores decoder states against the memory keys; softmax over real source positions.

  Attributes:
    kind: 'additive' (Bahdanau: v . tanh(W q + k)) or 'multiplicative' (Luong 'general': q . k).
    features: width of keys and (additive) the projected queries.
    dtype: computation dtype of the projections and scores; the softmax is float32.
  """

  kind: str = "additive"
  features: int = 256
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    if self.kind not in ATTENTIONS:
      raise ValueError(f"unknown attention {self.kind!r}; choose one of {', '.join(ATTENTIONS)}")
    self.key_projection = nn.Dense(self.features, use_bias=False, dtype=self.dtype, name="keys")
    self.query_projection = nn.Dense(self.features, use_bias=self.kind == "additive",
                                      dtype=self.dtype, name="queries")
    if self.kind == "additive":
      self.score_vector = nn.Dense(1, use_bias=False, dtype=self.dtype, name="score")

  def keys(self, values: jax.Array) -> jax.Array:
    """Memory keys [B, S, features] of memory values [B, S, D] (computed once per sentence)."""
    return self.key_projection(values)

  def __call__(self, queries: jax.Array, memory: Memory) -> tuple[jax.Array, jax.Array]:
    """(queries [B, T, H], memory) -> (contexts [B, T, D], weights float32 [B, T, S]).

    The weights of every query sum to one over the real source positions and are 0 on padding.
    """
    projected = self.query_projection(queries)
    keys = memory["keys"]
    if self.kind == "additive":
      hidden = jnp.tanh(projected[:, :, None, :] + keys[:, None, :, :])  # [B, T, S, A]
      scores = self.score_vector(hidden)[..., 0]
    else:
      scores = jnp.einsum("bta,bsa->bts", projected, keys)
    scores = scores.astype(jnp.float32)
    scores = jnp.where(memory["mask"][:, None, :], scores, jnp.finfo(jnp.float32).min)
    weights = jax.nn.softmax(scores, axis=-1)
    weights = jnp.where(memory["mask"][:, None, :], weights, 0.0)
    contexts = jnp.einsum("bts,bsd->btd", weights.astype(self.dtype),
                          memory["values"].astype(self.dtype))
    return contexts, weights


class Seq2Seq(nn.Module):
  """Encoder-decoder with attention over token ids (0 = padding).

  Attributes:
    source_vocab_size, target_vocab_size: token counts of the two tokenisers.
    embed_dim: width of both embeddings.
    hidden: units of each decoder layer; each encoder direction has hidden // 2, so the memory
      vectors are `hidden` wide.
    encoder_layers, decoder_layers: stacked recurrent layers.
    cell: 'gru' or 'lstm'.
    attention: 'additive' or 'multiplicative'.
    dropout_rate: dropout on embeddings, between layers and before the softmax layer.
    dtype: computation dtype of embeddings, cells, attention and dense layers (e.g. bfloat16);
      parameters, the recurrent carries, the attention softmax and the logits stay float32.
  """

  source_vocab_size: int
  target_vocab_size: int
  embed_dim: int = 256
  hidden: int = 512
  encoder_layers: int = 1
  decoder_layers: int = 1
  cell: str = "gru"
  attention: str = "additive"
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    if self.cell not in CELLS:
      raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
    if self.hidden % 2:
      raise ValueError(f"hidden={self.hidden} must be even (two encoder directions of hidden/2)")
    cell = lambda features: CELL_CLASSES[self.cell](features, dtype=self.dtype)
    dense = lambda features, name: nn.Dense(features, dtype=self.dtype, name=name)
    self.source_embed = nn.Embed(self.source_vocab_size, self.embed_dim, dtype=self.dtype,
                                 name="source_embed")
    self.target_embed = nn.Embed(self.target_vocab_size, self.embed_dim, dtype=self.dtype,
                                 name="target_embed")
    half = self.hidden // 2
    self.encoder = [nn.Bidirectional(nn.RNN(cell(half)), nn.RNN(cell(half)),
                                     name=f"encoder_{i}") for i in range(self.encoder_layers)]
    self.bridges = [dense(self.hidden, f"bridge_{i}") for i in range(self.decoder_layers)]
    self.decoder = [nn.RNN(cell(self.hidden), return_carry=True, name=f"decoder_{i}")
                    for i in range(self.decoder_layers)]
    self.attend = Attention(self.attention, self.hidden, self.dtype, name="attention")
    self.combine = dense(self.hidden, "combine")
    self.logits_layer = dense(self.target_vocab_size, "logits")
    self.dropout = nn.Dropout(self.dropout_rate)

  def encode(self, source: jax.Array, source_length: jax.Array, train: bool = False
             ) -> tuple[Memory, Carry]:
    """(int32 source [B, S] ids in 0..source_vocab_size-1, int32 lengths [B]) -> (memory, the
    decoder's first carry)."""
    checks.check_ids(source, name="source", vocab_size=self.source_vocab_size, rank=2,
                     shape="[B, S]")
    checks.check_ids(source_length, name="source_length", rank=1, shape="[B]")
    x = self.dropout(self.source_embed(source), deterministic=not train)
    for i, layer in enumerate(self.encoder):
      if i:
        x = self.dropout(x, deterministic=not train)
      (forward, backward), x = layer(x, seq_lengths=source_length, return_carry=True)
    final = jnp.concatenate([_hidden_state(forward), _hidden_state(backward)], -1)  # [B, hidden]
    carry = []
    for bridge in self.bridges:
      h = jnp.tanh(bridge(final)).astype(jnp.float32)  # float32 carries: see the class.
      carry.append((jnp.zeros_like(h), h) if self.cell == "lstm" else h)
    mask = jnp.arange(source.shape[1])[None, :] < source_length[:, None]
    return {"values": x, "keys": self.attend.keys(x), "mask": mask}, tuple(carry)

  def decode(self, carry: Carry, tokens: jax.Array, memory: Memory, train: bool = False
             ) -> tuple[Carry, jax.Array, jax.Array]:
    """(carry, int32 tokens [B, T], memory) -> (carry after the last token, float32 logits
    [B, T, target_vocab] predicting the token after each, float32 attention weights [B, T, S]).

    A whole teacher-forced target, or one token at a time (T = 1) with the carry: the same outputs.
    tokens: ids in 0..target_vocab_size-1 (BOS 2 first for a whole target).
    """
    checks.check_ids(tokens, name="tokens", vocab_size=self.target_vocab_size, rank=2,
                     shape="[B, T]")
    x = self.dropout(self.target_embed(tokens), deterministic=not train)
    new_carry = []
    for i, layer in enumerate(self.decoder):
      if i:
        x = self.dropout(x, deterministic=not train)
      layer_carry, x = layer(x, initial_carry=carry[i])
      new_carry.append(layer_carry)
    contexts, weights = self.attend(x, memory)
    attentional = jnp.tanh(self.combine(jnp.concatenate([x, contexts], -1)))
    attentional = self.dropout(attentional, deterministic=not train)
    return tuple(new_carry), self.logits_layer(attentional).astype(jnp.float32), weights

  def __call__(self, source: jax.Array, source_length: jax.Array, target_in: jax.Array,
               train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Teacher forcing: (source [B, S], lengths [B], target_in [B, T] = BOS + target without its
    last token) -> (float32 logits [B, T, target_vocab], attention [B, T, S])."""
    memory, carry = self.encode(source, source_length, train)
    _, logits, weights = self.decode(carry, target_in, memory, train)
    return logits, weights


def create_model(config: ml_collections.ConfigDict, source_vocab_size: int,
                 target_vocab_size: int) -> Seq2Seq:
  """The Seq2Seq of `config.model` over the two vocabularies, computing in config.dtype; UserError
  naming a bad field."""
  if config.model.cell not in rnn.CELLS:
    raise UserError(f"unknown config field model.cell={config.model.cell!r}; choose one of "
                    f"{', '.join(rnn.CELLS)}")
  if config.model.attention not in ATTENTIONS:
    raise UserError(f"unknown config field model.attention={config.model.attention!r}; choose "
                    f"one of {', '.join(ATTENTIONS)}")
  if config.model.hidden % 2 or config.model.hidden < 2:
    raise UserError(f"config field model.hidden={config.model.hidden} must be a positive even "
                    "number")
  return Seq2Seq(source_vocab_size, target_vocab_size, embed_dim=config.model.embed_dim,
                 hidden=config.model.hidden, encoder_layers=config.model.encoder_layers,
                 decoder_layers=config.model.decoder_layers, cell=config.model.cell,
                 attention=config.model.attention, dropout_rate=config.model.dropout_rate,
                 dtype=jnp.dtype(config.dtype))


def create_state(model: Seq2Seq, config: ml_collections.ConfigDict, num_steps: int,
                 rng: jax.Array) -> TrainState:
  """Fresh parameters from `rng` and the optimizer of `config.optimizer`."""
  tokens = jnp.ones((1, 4), jnp.int32)
  params = init_variables(model, {"params": rng}, tokens, jnp.array([4], jnp.int32),
                          tokens)["params"]
  return TrainState.create(apply_fn=model.apply, params=params,
                           tx=optim.create_optimizer(config.optimizer, num_steps,
                                                     config.grad_accum_steps))
