"""The translator's attention as a picture: which source pieces each output piece looked at."""

from collections.abc import Sequence

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core import pictures


def save_attention(path: str, source_pieces: Sequence[str], target_pieces: Sequence[str],
                   weights: np.ndarray, title: str = "") -> str:
  """Saves a PNG heat map of `weights` [len(target_pieces), len(source_pieces)] (rows: output
  pieces, columns: source pieces, each row summing to one), atomically; returns `path`.

  The pieces are lists of str (not one str); weights float in [0, 1].
  """
  checks.check_texts(source_pieces, name="source_pieces")
  checks.check_texts(target_pieces, name="target_pieces")
  checks.check_floats(weights, name="weights", value_range=(0.0, 1.0))
  weights = np.asarray(weights, np.float32)
  if weights.shape != (len(target_pieces), len(source_pieces)):
    raise ValueError(f"weights {weights.shape} do not match {len(target_pieces)} target and "
                     f"{len(source_pieces)} source pieces")
  figure = pictures.new_figure((1.0 + 0.45 * len(source_pieces), 1.0 + 0.4 * len(target_pieces)))
  axes = figure.add_subplot()
  image = axes.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
  axes.set_xticks(range(len(source_pieces)), list(source_pieces), rotation=60, ha="right",
                  fontsize=9)
  axes.set_yticks(range(len(target_pieces)), list(target_pieces), fontsize=9)
  axes.set_xlabel("source")
  axes.set_ylabel("translation")
  figure.colorbar(image, ax=axes, shrink=0.8)
  if title:
    axes.set_title(title, fontsize=10)
  return pictures.save_figure(figure, path)
