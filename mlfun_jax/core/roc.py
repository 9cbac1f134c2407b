"""ROC AUC from score histograms: sums that add up over devices, batches and processes.

An eval step histograms its scores (`score_histogram`), the loop adds the histograms, and
`auc_from_histograms` turns the totals into the AUC; scores in one bin count as ties.
"""

import jax
import jax.numpy as jnp
import numpy as np


def score_histogram(scores: jax.Array, weights: jax.Array, low: float, high: float,
                    bins: int) -> jax.Array:
  """float32 [bins]: `weights` [B] summed into equal bins of `scores` [B] over [low, high].

  Scores outside the range fall into the first or last bin.
  """
  scaled = (scores - low) * (bins / (high - low))
  index = jnp.clip(jnp.floor(scaled).astype(jnp.int32), 0, bins - 1)
  return jnp.zeros(bins, jnp.float32).at[index].add(weights)


def auc_from_histograms(positives: np.ndarray, negatives: np.ndarray) -> float:
  """ROC AUC from score histograms [bins] of positives and negatives (same bins, ascending).

  The probability that a random positive scores above a random negative, ties counting one half;
  NaN when either histogram is empty.
  """
  positives, negatives = np.asarray(positives, np.float64), np.asarray(negatives, np.float64)
  if positives.sum() == 0 or negatives.sum() == 0:
    return float("nan")
  negatives_below = np.cumsum(negatives) - negatives
  wins = (positives * (negatives_below + 0.5 * negatives)).sum()
  return float(wins / (positives.sum() * negatives.sum()))
