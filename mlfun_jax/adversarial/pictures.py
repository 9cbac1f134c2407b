"""Pictures of attacks: accuracy (or success) against epsilon, and example triples.

Drawn with matplotlib on a private Agg canvas (`pictures.new_figure`: pyplot's backend is left
alone) and written atomically as PNG.
"""

from collections.abc import Sequence

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core import pictures

AMPLIFICATION = 10.0  # The perturbation column shows 0.5 + AMPLIFICATION * (adversarial - original).


def curve(epsilons: Sequence[float], values: Sequence[float], path: str, *, ylabel: str,
          title: str = "", clean: float | None = None) -> str:
  """Saves a PNG line plot of `values` (fractions) against `epsilons`; `clean` adds the point at
  epsilon 0 (the clean accuracy). Returns `path`."""
  xs, ys = list(epsilons), [100.0 * v for v in values]
  if clean is not None:
    xs, ys = [0.0] + xs, [100.0 * clean] + ys
  figure = pictures.new_figure((6, 4.5))
  axes = figure.add_subplot()
  axes.plot(xs, ys, marker="o")
  for x, y in zip(xs, ys):
    axes.annotate(f"{y:.1f}%", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
  axes.set_xlabel("epsilon (L-infinity, pixels in [0, 1])")
  axes.set_ylabel(ylabel)
  axes.set_ylim(-2, 102)
  axes.grid(alpha=0.3)
  if title:
    axes.set_title(title, fontsize=10)
  return pictures.save_figure(figure, path)


def example_grid(original: np.ndarray, adversarial: np.ndarray, clean_probabilities: np.ndarray,
                 probabilities: np.ndarray, class_names: Sequence[str], path: str, *,
                 labels: np.ndarray | None = None, targets: np.ndarray | None = None,
                 title: str = "") -> str:
  """Saves a PNG with one row per example: original, 10x-amplified perturbation, adversarial image,
  each image titled with the predicted class and its probability.

  Args:
    original, adversarial: float [N, H, W, C] in [0, 1] (C 1 or 3).
    clean_probabilities, probabilities: float [N, classes] of the original and adversarial images.
    class_names: names indexed by class.
    path: the PNG file to write.
    labels: int [N] true classes (shown above the original), optional.
    targets: int [N] target classes (shown above the adversarial image), optional.
    title: figure title.

  Returns:
    `path`.

  Raises:
    checks.InputConventionError: images that are not float [N, H, W, C] in [0, 1], or labels /
      targets that are not classes of `class_names`.
  """
  for name, images in (("original", original), ("adversarial", adversarial)):
    checks.check_images(np.asarray(images), name=name, dtype_kind="f", value_range=(0.0, 1.0))
  for name, ids in (("labels", labels), ("targets", targets)):
    if ids is not None:
      checks.check_ids(np.asarray(ids), name=name, vocab_size=len(class_names), rank=1)
  n = len(original)
  figure = pictures.new_figure((6.0, 2.0 * n + (0.4 if title else 0.0)))
  perturbation = np.clip(0.5 + AMPLIFICATION * (adversarial - original), 0.0, 1.0)
  grey = original.shape[-1] == 1

  def show(axes, image, text):
    axes.imshow(pictures.to_uint8(image[..., 0] if grey else image), cmap="gray" if grey else None,
                vmin=0, vmax=255, interpolation="nearest")
    axes.set_title(text, fontsize=8)
    axes.set_xticks([])
    axes.set_yticks([])

  def answer(p):
    k = int(np.argmax(p))
    return f"{class_names[k]} ({100 * p[k]:.1f}%)"

  grid = figure.subplots(n, 3, squeeze=False)
  for i in range(n):
    truth = f"label {class_names[int(labels[i])]}\n" if labels is not None else ""
    goal = f"target {class_names[int(targets[i])]}\n" if targets is not None else ""
    linf = float(np.abs(adversarial[i] - original[i]).max())
    show(grid[i, 0], original[i], f"{truth}original: {answer(clean_probabilities[i])}")
    show(grid[i, 1], perturbation[i], f"perturbation x{AMPLIFICATION:g}\nmax |d| = {linf:.3f}")
    show(grid[i, 2], adversarial[i], f"{goal}adversarial: {answer(probabilities[i])}")
  if title:
    figure.suptitle(title, fontsize=10)
  return pictures.save_figure(figure, path)
