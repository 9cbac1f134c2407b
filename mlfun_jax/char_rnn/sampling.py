"""Sampling text from a character model one character at a time (jit-compiled, batched).

    carry, last = prime(model, params, vocab.encode("\\n"), num=4)
    tokens, carry, last = sample(model, params, carry, last, key, 500, temperature=1.0, top_k=0)

Temperature 0 takes the most probable character (argmax); top_k > 0 samples among the k most
probable characters only. Id 0 (the unknown character) is never drawn.

Ids are integer character ids in 0..model.vocab_size-1 (`text.Vocabulary`; 0 is the unknown
character); a wrong dtype, rank or id raises `checks.InputError`.
"""

import functools
from typing import NamedTuple

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


class Columns(NamedTuple):
  """Where each level's sampling stands: heights, positions int32 [B] (the tiles in each level's
  current column, 0 after a marker), previous, current int32 [B, C] (the ids of the previous and
  the current column, bottom first, -1 where none; C >= every height), run int32 [B] (how many
  times the column's last tile stands on itself, plus one; 0 in an empty column)."""
  heights: jax.Array
  positions: jax.Array
  previous: jax.Array
  current: jax.Array
  run: jax.Array


def start_columns(heights: np.ndarray, prime_ids: np.ndarray, line_token: int) -> Columns:
  """`Columns` for levels of `heights` (integer [B], >= 1) continuing `prime_ids` (integer [P]):
  its unfinished last column is the current one, the column before it the previous one."""
  checks.check_ids(heights, name="heights", rank=1, shape="[B]")
  checks.check_ids(prime_ids, name="prime_ids", rank=1, shape="[P]")
  heights = np.asarray(heights, np.int32)
  pieces = np.split(np.asarray(prime_ids, np.int32),
                    np.flatnonzero(np.asarray(prime_ids) == line_token) + 1)
  pieces = [p[p != line_token] for p in pieces]
  capacity = max(int(heights.max()), *(len(p) for p in pieces))

  def padded(ids):
    row = np.full(capacity, -1, np.int32)
    row[:len(ids)] = ids
    return np.broadcast_to(row, (len(heights), capacity))

  previous = pieces[-2] if len(pieces) > 1 else np.zeros(0, np.int32)
  current = pieces[-1]
  run = 0
  while run < len(current) and current[len(current) - 1 - run] == current[-1]:
    run += 1
  return Columns(jnp.asarray(heights), jnp.full(len(heights), len(current), jnp.int32),
                 jnp.asarray(padded(previous)), jnp.asarray(padded(current)),
                 jnp.full(len(heights), run, jnp.int32))


def sample_columns(model, params, carry, last: jax.Array, key: jax.Array, length: int,
                   columns: Columns, line_token: int, rules: tuple[jax.Array, ...],
                   temperature: float = 1.0, top_k: int = 0, one_column: bool = False):
  """`sample` for level models, with every column exactly as tall as its level, each tile beside
  and above tiles the rules allow.

  (int32 tokens [B, length], carry, int32 last [B], Columns): the line token (the end-of-column
  marker) is drawn exactly when a column holds its level's height (`columns.heights`) and never
  before. `rules`: (bool right [V + 1, V], bool above [V + 1, V], int32 longest_run [V], bool
  top [V]) as `tile_rules.TileRules.tables` gives them; where the tile to the left and the one
  below allow nothing in common, the left one's rule alone holds, and where that allows nothing,
  any tile.
  With `one_column`, each level stops after the marker that ends its current column: the tokens
  after it are -1 and the carry, last token and columns returned are those just after it.
  """
  checks.check_ids(last, name="last", vocab_size=model.vocab_size, rank=1, shape="[B]")
  size = model.vocab_size
  for name, table, shape in zip(("right", "above", "longest_run", "top"), rules,
                                ((size + 1, size), (size + 1, size), (size,), (size,))):
    if np.shape(table) != shape:
      raise checks.InputError(f"rules: expected {name} of shape {list(shape)}, got shape "
                              f"{list(np.shape(table))}")
  right, above, longest, top = rules
  return _sample(model, params, carry, last, key, length, temperature, top_k, columns,
                 line_token, (jnp.asarray(right, bool), jnp.asarray(above, bool),
                              jnp.asarray(longest, jnp.int32), jnp.asarray(top, bool)),
                 one_column)


@functools.partial(jax.jit, static_argnames=("model", "length", "line_token", "one_column"))
def _sample(model, params, carry, last: jax.Array, key: jax.Array, length: int,
            temperature: float = 1.0, top_k: int = 0, columns=None, line_token=None,
            rules=None, one_column=False):
  """The scan of `sample`; with `columns` (and `line_token`, `rules`, `one_column`) that of
  `sample_columns`, which also returns the columns."""
  temperature, top_k = jnp.asarray(temperature, jnp.float32), jnp.asarray(top_k, jnp.int32)
  levels = columns is not None

  def step(state, step_key):
    carry, last, columns, done = state
    new_carry, logits = model.apply({"params": params}, carry, last[:, None])
    logits = logits[:, 0]
    if levels:
      logits = _column_logits(logits, last, columns, line_token, rules)
    token = choose(logits, step_key, temperature, top_k)
    new_columns = _after(columns, last, token, line_token) if levels else columns
    if not one_column:
      return (new_carry, token, new_columns, done), token
    keep = lambda old, new: jnp.where(done.reshape((-1,) + (1,) * (new.ndim - 1)), old, new)
    state = (jax.tree.map(keep, carry, new_carry), keep(last, token),
             jax.tree.map(keep, columns, new_columns), done | (token == line_token))
    return state, jnp.where(done, -1, token)

  done = jnp.zeros(last.shape, bool)
  (carry, last, columns, _), tokens = jax.lax.scan(step, (carry, last, columns, done),
                                                   jax.random.split(key, length))
  if not levels:
    return tokens.T, carry, last
  return tokens.T, carry, last, columns


def _column_logits(logits, last, columns: Columns, line_token: int, rules):
  """Logits [B, V] with what the column and the tile rules forbid at -inf: a full column may only
  end (the marker's logit is then the only finite one, also under top_k and temperature 0), an
  unfinished one may not."""
  right, above, longest, top = rules
  capacity = columns.previous.shape[1]
  at = jnp.clip(columns.positions, 0, capacity - 1)[:, None]
  left = jnp.take_along_axis(columns.previous, at, axis=1)[:, 0]
  below = jnp.where(columns.positions > 0, last, -1)
  by_left = right[left + 1]
  too_tall = (jnp.arange(logits.shape[-1]) == below[:, None]) & (
      columns.run >= longest[jnp.maximum(below, 0)])[:, None]
  # One tile ahead: the tile above must be one its left neighbour and this tile allow together,
  # or, for the column's top tile, one the training levels have at the top.
  left_above = jnp.take_along_axis(columns.previous, jnp.minimum(at + 1, capacity - 1), axis=1)
  left_above = jnp.where(at + 1 < capacity, left_above, -1)[:, 0]
  ahead = (above[None, 1:, :] & right[left_above + 1][:, None, :]).any(-1)
  at_top = (columns.positions == columns.heights - 1)[:, None]
  allowed = by_left & above[below + 1] & ~too_tall & jnp.where(at_top, top[None], ahead)
  allowed = jnp.where(allowed.any(-1, keepdims=True), allowed, by_left)
  allowed = allowed | ~allowed.any(-1, keepdims=True)
  full = (columns.positions >= columns.heights)[:, None]
  is_line = jnp.arange(logits.shape[-1]) == line_token
  return jnp.where(full, jnp.where(is_line, 0.0, -jnp.inf),
                   jnp.where(is_line | ~allowed, -jnp.inf, logits))


def _after(columns: Columns, last, token, line_token: int) -> Columns:
  """The columns after each level's `token` [B] (`last` [B]: the token before it)."""
  ends = token == line_token
  at = jnp.clip(columns.positions, 0, columns.current.shape[1] - 1)[:, None]
  written = jnp.put_along_axis(columns.current, at, token[:, None], axis=1, inplace=False)
  run = jnp.where((columns.positions > 0) & (token == last), columns.run + 1, 1)
  return Columns(columns.heights, jnp.where(ends, 0, columns.positions + 1),
                 jnp.where(ends[:, None], columns.current, columns.previous),
                 jnp.where(ends[:, None], -1, written), jnp.where(ends, 0, run))


def generate(model, params, prime_ids: np.ndarray, length: int, *, seed: int = 0,
             temperature: float = 1.0, top_k: int = 0, num: int = 1) -> np.ndarray:
  """int32 [num, length]: `num` continuations of `prime_ids` (integer [P], P >= 1, ids in
  0..model.vocab_size-1), the same for the same seed."""
  _check_prime(model, prime_ids)
  carry, last = prime(model, params, jnp.asarray(prime_ids, jnp.int32), num)
  tokens, _, _ = sample(model, params, carry, last, jax.random.key(seed), length, temperature,
                        top_k)
  return np.asarray(tokens)
