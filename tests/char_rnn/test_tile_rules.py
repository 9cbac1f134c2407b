"""Tile rules: generated levels keep to the neighbour pairs and column runs of the training levels."""

import numpy as np
import pytest

from mlfun_jax.core import checks
from mlfun_jax.char_rnn import inference
from mlfun_jax.char_rnn import levels
from mlfun_jax.char_rnn import sampling
from mlfun_jax.char_rnn import text
from mlfun_jax.char_rnn import tile_rules


def test_the_pairs_and_runs_of_a_small_level():
  rows = ['-<>-',
          '-[]-',
          'XXXX']
  pairs = tile_rules.neighbour_pairs([rows])
  assert pairs['right'] == {'': '-X', '-': '<[', '<': '>', '>': '-', '[': ']', ']': '-',
                            'X': 'X'}
  assert pairs['above'] == {'': 'X', 'X': '-[]', '[': '<', ']': '>', '-': '-'}
  assert pairs['longest_run'] == {'X': 1, '[': 1, ']': 1, '<': 1, '>': 1, '-': 2}
  assert pairs['top'] == '-<>'
  characters = '\x00\n-<>X[]x'  # The unknown id, the marker, the tiles, a path tile.
  rules = tile_rules.TileRules.of_pairs(pairs, characters, path_tile='x')
  ids = {c: i for i, c in enumerate(characters)}
  allowed_right = lambda left: {c for c in characters if rules.right[ids[left] + 1, ids[c]]}
  assert allowed_right('<') == {'>'} and allowed_right('[') == {']'}
  assert allowed_right('>') == {'-', 'x'}  # The path stands where the sky would.
  assert allowed_right('x') == allowed_right('-') == {'<', '['}
  assert {c for c in characters if rules.above[0, ids[c]]} == {'X'}  # On the bottom edge.
  # The marker restricts nothing among the level tiles, and is never a tile itself.
  assert {c for c in characters if rules.right[ids['\n'] + 1, ids[c]]} == set('-<>X[]x')
  assert not rules.right[:, ids['\n']].any() and not rules.above[:, ids['\x00']].any()
  assert rules.longest_run[ids['-']] == rules.longest_run[ids['x']] == 2
  assert {c for c in characters if rules.top[ids[c]]} == set('-<>x')
  with pytest.raises(checks.InputError, match='outside the vocabulary'):
    tile_rules.TileRules.of_pairs(pairs, '\x00\n-X')
  with pytest.raises(checks.InputError, match='got a str'):
    tile_rules.neighbour_pairs('-X\nXX')


def test_the_start_of_sampling_remembers_the_primes_columns():
  columns = sampling.start_columns(np.array([4, 3]), np.array([0, 5, 5, 0, 5, 2, 2]), 0)
  assert columns.positions.tolist() == [3, 3]
  assert columns.previous.tolist() == [[5, 5, -1, -1]] * 2
  assert columns.current.tolist() == [[5, 2, 2, -1]] * 2
  assert columns.run.tolist() == [2, 2]  # The last tile, 2, stands on itself once.


def _pairs_of(generated):
  return tile_rules.neighbour_pairs([levels.rows_of(c) for c in generated])


def _unseen(pairs, training_pairs, side):
  return sum(len(set(tiles) - set(training_pairs[side].get(k, ''))) for k, tiles
             in pairs[side].items())


def test_generated_levels_keep_the_training_pairs(mario_run, mario_dir):
  trained = inference.TrainedCharRNN(str(mario_run.workdir))
  assert trained.tile_rules is not None
  corpus = text.read_corpus(str(mario_dir), 'levels')
  training, _ = text.split_corpus(corpus, heldout_first=1)
  seen = tile_rules.neighbour_pairs(training.levels)
  kept = trained.levels(8, 60, seed=2, temperature=1.5)
  free = trained.levels(8, 60, seed=2, temperature=1.5, keep_tile_rules=False)
  kept_pairs, free_pairs = _pairs_of(kept), _pairs_of(free)
  assert _unseen(kept_pairs, seen, 'right') == 0  # Every tile beside one the corpus puts there.
  assert _unseen(free_pairs, seen, 'right') > 0  # A 100-step model at 1.5 writes others.
  assert _unseen(kept_pairs, seen, 'above') < _unseen(free_pairs, seen, 'above')
  for tile, run in kept_pairs['longest_run'].items():
    assert run <= seen['longest_run'][tile]
  off_top = lambda generated: sum(t not in seen['top'] for c in generated for t in
                                  levels.rows_of(c)[0])
  assert off_top(kept) < off_top(free)  # The top row: tiles the training levels have there.
  for columns in kept:  # So a pipe's right half always stands right of its left half.
    rows = levels.rows_of(columns)
    assert all(row[x - 1] == {'>': '<', ']': '['}[t] for row in rows
               for x, t in enumerate(row) if t in '>]')
