"""On-device CTC decoding and error counts (pure JAX), so eval steps can return sums.

Character error rate = character edits / reference characters; word error rate = word edits /
reference words, where words are the runs of non-space classes (compared through a 32-bit hash).
"""

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks

_HASH_MULTIPLIERS = np.random.default_rng(0).integers(1, 2**32 - 1, 512, dtype=np.uint64
                                                      ).astype(np.uint32) | 1


def greedy_ids(logits: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Best-path decoding of a batch: argmax per frame, merge repeats, drop blanks (class 0).

  Args:
    logits: float [B, T, K] (a batch); lengths: int [B] real frames.

  Returns:
    (int32 [B, T] decoded classes, left-aligned, 0 after the end; int32 [B] their counts).
  """
  checks.check_floats(logits, name="logits", rank=3, shape="[B, T, K] (a batch)")
  checks.check_ids(lengths, name="lengths", rank=1, shape="[B]", empty_any_dtype=True)
  best = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  t = jnp.arange(best.shape[1])
  previous = jnp.pad(best[:, :-1], ((0, 0), (1, 0)), constant_values=-1)
  keep = (t[None] < lengths[:, None]) & (best != previous) & (best != 0)
  position = jnp.where(keep, jnp.cumsum(keep, axis=1) - 1, best.shape[1])
  rows = jnp.broadcast_to(jnp.arange(best.shape[0])[:, None], best.shape)
  out = jnp.zeros_like(best).at[rows, position].set(best, mode="drop")
  return out, keep.sum(axis=1).astype(jnp.int32)


def edit_distance(a: jax.Array, a_length: jax.Array, b: jax.Array, b_length: jax.Array) -> jax.Array:
  """Levenshtein distance between a[:a_length] and b[:b_length] (1-D int arrays); int32 scalar.

  Scans over a; each row of the table is computed at once: insertions along the row are a running
  minimum of (row[k] - k) plus j.
  """
  j = jnp.arange(b.shape[0] + 1, dtype=jnp.int32)

  def row_step(row, inputs):
    i, a_i = inputs
    substitute = row[:-1] + (a_i != b).astype(jnp.int32)
    delete = row[1:] + 1
    best = jnp.concatenate([row[:1] + 1, jnp.minimum(substitute, delete)])
    new = jax.lax.cummin(best - j) + j
    return jnp.where(i < a_length, new, row), None

  row, _ = jax.lax.scan(row_step, j, (jnp.arange(a.shape[0]), a))
  return row[jnp.clip(b_length, 0, b.shape[0])]


def word_hashes(ids: jax.Array, length: jax.Array, space: int) -> tuple[jax.Array, jax.Array]:
  """Words of ids[:length] (separated by runs of `space`) as uint32 hashes [L], and their count."""
  n = ids.shape[0]
  t = jnp.arange(n)
  is_char = (t < length) & (ids != space)
  starts = is_char & ~jnp.pad(is_char[:-1], (1, 0))
  word = jnp.where(is_char, jnp.cumsum(starts) - 1, n)
  position = t - jax.lax.cummax(jnp.where(starts, t, 0))
  multipliers = jnp.asarray(_HASH_MULTIPLIERS)[position % len(_HASH_MULTIPLIERS)]
  contribution = (ids.astype(jnp.uint32) + 1) * multipliers
  hashes = jnp.zeros(n, jnp.uint32).at[word].add(contribution, mode="drop")
  return hashes, starts.sum().astype(jnp.int32)


def error_counts(logits: jax.Array, lengths: jax.Array, labels: jax.Array,
                 label_lengths: jax.Array, space: int) -> dict[str, jax.Array]:
  """Per-utterance greedy-decoding errors [B] (int32): char_edits, chars, word_edits, words, exact.

  Args:
    logits: float [B, T, K]; lengths: int [B] real frames.
    labels: int [B, L] reference class ids in 1..K-1 (0-padded; checked on concrete arrays);
      label_lengths: int [B].
    space: the class separating words.
  """
  checks.check_ids(labels, name="labels", rank=2, shape="[B, L]", vocab_size=logits.shape[-1],
                   empty_any_dtype=True)
  checks.check_ids(label_lengths, name="label_lengths", rank=1, shape="[B]", empty_any_dtype=True)
  hyp, hyp_lengths = greedy_ids(logits, lengths)
  char_edits = jax.vmap(edit_distance)(labels, label_lengths, hyp, hyp_lengths)
  ref_words, num_ref = jax.vmap(word_hashes, in_axes=(0, 0, None))(labels, label_lengths, space)
  hyp_words, num_hyp = jax.vmap(word_hashes, in_axes=(0, 0, None))(hyp, hyp_lengths, space)
  word_edits = jax.vmap(edit_distance)(ref_words, num_ref, hyp_words, num_hyp)
  return {"char_edits": char_edits, "chars": label_lengths.astype(jnp.int32),
          "word_edits": word_edits, "words": num_ref,
          "exact": (char_edits == 0).astype(jnp.int32)}
