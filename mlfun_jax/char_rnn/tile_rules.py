"""Which tile may stand beside or above which: the neighbour pairs of a corpus' own levels.

A sampler that reads levels column by column, bottom to top, knows two neighbours of the tile it is
about to write: the one to its left (the previous column, same height) and the one below it (the
previous tile of the column). `TileRules` lists, for every tile, the tiles the training levels put
to its right and the tiles they put above it (the left edge and the bottom edge count as a tile
of their own); the sampler then writes only pairs the corpus holds (a 2-tile adjacency rule, as
in WaveFunctionCollapse's simple tiled model). In Super Mario Bros this keeps pipe halves
together ('>' only right of '<', ']' only right of '['), pipe bodies under their mouths and pipes
on the ground: what the tiles are is never named, it is read from the levels.

    rules = TileRules.of(training_levels, vocab.characters, sky="-", path_tile="x")
    rules = TileRules.of_pairs(neighbour_pairs(training_levels), vocab.characters,
                               path_tile="x")  # The same.
    rules.right   # bool [V + 1, V]: row left_id + 1 (row 0: no tile to the left), column: tile
    rules.above   # bool [V + 1, V]: row below_id + 1 (row 0: the bottom edge), column: tile
    rules.longest_run  # int32 [V]: the longest run of a tile in one column
    rules.top     # bool [V]: the tiles of the training levels' top rows

Beside the pairs, a column never stacks a tile higher than the training levels do, and its top
tile is one they have at the top (the top edge counts as a neighbour too: no pipe body runs off
the top of a level without its mouth). The sampler (`sampling.sample_columns`) also looks one tile
ahead: it writes a tile only where some tile can still stand above it, beside the previous
column's tile there.

Ids are those of the model's vocabulary (`text.Vocabulary`; characters[i] is id i). A tile the
levels never hold (the unknown id, the end-of-column marker) is never allowed and, as a
neighbour, restricts nothing; the agent's path tile (annotate_paths) counts as the sky tile on
both sides. The sampler draws the end-of-column marker by the column's height alone.
"""

from collections.abc import Sequence
import dataclasses

import numpy as np

from mlfun_jax.char_rnn import levels as levels_lib
from mlfun_jax.core import checks


@dataclasses.dataclass(frozen=True)
class TileRules:
  """The tiles a generated tile may stand beside and on: bool [V + 1, V] `right` and `above`,
  int32 [V] `longest_run`, bool [V] `top` (see the module docstring)."""
  right: np.ndarray
  above: np.ndarray
  longest_run: np.ndarray
  top: np.ndarray

  @classmethod
  def of(cls, training_levels: Sequence[Sequence[str]], characters: Sequence[str],
         sky: str = levels_lib.SKY, path_tile: str = "") -> "TileRules":
    """The pairs of `training_levels` (each a list of rows, top to bottom) over the vocabulary
    `characters` (a str or list of one-character str; id i is characters[i])."""
    return cls.of_pairs(neighbour_pairs(training_levels), characters, sky, path_tile)

  @classmethod
  def of_pairs(cls, pairs: dict, characters: Sequence[str], sky: str = levels_lib.SKY,
               path_tile: str = "") -> "TileRules":
    """The rules of `neighbour_pairs`' answer (as a run saves it) over `characters`."""
    ids = {c: i for i, c in enumerate(characters)}
    size = len(ids)
    tables = {}
    for side in ("right", "above"):
      table = tables[side] = np.zeros((size + 1, size), bool)
      for neighbour, tiles in pairs[side].items():
        if (neighbour and neighbour not in ids) or any(t not in ids for t in tiles):
          raise checks.InputError(f"tile rules: {side} pair {neighbour!r}: {tiles!r} holds a "
                                  "tile outside the vocabulary")
        table[ids[neighbour] + 1 if neighbour else 0, [ids[t] for t in tiles]] = True
      # A neighbour the levels never hold (the marker, the unknown id) restricts nothing among
      # the tiles they hold; a tile they never hold is never written.
      tiles = sorted({ids[t] for t_s in pairs[side].values() for t in t_s})
      neighbours = {ids[n] + 1 for n in pairs[side] if n} | {0}
      for row in set(range(size + 1)) - neighbours:
        table[row, tiles] = True
      if path_tile in ids and sky in ids:  # The path stands where the sky would.
        path, sky_id = ids[path_tile], ids[sky]
        table[:, path] = table[:, sky_id]
        table[path + 1] = table[sky_id + 1]
    longest = np.full(size, np.iinfo(np.int32).max, np.int32)  # Tiles without a run: no limit.
    for tile, run in pairs.get("longest_run", {}).items():
      if tile not in ids or not isinstance(run, int) or run < 1:
        raise checks.InputError(f"tile rules: longest run {tile!r}: {run!r} must be a tile of the "
                                "vocabulary and a positive integer")
      longest[ids[tile]] = run
    top = np.zeros(size, bool)
    top[[ids[t] for t in pairs.get("top", "") if t in ids]] = True
    if not top.any():  # Saved without it: any tile.
      top[:] = True
    if path_tile in ids and sky in ids:
      longest[ids[path_tile]] = longest[ids[sky]]
      top[ids[path_tile]] = top[ids[sky]]
    return cls(tables["right"], tables["above"], longest, top)

  def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(right, above, longest_run, top): the `rules` of `sampling.sample_columns`."""
    return self.right, self.above, self.longest_run, self.top

  @classmethod
  def none(cls, size: int) -> "TileRules":
    """Rules that allow every pair, for a vocabulary of `size` ids."""
    return cls(np.ones((size + 1, size), bool), np.ones((size + 1, size), bool),
               np.full(size, np.iinfo(np.int32).max, np.int32), np.ones(size, bool))


def neighbour_pairs(training_levels: Sequence[Sequence[str]]) -> dict[str, dict]:
  """{'right': {tile: the tiles to its right}, 'above': {tile: the tiles above it},
  'longest_run': {tile: its longest vertical run}, 'top': the tiles of the top rows} in
  `training_levels` (each a list of rows, top to bottom); the key '' is the left (bottom) edge.
  Every str sorted; JSON as it is."""
  if isinstance(training_levels, str) or any(isinstance(rows, str) for rows in training_levels):
    raise checks.InputError("training_levels: expected a list of levels, each a list of str, "
                            "got a str")
  right, above, longest, top = {}, {}, {}, set()
  for rows in training_levels:
    checks.check_texts(list(rows), name="training_levels[i]")
    columns = levels_lib.columns_of(list(rows))
    top.update(rows[0])
    for x, column in enumerate(columns):
      run = 0
      for y, tile in enumerate(column):
        right.setdefault(columns[x - 1][y] if x else "", set()).add(tile)
        above.setdefault(column[y - 1] if y else "", set()).add(tile)
        run = run + 1 if y and column[y - 1] == tile else 1
        longest[tile] = max(longest.get(tile, 0), run)
  pairs = {side: {k: "".join(sorted(v)) for k, v in sorted(table.items())}
           for side, table in (("right", right), ("above", above))}
  return {**pairs, "longest_run": dict(sorted(longest.items())), "top": "".join(sorted(top))}
