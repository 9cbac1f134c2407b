"""Batched, jit-able greedy and beam-search decoding for any step function.

A step function maps (static, carry, tokens int32 [N]) -> (carry, log-probabilities float32
[N, V]) of the next token. `static` holds what every step reads but never changes (e.g. the encoded
source sentence), `carry` what it updates (the decoder's recurrent state); every leaf of both has
the batch as its leading axis. Beam search repeats each sentence's rows `beam_size` times (row
b * K + k is beam k of sentence b) and reorders the carry's rows as beams are kept.

Outputs are int32 token arrays [B, max_length]: the decoded tokens, the end token included, zeros
after it. Scores of finished hypotheses are normalised by the GNMT length penalty
((5 + length) / 6) ** alpha (alpha = 0: plain log-probability).

Token ids are ints in 0..V-1 (V: the step function's log-probability width); `bos_id` and `eos_id`
must be such ids, and every leaf of `static` and `carry` must have `batch_size` rows (beam search:
before tiling); otherwise `checks.InputError` is raised while tracing.
"""

from collections.abc import Callable
import numbers
from typing import Any

import jax
import jax.numpy as jnp

from mlfun_jax.core import checks

StepFn = Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]
NEG_INF = -1.0e9


def length_penalty(length: jax.Array, alpha: float) -> jax.Array:
  """GNMT's ((5 + length) / 6) ** alpha (float32, same shape as `length`)."""
  return ((5.0 + length.astype(jnp.float32)) / 6.0) ** alpha


def _check_settings(static: Any, carry: Any, batch_size: int, bos_id: int, eos_id: int,
                    max_length: int) -> None:
  """InputError unless the ids are ints >= 0, the lengths positive and every leaf has
  `batch_size` rows."""
  for name, value, low in (("batch_size", batch_size, 1), ("max_length", max_length, 1),
                           ("bos_id", bos_id, 0), ("eos_id", eos_id, 0)):
    if not isinstance(value, numbers.Integral) or value < low:
      raise checks.InputError(f"{name}: expected an int >= {low}, got {value!r}")
  for name, tree in (("static", static), ("carry", carry)):
    for leaf in jax.tree.leaves(tree):
      if not leaf.shape or leaf.shape[0] != batch_size:
        raise checks.InputError(f"{name}: expected every leaf with batch_size={batch_size} rows, "
                                f"got shape {tuple(leaf.shape)}")


def _check_log_probs(log_probs: jax.Array, rows: int, bos_id: int, eos_id: int) -> None:
  """InputError unless the step function gave float log-probabilities [rows, V] with V above
  `bos_id` and `eos_id` (shapes only: runs while tracing)."""
  checks.check_floats(log_probs, name="step_fn log-probabilities", rank=2, shape="[N, V]")
  if log_probs.shape[0] != rows or max(bos_id, eos_id) >= log_probs.shape[1]:
    raise checks.InputError(
        f"step_fn log-probabilities: expected [{rows}, V] with bos_id={bos_id} and "
        f"eos_id={eos_id} in 0..V-1, got shape {tuple(log_probs.shape)}")


def greedy(step_fn: StepFn, static: Any, carry: Any, *, batch_size: int, bos_id: int,
           eos_id: int, max_length: int) -> jax.Array:
  """Takes the most probable token at every step until each sentence has emitted `eos_id`.

  Returns:
    int32 [batch_size, max_length]: tokens, `eos_id` included, 0 after it.
  """
  _check_settings(static, carry, batch_size, bos_id, eos_id, max_length)

  def body(state):
    t, carry, last, done, tokens = state
    carry, log_probs = step_fn(static, carry, last)
    _check_log_probs(log_probs, batch_size, bos_id, eos_id)
    token = jnp.argmax(log_probs, -1).astype(jnp.int32)
    token = jnp.where(done, 0, token)
    tokens = tokens.at[:, t].set(token)
    return t + 1, carry, token, done | (token == eos_id), tokens

  def running(state):
    t, _, _, done, _ = state
    return (t < max_length) & ~jnp.all(done)

  state = (jnp.int32(0), carry, jnp.full((batch_size,), bos_id, jnp.int32),
           jnp.zeros((batch_size,), bool), jnp.zeros((batch_size, max_length), jnp.int32))
  return jax.lax.while_loop(running, body, state)[-1]


def _tile_rows(tree: Any, times: int) -> Any:
  """Each row of every leaf repeated `times` times in place: [B, ...] -> [B * times, ...]."""
  return jax.tree.map(lambda x: jnp.repeat(x, times, axis=0), tree)


def beam_search(step_fn: StepFn, static: Any, carry: Any, *, batch_size: int, beam_size: int,
                bos_id: int, eos_id: int, max_length: int, alpha: float = 0.0
                ) -> tuple[jax.Array, jax.Array]:
  """Keeps the `beam_size` most probable unfinished hypotheses per sentence at each step.

  A hypothesis ends when it emits `eos_id`; its score is log P / length_penalty(length, alpha).
  The search stops when no unfinished hypothesis of any sentence can still beat its sentence's
  worst kept finished one, or at `max_length` (then unfinished hypotheses compete as they are).
  With beam_size 1 and alpha 0 it returns exactly `greedy`'s tokens.

  Returns:
    (int32 [batch_size, max_length] best tokens, float32 [batch_size] their scores).
  """
  _check_settings(static, carry, batch_size, bos_id, eos_id, max_length)
  if not isinstance(beam_size, numbers.Integral) or beam_size < 1:
    raise checks.InputError(f"beam_size: expected an int >= 1, got {beam_size!r}")
  k = beam_size
  static, carry = _tile_rows(static, k), _tile_rows(carry, k)
  rows = jnp.arange(batch_size)[:, None]

  def body(state):
    t, carry, alive, alive_logp, finished, finished_score = state
    last = jnp.where(t == 0, bos_id, alive[:, :, jnp.maximum(t - 1, 0)])
    carry, log_probs = step_fn(static, carry, last.reshape(-1))
    _check_log_probs(log_probs, batch_size * k, bos_id, eos_id)
    vocab = log_probs.shape[-1]
    candidates = (alive_logp[:, :, None] + log_probs.reshape(batch_size, k, vocab)).reshape(
        batch_size, k * vocab)
    # 2K candidates always hold K that do not end, whatever the end tokens among them.
    logp, flat = jax.lax.top_k(candidates, 2 * k)
    beam, token = flat // vocab, (flat % vocab).astype(jnp.int32)
    sequences = alive[rows, beam].at[:, :, t].set(token)  # [B, 2K, L]
    ends = token == eos_id
    # Finished: the candidates among the best K that end here, merged with those kept so far
    # (an end ranked below K is not taken, as greedy decoding would not take it for K = 1).
    ends_in_top_k = ends & (jnp.arange(2 * k) < k)[None, :]
    end_score = jnp.where(ends_in_top_k, logp / length_penalty(t + 1, alpha), NEG_INF)
    pooled_score = jnp.concatenate([finished_score, end_score], 1)
    pooled = jnp.concatenate([finished, sequences], 1)
    finished_score, keep = jax.lax.top_k(pooled_score, k)
    finished = pooled[rows, keep]
    # Alive: the K best candidates that do not end; the carry follows their beams.
    alive_logp, keep = jax.lax.top_k(jnp.where(ends, NEG_INF, logp), k)
    alive = sequences[rows, keep]
    source_rows = (rows * k + jnp.take_along_axis(beam, keep, 1)).reshape(-1)
    carry = jax.tree.map(lambda x: x[source_rows], carry)
    return t + 1, carry, alive, alive_logp, finished, finished_score

  def running(state):
    t, _, _, alive_logp, _, finished_score = state
    # Log-probabilities only fall as hypotheses grow; with alpha >= 0 the penalty only grows, so
    # the best an alive hypothesis can still score is its log P over the longest length's penalty.
    best_possible = alive_logp[:, 0] / length_penalty(jnp.int32(max_length), alpha)
    improvable = best_possible > finished_score[:, -1]
    return (t < max_length) & jnp.any(improvable)

  alive_logp = jnp.tile(jnp.array([0.0] + [NEG_INF] * (k - 1), jnp.float32), (batch_size, 1))
  state = (jnp.int32(0), carry, jnp.zeros((batch_size, k, max_length), jnp.int32), alive_logp,
           jnp.zeros((batch_size, k, max_length), jnp.int32),
           jnp.full((batch_size, k), NEG_INF, jnp.float32))
  _, _, alive, alive_logp, finished, finished_score = jax.lax.while_loop(running, body, state)
  # At max_length the best alive hypothesis competes with the finished ones (it wins where none
  # finished). After an early stop it cannot: its bound is below every kept finished score.
  alive_score = alive_logp[:, 0] / length_penalty(jnp.int32(max_length), alpha)
  take_alive = (finished_score[:, 0] <= NEG_INF / 2) | (alive_score > finished_score[:, 0])
  tokens = jnp.where(take_alive[:, None], alive[:, 0], finished[:, 0])
  return tokens, jnp.where(take_alive, alive_score, finished_score[:, 0])
