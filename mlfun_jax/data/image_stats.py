"""Per-channel statistics of uint8 images and the standardisation that uses them."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
  """Per-channel mean and std of uint8 [N, H, W, C] images scaled to [0, 1].

  Reads `chunk` images at a time, so memory stays small however large the split.
  """
  channels = images.shape[-1]
  total, total_squares = np.zeros(channels), np.zeros(channels)
  for start in range(0, len(images), chunk):
    scaled = images[start:start + chunk].reshape(-1, channels).astype(np.float64) / 255.0
    total += scaled.sum(axis=0)
    total_squares += np.square(scaled).sum(axis=0)
  count = images.size // channels
  mean = total / count
  std = np.sqrt(np.maximum(total_squares / count - mean**2, 0.0))
  return mean.tolist(), np.maximum(std, 1e-3).tolist()


def normalise(images: jax.Array, mean: Any, std: Any) -> jax.Array:
  """uint8 [B, H, W, C] images -> float32, standardised with the training set's per-channel stats."""
  return (images.astype(jnp.float32) / 255.0 - jnp.asarray(mean)) / jnp.asarray(std)
