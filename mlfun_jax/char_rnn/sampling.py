"""Sampling text from a character model one character at a time (jit-compiled, batched).

    carry, last = prime(model, params, vocab.encode("\\n"), num=4)
    tokens, carry, last = sample(model, params, carry, last, key, 500, temperature=1.0, top_k=0)

Temperature 0 takes the most probable character (argmax); top_k > 0 samples among the k most
probable characters only. Id 0 (the unknown character) is never drawn.

Ids are integer character ids in 0..model.vocab_size-1 (`text.Vocabulary`; 0 is the unknown
character); a wrong dtype, rank or id raises `checks.InputError`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks


def choose(logits: jax.Array, key: jax.Array, temperature: jax.Array, top_k: jax.Array
           ) -> jax.Array:
  """int32 [B]: the next character for float32 logits [B, V] (id 0 excluded)."""
  checks.check_floats(logits, name="logits", rank=2, shape="[B, V]")
  logits = logits.at[:, 0].set(-jnp.inf)
  vocab = logits.shape[-1]
  kth_largest = jnp.sort(logits, axis=-1)[:, vocab - jnp.clip(top_k, 1, vocab)]
  limited = jnp.where((top_k > 0) & (logits < kth_largest[:, None]), -jnp.inf, logits)
  scaled = limited / jnp.where(temperature > 0, temperature, 1.0)
  drawn = jax.random.categorical(key, scaled, axis=-1)
  return jnp.where(temperature > 0, drawn, jnp.argmax(logits, axis=-1)).astype(jnp.int32)


def prime(model, params, prime_ids: jax.Array, num: int):
  """(carry after prime_ids[:-1], int32 [num] copies of prime_ids[-1]) for `num` samples.

  prime_ids: int32 [P], P >= 1, ids in 0..model.vocab_size-1 (the text the samples continue; one
    prime for all samples, not a batch).
  """
  _check_prime(model, prime_ids)
  return _prime(model, params, prime_ids, num)


def _check_prime(model, prime_ids) -> None:
  checks.check_ids(prime_ids, name="prime_ids", vocab_size=model.vocab_size, rank=1, shape="[P]")
  if not np.shape(prime_ids)[0]:
    raise checks.InputError("prime_ids: expected integer ids [P] with P >= 1, got none")


@functools.partial(jax.jit, static_argnames=("model", "num"))
def _prime(model, params, prime_ids: jax.Array, num: int):
  carry = model.zero_carry(num)
  history = jnp.broadcast_to(prime_ids[:-1], (num, prime_ids.shape[0] - 1))
  if history.shape[1]:
    carry, _ = model.apply({"params": params}, carry, history)
  return carry, jnp.full((num,), prime_ids[-1], jnp.int32)


def sample(model, params, carry, last: jax.Array, key: jax.Array, length: int,
           temperature: float = 1.0, top_k: int = 0):
  """(int32 tokens [B, length], carry, int32 last tokens [B]) continuing from (carry, last [B]).

  last: int32 [B] ids in 0..model.vocab_size-1, one per sample (as `prime` returns).
  """
  checks.check_ids(last, name="last", vocab_size=model.vocab_size, rank=1, shape="[B]")
  return _sample(model, params, carry, last, key, length, temperature, top_k)


def sample_columns(model, params, carry, last: jax.Array, key: jax.Array, length: int,
                   heights: jax.Array, positions: jax.Array, line_token: int,
                   temperature: float = 1.0, top_k: int = 0):
  """`sample` for level models, with every column exactly as tall as its level.

  (int32 tokens [B, length], carry, int32 last [B], int32 positions [B]): the line token (the
  end-of-column marker) is drawn exactly when a column holds `heights` [B] tiles (int32, one per
  sample) and never before; `positions` [B] are the tiles already in each sample's current column
  (int32, 0 after a marker) and come back updated for the next call.
  """
  checks.check_ids(last, name="last", vocab_size=model.vocab_size, rank=1, shape="[B]")
  checks.check_ids(heights, name="heights", rank=1, shape="[B]")
  checks.check_ids(positions, name="positions", rank=1, shape="[B]")
  return _sample(model, params, carry, last, key, length, temperature, top_k,
                 jnp.asarray(heights, jnp.int32), jnp.asarray(positions, jnp.int32), line_token)


@functools.partial(jax.jit, static_argnames=("model", "length", "line_token"))
def _sample(model, params, carry, last: jax.Array, key: jax.Array, length: int,
            temperature: float = 1.0, top_k: int = 0, heights=None, positions=None,
            line_token=None):
  """The scan of `sample`; with `heights` (and `positions`, `line_token`) that of
  `sample_columns`, which also returns the positions."""
  temperature, top_k = jnp.asarray(temperature, jnp.float32), jnp.asarray(top_k, jnp.int32)
  columns = heights is not None

  def step(state, step_key):
    carry, last, position = state
    carry, logits = model.apply({"params": params}, carry, last[:, None])
    logits = logits[:, 0]
    if columns:
      # A full column may only end (the marker's logit is then the only finite one, also under
      # top_k and temperature 0); an unfinished one may not.
      full = (position >= heights)[:, None]
      is_line = jnp.arange(logits.shape[-1]) == line_token
      logits = jnp.where(full, jnp.where(is_line, 0.0, -jnp.inf),
                         jnp.where(is_line, -jnp.inf, logits))
    token = choose(logits, step_key, temperature, top_k)
    if columns:
      position = jnp.where(token == line_token, 0, position + 1)
    return (carry, token, position), token

  (carry, last, positions), tokens = jax.lax.scan(step, (carry, last, positions),
                                                  jax.random.split(key, length))
  if not columns:
    return tokens.T, carry, last
  return tokens.T, carry, last, positions


def generate(model, params, prime_ids: np.ndarray, length: int, *, seed: int = 0,
             temperature: float = 1.0, top_k: int = 0, num: int = 1) -> np.ndarray:
  """int32 [num, length]: `num` continuations of `prime_ids` (integer [P], P >= 1, ids in
  0..model.vocab_size-1), the same for the same seed."""
  _check_prime(model, prime_ids)
  carry, last = prime(model, params, jnp.asarray(prime_ids, jnp.int32), num)
  tokens, _, _ = sample(model, params, carry, last, jax.random.key(seed), length, temperature,
                        top_k)
  return np.asarray(tokens)
