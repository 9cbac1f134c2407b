"""Can a player finish a tile level? An A* agent with Mario's moves, from the left edge to the right.

The agent is small Mario on the tile grid (one tile), as the Video Game Level Corpus' platformer
path-finding models him, with the jump of the NES games:
- standing on a solid tile it walks one tile left or right, or jumps;
- a jump rises up to `JUMP_HEIGHT` (4) tiles, one tile per move, each move also one tile left,
  right or straight up; a solid tile above ends the rise;
- after the rise (or stepping off a ledge) it falls one tile per move, each move also one tile
  left, right or straight down, until it stands on a solid tile; falling past the bottom row (a
  pit) loses.
Every tile it moves through must be passable (not solid); a diagonal move also needs one of the
two tiles beside it passable (no squeezing between two corners). Enemies, coins and sky are
passable: the agent asks whether the geometry can be crossed, not whether it can be survived.
With a 4-tile rise a jump clears a wall 4 tiles high, and a gap of up to 7 tiles on flat ground.

It starts standing in the leftmost column that has a standing place and wins on reaching the
rightmost column. A* with the columns still to cross as its (admissible) heuristic.

    path = find_path(rows, solid_tiles("XS?QBb<>[]"))   # [(x, y), ...] or None

`with_path` writes the agent's path into a level's empty tiles (as "Super Mario as a String" does
for its training levels), so a model that learns levels also learns where the player goes.
"""

from __future__ import annotations

import heapq
import json
import math
import os
from collections.abc import Sequence

from mlfun_jax.core import checks

JUMP_HEIGHT = 4
# Super Mario Bros' solid tiles (the VGLC legend smb.json: 'solid' tiles).
SMB_SOLID = "XS?QBb<>[]"
# Moves of the rising and falling phases.
_STAND, _FALL = -1, 0  # The third state entry: rises left (1..JUMP_HEIGHT), standing or falling.
_AIR_MOVE_COST = 1.05


def solid_tiles_of_folder(folder: str) -> str:
  """The solid tiles of a level folder's VGLC legend (a *.json file with {"tiles": {tile:
  [properties]}}: tiles with the property 'solid'); Super Mario Bros' without one."""
  for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
    if not name.endswith(".json"):
      continue
    try:
      with open(os.path.join(folder, name), encoding="utf-8") as f:
        tiles = json.load(f).get("tiles", {})
    except (OSError, ValueError, AttributeError):
      continue
    solid = "".join(sorted(t for t, props in tiles.items()
                           if isinstance(props, list) and "solid" in props))
    if solid:
      return solid
  return SMB_SOLID


def _passable(rows: Sequence[str], x: int, y: int, solid: frozenset) -> bool:
  """Inside the level (above the bottom: a tile beyond the top is open sky) and not solid."""
  if x < 0 or x >= len(rows[0]) or y >= len(rows):
    return False
  return y < 0 or rows[y][x] not in solid


def _stands(rows: Sequence[str], x: int, y: int, solid: frozenset) -> bool:
  below = y + 1
  return 0 <= below < len(rows) and rows[below][x] in solid


def _start(rows: Sequence[str], solid: frozenset) -> tuple[int, int] | None:
  """The highest standing place of the leftmost column that has one."""
  for x in range(len(rows[0])):
    for y in range(len(rows)):
      if _passable(rows, x, y, solid) and _stands(rows, x, y, solid):
        return x, y
  return None


def _moves(rows, x: int, y: int, phase: int, solid: frozenset):
  """Successor states (x, y, phase) of one move."""
  def can(nx, ny):
    if not _passable(rows, nx, ny, solid):
      return False
    if nx != x and ny != y:  # Diagonal: one of the two tiles beside it must be open.
      return _passable(rows, nx, y, solid) or _passable(rows, x, ny, solid)
    return True

  def settle(nx, ny, rising):
    if rising > 0:
      return nx, ny, rising
    return nx, ny, _STAND if _stands(rows, nx, ny, solid) else _FALL

  if phase == _STAND:
    for dx in (-1, 1):
      if can(x + dx, y):
        yield settle(x + dx, y, 0)
    for dx in (-1, 0, 1):
      if can(x + dx, y - 1):
        yield settle(x + dx, y - 1, JUMP_HEIGHT - 1)
    return
  if phase > 0:  # Rising: up once more, or let go.
    for dx in (-1, 0, 1):
      if can(x + dx, y - 1):
        yield settle(x + dx, y - 1, phase - 1)
  for dx in (-1, 0, 1):  # Falling (also letting go of a jump).
    if y + 1 >= len(rows):
      return  # The pit.
    if can(x + dx, y + 1):
      yield settle(x + dx, y + 1, 0)


def _search(rows: Sequence[str], start: tuple[int, int], solid: frozenset
            ) -> tuple[list[tuple[int, int]], bool]:
  """(path, True) from `start` to the rightmost column, or (the path to the furthest column the
  agent reaches standing, False)."""
  goal_x = len(rows[0]) - 1
  first = (*start, _STAND)
  came_from = {first: None}
  cost = {first: 0}
  furthest = first
  frontier = [(goal_x - start[0], 0, first)]
  while frontier:
    _, g, state = heapq.heappop(frontier)
    if g > cost[state]:
      continue
    if state[0] == goal_x:
      furthest = state
      break
    if state[2] == _STAND and state[0] > furthest[0]:
      furthest = state
    x, y, phase = state
    for nxt in _moves(rows, x, y, phase, solid):
      # A move in the air costs a little more than a step on the ground: the path walks where it
      # can and jumps where it must (the heuristic stays below the cost: one column per move).
      step = 1.0 if phase == nxt[2] == _STAND else _AIR_MOVE_COST
      if g + step < cost.get(nxt, math.inf):
        cost[nxt] = g + step
        came_from[nxt] = state
        heapq.heappush(frontier, (g + step + goal_x - nxt[0], g + step, nxt))
  path, state = [], furthest
  while state is not None:
    path.append(state[:2])
    state = came_from[state]
  return path[::-1], furthest[0] == goal_x


def find_path(rows: Sequence[str], solid: str = SMB_SOLID) -> list[tuple[int, int]] | None:
  """The tiles (x, y) the agent passes from its start to the rightmost column (y = 0 is the top
  row), or None when it cannot get there. `rows`: the level's rows top to bottom (a list of str)."""
  checks.check_texts(rows, name="rows")
  if not rows or not rows[0]:
    return None
  solid_set = frozenset(solid)
  start = _start(rows, solid_set)
  if start is None:
    return None
  path, finished = _search(rows, start, solid_set)
  return path if finished else None


def path_through(rows: Sequence[str], solid: str = SMB_SOLID) -> list[tuple[int, int]]:
  """The tiles (x, y) of the agent's path across a level, in pieces where it cannot cross: from
  the furthest column it reaches it starts again at the first standing place beyond (where the
  game carries Mario on what a tile map does not hold, e.g. moving lifts). `find_path`'s path
  when the level can be finished; [] when it has no standing place. `rows`: a list of str."""
  checks.check_texts(rows, name="rows")
  solid_set = frozenset(solid)
  tiles, begin = [], 0
  while rows and rows[0] and begin < len(rows[0]):
    start = _start([row[begin:] for row in rows], solid_set)
    if start is None:
      break
    piece, finished = _search(rows, (start[0] + begin, start[1]), solid_set)
    tiles += piece
    if finished:
      break
    begin = max(x for x, _ in piece) + 1
  return tiles


def with_path(rows: Sequence[str], path_tile: str, solid: str = SMB_SOLID,
              empty: str = "-") -> list[str]:
  """The level's rows (a list of str, top to bottom) with `path_tile` on every `empty` tile of
  `path_through` (the path annotation of Summerville and Mateas' "Super Mario as a String")."""
  on_path = set(path_through(rows, solid))
  return ["".join(path_tile if (x, y) in on_path and tile == empty else tile
                  for x, tile in enumerate(row)) for y, row in enumerate(rows)]


class Reach:
  """The places the agent reaches in a level that grows one column at a time (bottom to top, one
  height), for a sampler that draws a column again when the agent cannot get to it.

      reach = Reach(solid)
      if reach.gets_to(column): reach.add(column)

  The agent gets to a column when it reaches a place in it and has stood somewhere in it or in
  the `SPAN` - 1 columns before it (a jump from flat ground crosses 7 columns and lands on the
  8th): a column it only flies through on its way into a pit is no way on. A new column is
  searched from the places reached in the last `WINDOW` columns, so each step costs the same
  however long the level; `find_path` on the finished level stays the judge. Until some column
  offers a standing place, every column is reachable.
  """
  WINDOW = 12
  SPAN = JUMP_HEIGHT + 4

  def __init__(self, solid: str = SMB_SOLID):
    self._solid = frozenset(solid)
    self._columns: list[str] = []
    self._states: set = set()  # Places reached in the last WINDOW columns.
    self._pending: set = set()
    self._stood = self._pending_stood = -1  # The rightmost column the agent has stood in.

  def gets_to(self, column: str) -> bool:
    """Whether the agent reaches `column` (one str, bottom to top) placed after the others."""
    checks.check_text(column, name="column")
    columns = self._columns + [column]
    width = len(columns)
    low = 0 if not self._states else max(0, width - 1 - self.WINDOW)
    rows = ["".join(c[y] for c in columns[low:]) for y in reversed(range(len(column)))]
    if self._states:
      seeds = {(x - low, y, p) for x, y, p in self._states if x >= low}
    else:
      start = _start(rows, self._solid)
      if start is None:
        self._pending, self._pending_stood = set(), self._stood
        return True
      seeds = {(*start, _STAND)}
    found, frontier = set(seeds), list(seeds)
    while frontier:
      state = frontier.pop()
      for nxt in _moves(rows, *state, self._solid):
        if nxt not in found:
          found.add(nxt)
          frontier.append(nxt)
    self._pending = {(x + low, y, p) for x, y, p in found}
    self._pending_stood = max([self._stood] + [x for x, _, p in self._pending if p == _STAND])
    return (any(x == width - 1 for x, _, _ in self._pending)
            and self._pending_stood > width - 1 - self.SPAN)

  def add(self, column: str) -> None:
    """Keeps `column`, the one `gets_to` was last asked about, with the places it reaches."""
    self._columns.append(column)
    self._stood = self._pending_stood
    low = len(self._columns) - self.WINDOW
    self._states = {s for s in self._states | self._pending if s[0] >= low}
    self._pending = set()


def playable_share(levels: Sequence[Sequence[str]], solid: str = SMB_SOLID) -> float:
  """Share of `levels` (each a list of rows, top to bottom) the agent finishes."""
  if isinstance(levels, str) or any(isinstance(level, str) for level in levels):
    raise checks.InputError("levels: expected a list of levels, each a list of str, got a str")
  if not levels:
    return float("nan")
  return sum(find_path(list(rows), solid) is not None for rows in levels) / len(levels)
