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
  goal_x = len(rows[0]) - 1
  first = (*start, _STAND)
  came_from = {first: None}
  cost = {first: 0}
  frontier = [(goal_x - start[0], 0, first)]
  while frontier:
    _, g, state = heapq.heappop(frontier)
    if g > cost[state]:
      continue
    x, y, phase = state
    if x == goal_x:
      path = []
      while state is not None:
        path.append(state[:2])
        state = came_from[state]
      return path[::-1]
    for nxt in _moves(rows, x, y, phase, solid_set):
      # A move in the air costs a little more than a step on the ground: the path walks where it
      # can and jumps where it must (the heuristic stays below the cost: one column per move).
      step = 1.0 if phase == nxt[2] == _STAND else _AIR_MOVE_COST
      if g + step < cost.get(nxt, math.inf):
        cost[nxt] = g + step
        came_from[nxt] = state
        heapq.heappush(frontier, (g + step + goal_x - nxt[0], g + step, nxt))
  return None


def playable_share(levels: Sequence[Sequence[str]], solid: str = SMB_SOLID) -> float:
  """Share of `levels` (each a list of rows, top to bottom) the agent finishes."""
  if isinstance(levels, str) or any(isinstance(level, str) for level in levels):
    raise checks.InputError("levels: expected a list of levels, each a list of str, got a str")
  if not levels:
    return float("nan")
  return sum(find_path(list(rows), solid) is not None for rows in levels) / len(levels)
