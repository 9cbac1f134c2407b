"""Pictures of models: image grids, reconstructions, latent scatter plots and latent lattices.

All functions are pure numpy except the `save_*`/`scatter_codes` writers, which write PNG files
atomically. matplotlib (scatter plots) and scipy (Gaussian lattices) are imported only when used,
and plots are drawn on a private Agg canvas, so importing this module never changes pyplot's
backend.
"""

import math

import numpy as np
from PIL import Image

from mlfun_jax.core import files

_FIGURE_SIZE_INCHES = (7, 6)
_DPI = 100


def to_uint8(images) -> np.ndarray:
  """Float images in [0, 1] (clipped, NaN -> 0) or uint8 -> uint8 of the same shape.

  Raises:
    ValueError: for dtypes other than floating point and uint8.
  """
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return images
  if not np.issubdtype(images.dtype, np.floating):
    raise ValueError(f"images must be float in [0, 1] or uint8, got {images.dtype}")
  scaled = np.clip(np.nan_to_num(images.astype(np.float32)), 0.0, 1.0) * 255.0
  return np.round(scaled).astype(np.uint8)


def image_grid(images, columns: int, pad: int = 2, pad_value: int = 255,
               scale: int = 1) -> np.ndarray:
  """Tiles images row-major into a grid with `pad` pixels between and around the tiles.

  Args:
    images: [N, H, W, C] with C 1 or 3, float in [0, 1] or uint8; N >= 1.
    columns: tiles per row; the grid has ceil(N / columns) rows, missing tiles are `pad_value`.
    pad: padding in output pixels (not scaled).
    pad_value: grey level 0..255 of the padding and missing tiles.
    scale: integer nearest-neighbour upscaling of each tile.

  Returns:
    uint8 [rows * (H*scale + pad) + pad, columns * (W*scale + pad) + pad, C].
  """
  images = to_uint8(images)
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] == 0:
    raise ValueError(f"images must be [N>0, H, W, 1 or 3], got shape {images.shape}")
  if columns < 1 or pad < 0 or scale < 1 or not 0 <= pad_value <= 255:
    raise ValueError(f"need columns >= 1, pad >= 0, scale >= 1, 0 <= pad_value <= 255; got "
                     f"columns={columns}, pad={pad}, scale={scale}, pad_value={pad_value}")
  if scale > 1:
    images = images.repeat(scale, axis=1).repeat(scale, axis=2)
  n, h, w, c = images.shape
  rows = math.ceil(n / columns)
  grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), pad_value, np.uint8)
  for i, image in enumerate(images):
    top, left = pad + (i // columns) * (h + pad), pad + (i % columns) * (w + pad)
    grid[top:top + h, left:left + w] = image
  return grid


def reconstruction_grid(inputs, outputs, columns: int, **grid_kwargs) -> np.ndarray:
  """A grid of row pairs: `columns` inputs with their outputs directly below, for all N.

  Args:
    inputs: [N, H, W, C] originals (float in [0, 1] or uint8).
    outputs: [N, H, W, C] reconstructions, same shape (either dtype).
    columns: tiles per row.
    **grid_kwargs: `pad`, `pad_value`, `scale` of `image_grid`.

  Returns:
    uint8 image of 2 * ceil(N / columns) tile rows (see `image_grid`).
  """
  inputs, outputs = to_uint8(inputs), to_uint8(outputs)
  if inputs.shape != outputs.shape or inputs.ndim != 4:
    raise ValueError(f"inputs and outputs must both be [N, H, W, C], got {inputs.shape} and "
                     f"{outputs.shape}")
  if columns < 1:
    raise ValueError(f"columns must be >= 1, got {columns}")
  n = inputs.shape[0]
  rows = math.ceil(n / columns)
  # Blank tiles complete the last input row, so each output stays below its input.
  blank = np.full((rows * columns - n,) + inputs.shape[1:], grid_kwargs.get("pad_value", 255),
                  np.uint8)
  tiles = [np.concatenate([x, blank]).reshape((rows, columns) + x.shape[1:])
           for x in (inputs, outputs)]
  paired = np.stack(tiles, axis=1).reshape((2 * rows * columns,) + inputs.shape[1:])
  return image_grid(paired, columns, **grid_kwargs)


def save_png(image: np.ndarray, path) -> str:
  """Writes uint8 [H, W], [H, W, 1] (grey) or [H, W, 3] (RGB) to `path` as PNG, atomically.

  Parent folders are created; the file is written to `path + '.tmp'` and then renamed.

  Returns:
    `path` as a string.

  Raises:
    ValueError: for other shapes or dtypes.
  """
  image = np.asarray(image)
  if image.dtype != np.uint8:
    raise ValueError(f"save_png needs uint8 pixels, got {image.dtype} (see to_uint8)")
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
    raise ValueError(f"save_png needs [H, W], [H, W, 1] or [H, W, 3], got {image.shape}")
  return files.write_atomically(path, lambda f: Image.fromarray(image).save(f, format="PNG"))


def new_figure(size_inches: tuple[float, float], dpi: int = _DPI):
  """A matplotlib Figure (constrained layout) on its own Agg canvas, so pyplot's backend is left
  alone; matplotlib is imported here because it is slow to import."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg  # pylint: disable=g-import-not-at-top
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  figure = Figure(figsize=size_inches, dpi=dpi, layout="constrained")
  FigureCanvasAgg(figure)
  return figure


def save_figure(figure, path) -> str:
  """Writes `figure` to `path` as PNG at its own dpi, atomically; returns `path`."""
  return files.write_atomically(path, lambda f: figure.savefig(f, format="png", dpi=figure.dpi))


def scatter_codes(codes, labels, class_names, path, title: str = "", max_points: int = 10000,
                  seed: int = 0) -> str:
  """Saves a PNG scatter plot (700 x 600 pixels) of 2-D codes coloured by class, atomically.

  Args:
    codes: float [N, 2] codes.
    labels: int [N] class of each code; colours are 'tab10', cycling after 10 classes.
    class_names: names indexed by label, shown in the legend (a label without a name shows as
      its number).
    path: the PNG file to write; parent folders are created.
    title: figure title (none when empty).
    max_points: at most this many points are drawn, a random subset chosen with `seed`.
    seed: seed of the subsampling and of the (random) drawing order.

  Returns:
    `path` as a string.

  Raises:
    ValueError: unless codes is [N, 2] and labels is [N].
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  from matplotlib.lines import Line2D  # pylint: disable=g-import-not-at-top

  codes, labels = np.asarray(codes, np.float32), np.asarray(labels)
  if codes.ndim != 2 or codes.shape[1] != 2:
    raise ValueError(f"codes must be [N, 2], got shape {codes.shape}")
  if labels.shape != codes.shape[:1]:
    raise ValueError(f"labels must be [N] = [{codes.shape[0]}], got shape {labels.shape}")
  labels = labels.astype(np.int64)
  classes = np.unique(labels)  # Legend from all labels, so it does not depend on the subset.
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(codes))[:max(max_points, 0)]  # Random order: no class on top.
  palette = np.asarray(matplotlib.colormaps["tab10"].colors)
  names = [str(class_names[k]) if 0 <= k < len(class_names) else str(k) for k in classes]

  figure = new_figure(_FIGURE_SIZE_INCHES)
  axes = figure.add_subplot()
  axes.scatter(codes[order, 0], codes[order, 1], c=palette[labels[order] % len(palette)], s=4,
               linewidths=0)
  handles = [Line2D([], [], linestyle="", marker="o", markersize=6,
                    color=palette[k % len(palette)], label=name) for k, name in zip(classes, names)]
  axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              frameon=False)
  axes.set_xlabel("code 1")
  axes.set_ylabel("code 2")
  if title:
    axes.set_title(title)
  return save_figure(figure, path)


def lattice_codes(low: float, high: float, n: int) -> np.ndarray:
  """A regular n x n lattice over [low, high]^2 laid out for `image_grid(columns=n)`.

  Returns:
    float32 [n * n, 2], row-major: code 1 increases left to right along a row, code 2 decreases
    from row to row (row 0 has the highest code 2, as on a plot).
  """
  if n < 1:
    raise ValueError(f"n must be >= 1, got {n}")
  return _lattice(np.linspace(low, high, n))


def gaussian_lattice(n: int, margin: float = 0.05) -> np.ndarray:
  """`lattice_codes`' layout at standard normal quantiles `margin` .. `1 - margin`.

  Decoded, this shows a 2-D VAE's latent space with equal prior mass between neighbours.

  Returns:
    float32 [n * n, 2].
  """
  import scipy.stats  # pylint: disable=g-import-not-at-top
  if n < 1 or not 0.0 < margin < 0.5:
    raise ValueError(f"need n >= 1 and 0 < margin < 0.5, got n={n}, margin={margin}")
  return _lattice(scipy.stats.norm.ppf(np.linspace(margin, 1.0 - margin, n)))


def _lattice(values: np.ndarray) -> np.ndarray:
  """[n] increasing values -> float32 [n * n, 2] lattice, code 1 along rows, code 2 falling."""
  code1, code2 = np.meshgrid(values, values[::-1])  # [n, n] each, indexed [row, column].
  return np.stack([code1, code2], axis=-1).reshape(-1, 2).astype(np.float32)
