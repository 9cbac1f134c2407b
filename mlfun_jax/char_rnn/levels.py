"""Tile levels (Video Game Level Corpus layout) <-> character streams read column by column.

A level file holds rows of tiles, top to bottom, one character per tile (e.g. '-' sky, 'X' ground,
'<>' and '[]' pipes in Super Mario Bros). As in the series, a character model reads a level column
by column, left to right, each column from the bottom tile up, followed by an end-of-column marker:
the stream "XX--\\nXX<-\\n..." is two columns of a 4-row level. Levels of different heights give
columns of different lengths; nothing in the stream assumes one height.

A level is a list of str (rows top to bottom, or columns bottom to top), a stream one str; one str
where a list is expected (or the reverse) raises `checks.InputError`.
"""

import collections
from collections.abc import Iterable, Sequence

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError

END_OF_COLUMN = "\n"
SKY = "-"


def parse_level(text: str, name: str = "level") -> list[str]:
  """The rows (top to bottom) of a level file's text (one str); UserError unless they are a
  rectangle."""
  checks.check_text(text, name="text")
  rows = [row.rstrip("\r") for row in text.split("\n")]
  while rows and not rows[-1]:
    rows.pop()
  if not rows:
    raise UserError(f"level file {name} is empty")
  width = len(rows[0])
  for number, row in enumerate(rows, start=1):
    if len(row) != width:
      raise UserError(f"level file {name} line {number} has {len(row)} tiles, line 1 has {width}: "
                      "every row of a level must have the same width")
    if " " in row or "\t" in row:
      raise UserError(f"level file {name} line {number} holds a blank; tiles are visible characters")
  return rows


def columns_of(rows: Sequence[str]) -> list[str]:
  """Rows (a list of str, top to bottom) -> columns, left to right, each read bottom to top."""
  checks.check_texts(rows, name="rows")
  return ["".join(row[x] for row in reversed(rows)) for x in range(len(rows[0]))]


def rows_of(columns: Sequence[str], height: int | None = None, fill: str = SKY) -> list[str]:
  """Columns (bottom to top) -> rows (top to bottom) of `height` (default: the tallest column).

  Shorter columns are topped up with `fill` and taller ones cut at `height`, so any stream of
  columns can be written as a rectangle; `level_quality` counts such columns as invalid.
  `columns`: a list of str, not one str.
  """
  checks.check_texts(columns, name="columns")
  if not columns:
    return []
  height = height or max(len(c) for c in columns)
  fitted = [(c + fill * height)[:height] for c in columns]
  return ["".join(c[y] for c in fitted) for y in reversed(range(height))]


_MIRRORED_TILES = str.maketrans("<>[]", "><][")


def mirror(rows: Sequence[str]) -> list[str]:
  """A level's rows flipped left to right, pipe halves swapped ('<>' stays '<>', '[]' stays '[]')
  so that pipes stay well formed; every other Super Mario tile is its own mirror image.
  `rows`: a list of str."""
  checks.check_texts(rows, name="rows")
  return [row[::-1].translate(_MIRRORED_TILES) for row in rows]


def to_stream(rows: Sequence[str]) -> str:
  """A level's rows (a list of str) -> its column stream: every column bottom-up followed by
  END_OF_COLUMN."""
  checks.check_texts(rows, name="rows")
  return "".join(column + END_OF_COLUMN for column in columns_of(rows))


def from_stream(stream: str) -> list[str]:
  """A column stream -> its columns (bottom to top). An unfinished last column is dropped; empty
  columns (two markers in a row: where one level ends and another starts) are kept.
  `stream`: one str."""
  checks.check_text(stream, name="stream")
  return stream.split(END_OF_COLUMN)[:-1]


def typical_height(levels: Iterable[Sequence[str]]) -> int:
  """The most common height among `levels` (lists of rows)."""
  heights = collections.Counter(len(rows) for rows in levels)
  return heights.most_common(1)[0][0]
