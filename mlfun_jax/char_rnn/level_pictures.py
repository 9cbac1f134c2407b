"""Tile levels as pictures: one coloured square per tile (Super Mario Bros tiles of the VGLC)."""

from collections.abc import Sequence

import numpy as np

from mlfun_jax.char_rnn import levels as levels_lib
from mlfun_jax.core import checks
from mlfun_jax.core import files
from mlfun_jax.core import pictures

TILE_COLOURS = {
    "-": (107, 140, 255),  # sky
    "X": (153, 78, 0),  # ground
    "S": (200, 76, 12),  # breakable brick
    "?": (255, 200, 40),  # question block
    "Q": (160, 120, 60),  # empty question block
    "E": (220, 30, 30),  # enemy
    "<": (0, 168, 0), ">": (0, 168, 0),  # pipe top
    "[": (0, 120, 0), "]": (0, 120, 0),  # pipe body
    "o": (255, 240, 0),  # coin
    "B": (40, 40, 40),  # cannon top
    "b": (90, 90, 90),  # cannon body
}
UNKNOWN_COLOUR = (255, 0, 255)


def render(rows: Sequence[str], scale: int = 8) -> np.ndarray:
  """uint8 [rows * scale, width * scale, 3]: each tile a `scale`-pixel square of its colour
  (magenta for tiles without a colour); a one-pixel darker edge shows the grid.

  `rows`: a list of str, the level's rows top to bottom (not one str).
  """
  checks.check_texts(rows, name="rows")
  tiles = np.array([[TILE_COLOURS.get(t, UNKNOWN_COLOUR) for t in row] for row in rows], np.uint8)
  picture = np.repeat(np.repeat(tiles, scale, axis=0), scale, axis=1)
  if scale >= 4:
    edge = (picture[scale - 1::scale] * 0.8).astype(np.uint8)
    picture[scale - 1::scale] = edge
    picture[:, scale - 1::scale] = (picture[:, scale - 1::scale] * 0.8).astype(np.uint8)
  return picture


PATH_COLOUR = (255, 255, 255)


def draw_path(picture: np.ndarray, path: Sequence[tuple[int, int]], scale: int = 8) -> np.ndarray:
  """A copy of a `render`ed picture with a dot in each tile (x, y) of `path` (y = 0 the top row;
  tiles above the level are left out)."""
  picture = picture.copy()
  inset = max(scale // 3, 1)
  for x, y in path:
    if y >= 0:
      picture[y * scale + inset:(y + 1) * scale - inset,
              x * scale + inset:(x + 1) * scale - inset] = PATH_COLOUR
  return picture


def write_level(columns: Sequence[str], height: int | None, prefix: str,
                path: Sequence[tuple[int, int]] | None = None) -> tuple[str, str]:
  """Writes PREFIX.txt (rows, the corpus layout) and PREFIX.png (coloured tiles, and the agent's
  `path` as white dots when given: `playability.find_path`); returns both file names.

  `columns`: a list of str, each a column bottom to top (not one str: `levels.from_stream`);
  `height`: the rows to write (None: the tallest column).
  """
  checks.check_texts(columns, name="columns")
  rows = levels_lib.rows_of(columns, height)
  files.write_text(prefix + ".txt", "\n".join(rows) + "\n")
  picture = render(rows)
  if path:
    picture = draw_path(picture, path)
  return prefix + ".txt", pictures.save_png(picture, prefix + ".png")
