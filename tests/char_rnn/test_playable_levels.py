"""Levels a player can finish: the A* agent, rectangles by construction, corpus-derived defaults."""

import dataclasses
import json

import numpy as np
import pytest

from mlfun_jax import families
from mlfun_jax.char_rnn import config as char_rnn_config
from mlfun_jax.char_rnn import task as char_rnn
from mlfun_jax.char_rnn import inference
from mlfun_jax.char_rnn import levels
from mlfun_jax.char_rnn import playability
from mlfun_jax.char_rnn import text
from tests.char_rnn.conftest import MARIO_CONFIG
from tests.char_rnn.conftest import small_config
from tests.conftest import run_module


def flat_level(width=30, height=14, gap=0, wall=0):
  """Two rows of ground with a gap of `gap` columns at x = 10 and a wall `wall` tiles high at
  x = 20."""
  rows = []
  for y in range(height):
    row = ''
    for x in range(width):
      ground = y >= height - 2 and not 10 <= x < 10 + gap
      in_wall = x == 20 and wall and y >= height - 2 - wall
      row += 'X' if ground or in_wall else '-'
    rows.append(row)
  return rows


@pytest.mark.parametrize('gap, wall, finishes', [
    (0, 0, True), (7, 0, True), (8, 0, False), (0, 4, True), (0, 5, False), (30, 0, False)])
def test_the_agent_clears_a_7_tile_gap_and_a_4_tile_wall_but_no_more(gap, wall, finishes):
  rows = flat_level(gap=gap, wall=wall)
  path = playability.find_path(rows)
  assert (path is not None) == finishes
  if finishes:
    assert path[0] == (0, 11) and path[-1][0] == 29  # On the ground at the left, to the right.
    steps = np.diff(np.array(path), axis=0)
    assert np.abs(steps).max() == 1  # One tile per move.
    assert all(y < 0 or rows[y][x] == '-' for x, y in path)  # Never inside a solid tile.


def test_the_agent_walks_under_a_ceiling_and_needs_a_place_to_stand():
  tunnel = ['XXXXXXXXXX', '----------', 'XXXXXXXXXX']
  assert playability.find_path(tunnel) is not None
  blocked = ['XXXXXXXXXX', '-----X----', 'XXXXXXXXXX']  # No room to jump over the block.
  assert playability.find_path(blocked) is None
  assert playability.find_path(['----', '----']) is None  # Nowhere to stand.
  assert playability.find_path(['-<>-', '-[]-', 'XXXX']) is not None  # Over a pipe.
  assert playability.find_path(['-##-', 'XXXX'], solid='X') is not None  # Another legend.


def test_the_agent_finishes_the_corpus_levels_it_can_and_reads_the_legend(shared_data_dir):
  smb = shared_data_dir / 'vglc_mario' / 'smb'
  corpus = text.read_corpus(str(smb), 'levels')
  finished = {name for name, rows in zip(corpus.names, corpus.levels)
              if playability.find_path(list(rows)) is not None}
  assert len(finished) == 14 and 'mario-3-1' not in finished  # Its moving platforms are not tiles.
  assert sorted(playability.solid_tiles_of_folder(str(smb))) == sorted(playability.SMB_SOLID)
  assert playability.solid_tiles_of_folder(str(shared_data_dir / 'vglc_mario' / 'sml')) == \
      playability.SMB_SOLID  # No legend in that folder: Super Mario Bros' tiles.


def test_sampled_levels_are_rectangles_of_any_height_or_a_training_height(mario_run):
  trained = inference.TrainedCharRNN(str(mario_run.workdir))
  for height in (1, 8, 23):
    generated = trained.levels(3, 25, seed=height, temperature=1.5, height=height)
    for columns in generated:
      assert len(columns) == 25 and {len(c) for c in columns} == {height}
  assert set(trained.level_heights) == {14}
  primed = trained.levels(2, 10, prime='XX' + '-' * 12 + '\nXX', seed=1)
  for columns in primed:  # Drawn from the training heights; the primed column ends at 14 too.
    assert {len(c) for c in columns} == {14} and columns[0].startswith('XX')


def test_a_folder_of_12_row_levels_trains_with_no_other_field_changed(tmp_path):
  rng = np.random.default_rng(0)
  folder = tmp_path / 'levels'
  folder.mkdir()
  for i in range(3):
    rows = flat_level(width=60, height=12, gap=int(rng.integers(2, 5)))
    rows[5] = rows[5][:30] + '?' + rows[5][31:]
    (folder / f'level_{i}.txt').write_text('\n'.join(rows) + '\n')
  config = small_config(MARIO_CONFIG, text_path=str(folder), num_steps=10, sequence_length=0,
                        ngram_orders=(0,), num_sample_levels=1, sample_level_columns=40)
  config.model.max_position = -1
  resolved = char_rnn_config.resolved_for_corpus(config, (12, 12))
  assert (resolved.sequence_length, resolved.model.max_position, resolved.ngram_orders) == (
      130, 13, (14,))
  workdir = tmp_path / 'run'
  families.train_and_evaluate(config, str(workdir))
  report = json.loads((workdir / 'report.json').read_text())
  assert report['corpus_playable_share'] == 1.0  # Gaps of 2-4 tiles.
  assert 0.0 <= report['playable_share'] <= 1.0 and report['valid_column_share'] == 1.0
  assert 'kneser_ney_14gram_bits_per_character' in report
  level = (workdir / 'samples' / 'level_0.txt').read_text().splitlines()
  assert len(level) == 12 and {len(row) for row in level} == {40}
  meta_heights = inference.TrainedCharRNN(str(workdir)).level_heights
  assert meta_heights == (12, 12)  # The first of the three levels is held out.


def test_generate_keeps_only_playable_levels_or_gives_up_in_one_line(mario_run, tmp_path):
  out = tmp_path / 'out'
  result = run_module('mlfun_jax.experiments.generate', f'--workdir={mario_run.workdir}',
                      '--length=30', '--num_samples=2', '--playable_only', '--temperature=0.5',
                      '--height=14', f'--output_dir={out}')
  assert result.returncode == 0, result.stderr[-2000:]
  measures = json.loads(result.stdout.strip().splitlines()[-1])
  assert measures['playable_share'] == 1.0 and len(measures['files']) == 4
  for name in ('level_seed0_0.txt', 'level_seed0_1.txt'):
    rows = (out / name).read_text().splitlines()
    assert len(rows) == 14 and playability.find_path(rows) is not None
  hopeless = run_module('mlfun_jax.experiments.generate', f'--workdir={mario_run.workdir}',
                        '--length=30', '--playable_only', '--height=1', '--max_tries=3',
                        f'--output_dir={out}')
  assert hopeless.returncode == 2 and hopeless.stdout == ''
  (line,) = [l for l in hopeless.stderr.splitlines() if l.startswith('error: ')]
  assert '0 of 3 levels drawn were playable' in line and '--max_tries=3' in line


def test_level_pictures_draw_the_agents_path(tmp_path):
  from mlfun_jax.char_rnn import level_pictures  # pylint: disable=g-import-not-at-top
  rows = flat_level(width=12, height=5)
  path = playability.find_path(rows)
  plain = level_pictures.render(rows)
  drawn = level_pictures.draw_path(plain, path)
  changed = np.argwhere((drawn != plain).any(-1))
  assert {(x // 8, y // 8) for y, x in changed} == {(x, y) for x, y in path if y >= 0}
  assert all(y == 2 for _, y in path)  # On flat ground it walks: jumps cost a little more.
  txt, png = level_pictures.write_level(levels.columns_of(rows), None, str(tmp_path / 'l'),
                                        path=path)
  assert (tmp_path / 'l.txt').read_text().splitlines() == rows and png.endswith('.png')


def test_the_path_runs_in_pieces_across_a_gap_it_cannot_jump_and_only_in_empty_tiles():
  rows = flat_level(gap=9)
  rows[11] = rows[11][:3] + 'o' + rows[11][4:]  # A coin on the way keeps its tile.
  assert playability.find_path(rows) is None
  pieces = playability.path_through(rows)
  columns = {x for x, _ in pieces}
  assert set(range(10)) <= columns and set(range(19, 30)) <= columns  # Both sides of the gap.
  assert not columns & set(range(10, 19))  # Never into the pit: it starts again beyond it.
  assert playability.path_through(flat_level()) == playability.find_path(flat_level())
  marked = playability.with_path(rows, 'x')
  assert [row.replace('x', '-') for row in marked] == rows  # Only empty tiles change.
  assert sum(row.count('x') for row in marked) == sum(
      rows[y][x] == '-' for x, y in set(pieces) if y >= 0)
  assert marked[11][:4] == 'xxxo'  # Walking on the ground (rows 12 and 13).
  assert playability.path_through(['----', '----']) == []


def test_levels_are_learnt_with_the_agents_path_and_generated_without_it(mario_run, mario_dir):
  corpus = text.read_corpus(str(mario_dir), 'levels')
  assert char_rnn.path_tile_of(corpus) == 'x'  # No Super Mario Bros tile is an 'x'.
  training, _ = text.split_corpus(corpus, heldout_first=1)
  config = char_rnn_config.defaults()
  config.mirror_levels = True
  plain = char_rnn.training_documents(config, training)
  annotated = char_rnn.training_documents(config, training, 'x')
  assert len(annotated) == len(plain) == 28  # 14 levels and their mirror images.
  assert [d.replace('x', '-') for d in annotated] == plain
  for document in annotated:  # The path crosses the level (not where coins or enemies are).
    columns = levels.from_stream(document)
    assert sum('x' in c for c in columns) >= 0.85 * len(columns)
  trained = inference.TrainedCharRNN(str(mario_run.workdir))
  assert trained.path_tile == 'x' and 'x' in trained.vocab.characters
  raw = inference.CharSampler(**{f.name: getattr(trained, f.name)  # Its path left in.
                                 for f in dataclasses.fields(inference.CharSampler)
                                 if f.name != 'path_tile'})
  written = raw.levels(4, 30, seed=3)
  assert sum(c.count('x') for level in written for c in level) > 30  # It learnt to write paths.
  assert trained.levels(4, 30, seed=3) == [[c.replace('x', '-') for c in level]
                                            for level in written]


def _columns_reached(rows):
  reach = playability.Reach()
  for x, column in enumerate(levels.columns_of(rows)):
    if not reach.gets_to(column):
      return x
    reach.add(column)
  return len(rows[0])


def test_the_growing_level_is_reached_column_by_column_as_the_agent_finishes_it():
  assert _columns_reached(flat_level(gap=7)) == 30  # Every column.
  assert _columns_reached(flat_level(wall=5)) == 20  # The wall.
  # Over a pit Mario is in the air: the 8th column after his last standing place must hold one.
  assert _columns_reached(flat_level(gap=8)) == 17
  assert _columns_reached(['----', '----']) == 4  # No standing place yet: nothing to reach.
  assert _columns_reached(flat_level(gap=30)) == 17


def test_a_column_the_agent_cannot_reach_is_drawn_again(mario_run):
  trained = inference.TrainedCharRNN(str(mario_run.workdir))
  assert trained.playable_tries == 8  # char_rnn_mario's.
  finished = lambda generated: sum(
      playability.find_path(levels.rows_of(columns)) is not None for columns in generated)
  guided = trained.levels(12, 60, seed=4, temperature=1.0)
  free = trained.levels(12, 60, seed=4, temperature=1.0, playable_tries=0)
  assert finished(guided) >= max(finished(free) + 2, 9), (finished(guided), finished(free))
  assert all({len(c) for c in columns} == {14} and len(columns) == 60 for columns in guided)
  report = json.loads((mario_run.workdir / 'report.json').read_text())
  assert {'without_agent', 'free_sampling'} <= set(report)
  assert report['free_sampling']['playable_share'] <= report['playable_share']
