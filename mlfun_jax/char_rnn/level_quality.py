"""Is a generated Super Mario level well made? Three measures, each a share in [0, 1].

- valid columns: columns of a training level's height made only of tiles seen in training;
- well-formed pipes: a pipe is a '<>' mouth with zero or more '[]' rows directly below it, aligned,
  ending on solid ground (a solid tile under both halves, or the bottom edge); or, hanging from a
  ceiling mouth down (as in Super Mario Land), one or more '[]' rows directly above it ending on
  solid tiles (or the top edge). Every '<' starts a candidate pipe; pipe tiles that belong to no
  candidate ('[' with nothing above, a lone '>', ...) count as one malformed pipe per connected
  group. A generated level is cut after a fixed number of columns, so a pipe whose left half is in
  its last column is cut by the edge: it is counted apart (`pipes_cut_by_edge`), neither well
  formed nor malformed (real levels never end in half a pipe); the training levels' own share is
  given beside (`corpus_well_formed_pipe_share`);
- novelty: 8-column windows of the generated levels that appear nowhere in the training levels.
"""

from collections.abc import Sequence

from mlfun_jax.char_rnn import levels as levels_lib
from mlfun_jax.core import checks

PIPE_TILES = "<>[]"
GROUND_TILES = "XS?QBb"  # Solid tiles a pipe can stand on (smb.json: 'solid', not a pipe).
WINDOW = 8


def valid_column_share(columns: Sequence[str], height: int | Sequence[int], tiles: str) -> float:
  """Share of `columns` (a list of str, bottom to top) of length `height` (or of one of the
  lengths `height` lists) holding only characters of `tiles`."""
  checks.check_texts(columns, name="columns")
  if not columns:
    return 0.0
  allowed = set(tiles)
  heights = {height} if isinstance(height, int) else set(height)
  return sum(len(c) in heights and set(c) <= allowed for c in columns) / len(columns)


def _body(rows: Sequence[str], y: int, x: int, step: int) -> tuple[int, list]:
  """(the row after the last, the tiles) of the '[]' rows next to the mouth at (y, x), going
  down (step 1) or up (step -1)."""
  tiles = []
  y += step
  while 0 <= y < len(rows) and rows[y][x] == "[" and rows[y][x + 1] == "]":
    tiles += [(y, x), (y, x + 1)]
    y += step
  return y, tiles


def _on_solid(rows: Sequence[str], y: int, x: int) -> bool:
  """Row y holds solid tiles under (or over) both halves at x, x + 1, or lies beyond the edge."""
  return not 0 <= y < len(rows) or (rows[y][x] in GROUND_TILES and rows[y][x + 1] in GROUND_TILES)


def _pipe_from(rows: Sequence[str], y: int, x: int, claimed: set) -> bool | None:
  """Follows the pipe whose mouth's left '<' is at (y, x); claims its tiles; True if well formed,
  None if its right half would lie beyond the last column."""
  height, width = len(rows), len(rows[0])
  if x + 1 == width:  # Cut by the edge: claim the '<' and the '[' pieces under it.
    while y < height and rows[y][x] in "<[":
      claimed.add((y, x))
      y += 1
    return None
  if rows[y][x + 1] != ">":
    claimed.add((y, x))
    return False
  claimed.update({(y, x), (y, x + 1)})
  below_end, below = _body(rows, y, x, 1)
  above_end, above = _body(rows, y, x, -1)
  if above and not _on_solid(rows, below_end, x) and _on_solid(rows, above_end, x):
    claimed.update(above)  # Hanging from a ceiling, mouth down.
    return True
  claimed.update(below)
  return _on_solid(rows, below_end, x)


def pipe_counts(rows: Sequence[str]) -> tuple[int, int, int]:
  """(well-formed pipes, pipes judged, pipes cut by the right edge) of a level given as rows (a
  list of str, top to bottom)."""
  checks.check_texts(rows, name="rows")
  claimed: set[tuple[int, int]] = set()
  good = total = cut = 0
  for y, row in enumerate(rows):
    for x, tile in enumerate(row):
      if tile == "<" and (y, x) not in claimed:
        well_formed = _pipe_from(rows, y, x, claimed)
        if well_formed is None:
          cut += 1
        else:
          good += well_formed
          total += 1
  stray = {(y, x) for y, row in enumerate(rows) for x, tile in enumerate(row)
           if tile in PIPE_TILES and (y, x) not in claimed}
  while stray:  # One malformed pipe per 4-connected group of stray pipe tiles.
    total += 1
    frontier = [stray.pop()]
    while frontier:
      y, x = frontier.pop()
      for neighbour in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
        if neighbour in stray:
          stray.remove(neighbour)
          frontier.append(neighbour)
  return good, total, cut


def windows(columns: Sequence[str], width: int = WINDOW) -> list[tuple[str, ...]]:
  """Every run of `width` consecutive columns (a list of str)."""
  checks.check_texts(columns, name="columns")
  return [tuple(columns[i:i + width]) for i in range(len(columns) - width + 1)]


def level_report(generated: Sequence[Sequence[str]], training_levels: Sequence[Sequence[str]]
                 ) -> dict[str, float]:
  """Measures of generated levels (each a list of columns, bottom to top) against the training
  levels (each a list of rows, top to bottom); every level a list of str, not one str."""
  for name, group in (("generated", generated), ("training_levels", training_levels)):
    if isinstance(group, str) or any(isinstance(level, str) for level in group):
      raise checks.InputError(f"{name}: expected a list of levels, each a list of str, got a str")
  heights = {len(rows) for rows in training_levels}
  tiles = "".join(sorted({t for rows in training_levels for row in rows for t in row}))
  seen = {w for rows in training_levels for w in windows(levels_lib.columns_of(rows))}
  all_columns = [c for columns in generated for c in columns]
  good = total = cut = 0
  generated_windows = []
  for columns in generated:
    g, t, c = pipe_counts(levels_lib.rows_of(columns))  # The level's own (tallest) height.
    good, total, cut = good + g, total + t, cut + c
    generated_windows += windows(columns)
  corpus_pipes = [pipe_counts(list(rows)) for rows in training_levels]
  corpus_total = sum(t for _, t, _ in corpus_pipes)
  return {
      "columns": len(all_columns),
      "corpus_well_formed_pipe_share": (sum(g for g, _, _ in corpus_pipes) / corpus_total
                                        if corpus_total else float("nan")),
      "valid_column_share": valid_column_share(all_columns, sorted(heights), tiles),
      "pipes": total,
      "well_formed_pipe_share": good / total if total else float("nan"),
      "pipes_cut_by_edge": cut,
      "windows": len(generated_windows),
      "novel_window_share": (sum(w not in seen for w in generated_windows) / len(generated_windows)
                             if generated_windows else float("nan")),
  }
