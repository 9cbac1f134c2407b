"""Character models: the recurrent model, stateful streams, sampling, level files and measures."""

import json
import math

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.char_rnn import level_quality
from mlfun_jax.char_rnn import levels
from mlfun_jax.char_rnn import model as char_model
from mlfun_jax.char_rnn import ngram
from mlfun_jax.char_rnn import sampling as char_sampling
from mlfun_jax.char_rnn import streams
from mlfun_jax.char_rnn import task as char_rnn
from mlfun_jax.char_rnn import text
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn
from tests import mixed_precision
from tests.char_rnn.conftest import MARIO_CONFIG, small_config
from tests.conftest import run_module


def _model_and_params(cell, vocab=13, batch=3, max_position=0, previous_line_input=False):
  model = rnn.CharLM(vocab_size=vocab, embed_dim=8, hidden=16, num_layers=2, cell=cell,
                     max_position=max_position, line_token=1,
                     previous_line_input=previous_line_input)
  params = model.init(jax.random.key(0), model.zero_carry(batch), jnp.zeros((batch, 1), jnp.int32))
  return model, params


# (cell, max_position, previous_line_input): the random tokens below hold the line token 1 now
# and then, so with position inputs the positions both grow past max_position and restart at 0.
CELLS_AND_POSITIONS = ([(cell, 0, False) for cell in rnn.CELLS] + [('lstm', 4, False)]
                       + [(cell, 4, True) for cell in rnn.CELLS])


def test_line_positions_count_from_the_last_line_token_and_continue():
  tokens = jnp.array([[5, 1, 5, 5, 1, 1, 5], [5, 5, 5, 5, 5, 5, 5]])
  positions, after = rnn.line_positions(tokens, jnp.array([2, 0]), line_token=1)
  np.testing.assert_array_equal(positions, [[2, 3, 0, 1, 2, 0, 0], [0, 1, 2, 3, 4, 5, 6]])
  np.testing.assert_array_equal(after, [1, 7])
  model, params = _model_and_params('lstm', max_position=4)
  assert 'position_embed' in params['params']
  carry, _ = model.apply(params, model.zero_carry(2), tokens)
  np.testing.assert_array_equal(carry[-1], [1, 7])


def test_line_context_gives_the_previous_lines_character_above_the_next_one():
  # Lines "5 6 |", "7 8 |", "9 |", then "3"; a line of 8 in a 3-long memory.
  tokens = jnp.array([[5, 6, 1, 7, 8, 1, 9, 1, 3], [5, 6, 7, 8, 9, 10, 11, 1, 2]])
  empty = jnp.zeros((2, 3), jnp.int32)
  positions, above, (after, previous, current) = rnn.line_context(
      tokens, jnp.array([0, 0]), empty, empty, line_token=1)
  np.testing.assert_array_equal(positions, rnn.line_positions(tokens, jnp.array([0, 0]), 1)[0])
  # Entries are id + 1: above[t] is what stood at the position of tokens[t + 1] one line before.
  np.testing.assert_array_equal(above, [[0, 0, 6, 7, 2, 8, 9, 10, 2],
                                        [0, 0, 0, 0, 0, 0, 0, 6, 7]])
  np.testing.assert_array_equal(after, [1, 1])
  np.testing.assert_array_equal(previous, [[10, 2, 0], [6, 7, 8]])
  np.testing.assert_array_equal(current, [[4, 0, 0], [3, 0, 0]])
  model, params = _model_and_params('gru', max_position=3, previous_line_input=True)
  assert 'previous_line_embed' in params['params']
  carry, _ = model.apply(params, model.zero_carry(2), tokens)
  for got, want in zip(carry[2:], (after, previous, current)):
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize('cell,max_position,previous_line_input', CELLS_AND_POSITIONS)
def test_stepping_one_character_at_a_time_equals_the_scanned_sequence(cell, max_position,
                                                                      previous_line_input):
  model, params = _model_and_params(cell, max_position=max_position,
                                    previous_line_input=previous_line_input)
  tokens = jax.random.randint(jax.random.key(1), (3, 25), 0, 13)
  carry, logits = model.apply(params, model.zero_carry(3), tokens)
  assert logits.shape == (3, 25, 13) and logits.dtype == jnp.float32
  step_carry, step_logits, apply = model.zero_carry(3), [], jax.jit(model.apply)
  for t in range(25):
    step_carry, out = apply(params, step_carry, tokens[:, t:t + 1])
    step_logits.append(out)
  np.testing.assert_allclose(np.concatenate(step_logits, 1), logits, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(step_carry)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('cell,max_position,previous_line_input', CELLS_AND_POSITIONS)
def test_carry_passed_between_pieces_equals_one_long_sequence(cell, max_position,
                                                              previous_line_input):
  model, params = _model_and_params(cell, max_position=max_position,
                                    previous_line_input=previous_line_input)
  tokens = jax.random.randint(jax.random.key(2), (3, 60), 0, 13)
  whole_carry, whole = model.apply(params, model.zero_carry(3), tokens)
  carry, pieces = model.zero_carry(3), []
  for begin in (0, 17, 40):
    carry, out = model.apply(params, carry, tokens[:, begin:begin + {0: 17, 17: 23, 40: 20}[begin]])
    pieces.append(out)
  np.testing.assert_allclose(np.concatenate(pieces, 1), whole, rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.tree.leaves(whole_carry), jax.tree.leaves(carry)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_stream_batches_continue_each_stream_and_reset_at_each_epoch():
  documents = [np.arange(100, 100 + n, dtype=np.int32) for n in (300, 170, 90)]
  batches = streams.StreamBatches(documents, start_id=1, sequence_length=10, global_batch_size=8,
                                  seed=3, local_device_count=2)
  spe = batches.steps_per_epoch
  assert spe == (batches.stream_length - 1) // 10 and spe >= 5
  first, second = batches.batch(0), batches.batch(1)
  assert first['tokens'].shape == (2, 4, 11) and first['tokens'].dtype == np.int32
  assert first['reset'].all() and not second['reset'].any()
  # The last token of a batch is the first of the stream's next batch (inputs/targets overlap).
  np.testing.assert_array_equal(first['tokens'][..., -1], second['tokens'][..., 0])
  assert batches.batch(spe)['reset'].all()
  # An epoch's streams are the documents in some order, each after the start token.
  flat = batches.epoch_streams(0).ravel()
  starts = np.flatnonzero(flat == 1)
  assert 2 <= len(starts) <= 3
  # Epochs differ (order and offset), and are reproducible.
  assert not np.array_equal(batches.epoch_streams(0), batches.epoch_streams(1))
  again = streams.StreamBatches(documents, start_id=1, sequence_length=10, global_batch_size=8,
                                seed=3, local_device_count=2)
  np.testing.assert_array_equal(again.batch(spe + 2)['tokens'], batches.batch(spe + 2)['tokens'])
  # Two processes take complementary halves of every global batch.
  halves = [streams.StreamBatches(documents, start_id=1, sequence_length=10, global_batch_size=8,
                                  seed=3, process_index=p, process_count=2).batch(4)['tokens']
            for p in (0, 1)]
  np.testing.assert_array_equal(np.concatenate(halves, 1)[0], batches.batch(4)['tokens'].reshape(8, 11))


def test_eval_chunks_score_every_character_once():
  documents = [np.arange(2, 12, dtype=np.int32), np.arange(2, 5, dtype=np.int32)]
  tokens, mask = streams.eval_chunks(documents, start_id=1, sequence_length=4)
  assert mask.sum() == 13 and tokens.shape == (4, 5)
  np.testing.assert_array_equal(tokens[0], [1, 2, 3, 4, 5])
  np.testing.assert_array_equal(tokens[1], [5, 6, 7, 8, 9])  # Next chunk starts where one ended.
  np.testing.assert_array_equal(tokens[3][:4], [1, 2, 3, 4])
  batches = streams.eval_batches(tokens, mask, global_batch_size=8, local_device_count=8)
  assert len(batches) == 1 and batches[0]['mask'].sum() == 13


def _task_step(config, n_devices, vocab_size=20):
  vocab = text.Vocabulary(text.UNKNOWN + char_model.START + 'abcdefghijklmnopqrstuvwxyz'[:vocab_size - 2])
  assert vocab.encode(char_model.START)[0] == 1
  model = char_model.create_model(config, vocab)
  state = char_model.create_state(model, config, 10, jax.random.key(0))
  devices = jax.local_devices()[:n_devices]
  p_step = train.pmap_train_step(char_rnn.make_train_step(model), jax.random.key(4),
                                 devices=devices)
  return model, state, p_step, flax.jax_utils.replicate(state, devices)


def _batches(config, n_devices, vocab_size=20):
  documents = [np.random.default_rng(i).integers(2, vocab_size, 400).astype(np.int32)
               for i in range(3)]
  return streams.StreamBatches(documents, start_id=1, sequence_length=config.sequence_length,
                               global_batch_size=config.batch_size, seed=0,
                               local_device_count=n_devices)


@pytest.mark.parametrize('max_position,previous_line_input', [(0, False), (6, False), (6, True)])
def test_training_carry_is_the_carry_of_the_whole_stream_on_8_devices(max_position,
                                                                     previous_line_input):
  config = small_config()
  config.model.max_position = max_position  # Token 1 (START) ends lines: streams hold it.
  config.model.previous_line_input = previous_line_input
  config.optimizer.learning_rate = 0.0  # Parameters stay put; only the carries move.
  model, state, p_step, replicated = _task_step(config, 8)
  batches = _batches(config, 8)
  for step in range(3):
    replicated, _ = p_step(replicated, batches.batch(step))
  carry = parallel.to_host(replicated).carry
  stream = batches.epoch_streams(0)[:, :3 * config.sequence_length]
  expected, _ = model.apply({'params': state.params}, model.zero_carry(8), stream)
  for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_train_step_on_8_devices_equals_1_device():
  config = small_config()
  results = {}
  for n in (1, 8):
    _, _, p_step, replicated = _task_step(config, n)
    batches = _batches(config, n)
    for step in range(3):
      replicated, metrics = p_step(replicated, batches.batch(step))
    results[n] = (parallel.to_host(replicated), jax.device_get(metrics))
  (one, metrics1), (eight, metrics8) = results[1], results[8]
  for a, b in zip(jax.tree.leaves((one.params, one.carry)), jax.tree.leaves((eight.params,
                                                                              eight.carry))):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
  np.testing.assert_allclose(metrics1['loss'][0], metrics8['loss'][0], rtol=1e-5)
  assert metrics1['bits_per_character'][0] == pytest.approx(metrics1['loss'][0] / math.log(2))


def test_bfloat16_train_step_on_8_devices_matches_1_device_and_the_loss_falls():
  """config.dtype='bfloat16': bfloat16 embeddings, LSTM gates and logits layer; parameters,
  optimizer state, carries, logits and metrics stay float32; 8 devices compute what 1 does within
  bfloat16 rounding."""
  config = small_config(dtype='bfloat16', optimizer__schedule='constant',
                        optimizer__learning_rate=1e-2, model__num_layers=1)
  model, state, _, _ = _task_step(config, 1)
  documents = [np.tile(np.arange(2, 9, dtype=np.int32), 60)[i:] for i in range(3)]  # Periodic.
  batches = {n: streams.StreamBatches(documents, start_id=1, sequence_length=20,
                                      global_batch_size=8, seed=0, local_device_count=n)
             for n in (1, 8)}
  batch_of = lambda n, i: batches[n].batch(i)
  states1, metrics1 = mixed_precision.pmapped_steps(char_rnn.make_train_step(model), state,
                                                    batch_of, 1, 6, key=4)
  states8, metrics8 = mixed_precision.pmapped_steps(char_rnn.make_train_step(model), state,
                                                    batch_of, 8, 3, key=4)
  mixed_precision.assert_devices_agree((state.params, state.carry),
                                       (states1[2].params, states1[2].carry),
                                       (states8[2].params, states8[2].carry), metrics1[2],
                                       metrics8[2])
  mixed_precision.assert_float32((states1[-1], metrics1), 'state')
  losses = [float(m['loss'][0]) for m in metrics1]
  assert 2.8 < losses[0] < 3.2 and losses[-1] < losses[0] - 0.4  # 3.01 -> 2.38 when written.
  # Two products in the LSTM layer (inputs, state: all four gates at once), then the logits.
  assert mixed_precision.matmul_dtypes(model.apply, {'params': state.params}, model.zero_carry(2),
                                       jnp.zeros((2, 3), jnp.int32)) == {'bfloat16': 2 + 1}


def test_sampling_is_deterministic_for_a_seed_and_temperature_zero_is_the_argmax():
  model, params = _model_and_params('lstm', vocab=13, batch=1)
  params = params['params']
  prime = np.array([3, 4, 5], np.int32)
  a = char_sampling.generate(model, params, prime, 30, seed=7, num=2)
  b = char_sampling.generate(model, params, prime, 30, seed=7, num=2)
  c = char_sampling.generate(model, params, prime, 30, seed=8, num=2)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c) and a.shape == (2, 30) and (a > 0).all()
  greedy = char_sampling.generate(model, params, prime, 30, seed=7, temperature=0.0)
  carry, tokens, apply = model.zero_carry(1), list(prime), jax.jit(model.apply)
  for t in range(len(prime) + 30 - 1):
    carry, logits = apply({'params': params}, carry, jnp.array([[tokens[t]]]))
    if t >= len(prime) - 1:
      tokens.append(int(jnp.argmax(logits[0, 0, 1:])) + 1)  # Id 0 (unknown) is never drawn.
  np.testing.assert_array_equal(greedy[0], tokens[len(prime):])
  for cold in (dict(temperature=1e-3, seed=1), dict(top_k=1, seed=2)):
    np.testing.assert_array_equal(
        char_sampling.generate(model, params, prime, 30, **cold), greedy)


def test_top_k_only_draws_among_the_k_most_probable():
  logits = jnp.log(jnp.array([[0.0, 0.5, 0.3, 0.15, 0.05]] * 2000) + 1e-9)
  keys = jax.random.split(jax.random.key(0), 1)[0]
  drawn = np.asarray(char_sampling.choose(logits, keys, jnp.float32(1.0), jnp.int32(2)))
  assert set(drawn.tolist()) == {1, 2}
  drawn = np.asarray(char_sampling.choose(logits, keys, jnp.float32(1.0), jnp.int32(0)))
  assert set(drawn.tolist()) == {1, 2, 3, 4}


def test_vocabulary_maps_unseen_characters_to_the_unknown_id():
  corpus = text.Corpus('t', 'text', ('a',), ('hello world',))
  vocab = text.Vocabulary.of(corpus)
  assert vocab.characters[0] == text.UNKNOWN and '\n' in vocab
  assert vocab.decode(vocab.encode('hello\nworld')) == 'hello\nworld'
  assert vocab.encode('héllo')[1] == 0


def test_text_folders_read_recursively_and_split_by_document(tmp_path):
  for i in range(6):
    (tmp_path / f'part{i // 3}').mkdir(exist_ok=True)
    (tmp_path / f'part{i // 3}' / f'doc{i}.txt').write_text(f'document {i} ' * 50, encoding='utf-8')
  (tmp_path / '.hidden').write_text('no', encoding='utf-8')
  corpus = text.read_corpus(str(tmp_path), 'text')
  assert len(corpus.names) == 6 and corpus.names[0] == 'part0/doc0.txt'
  training, heldout = text.split_corpus(corpus, heldout_fraction=0.3, seed=1)
  assert not set(training.names) & set(heldout.names)
  assert len(training.names) + len(heldout.names) == 6 and len(heldout.names) == 2
  training, heldout = text.split_corpus(corpus, heldout_names=('part1/doc5.txt',))
  assert heldout.names == ('part1/doc5.txt',)
  (tmp_path / 'bad.bin').write_bytes(b'\xff\xfe\x00')
  with pytest.raises(UserError, match='bad.bin is not UTF-8'):
    text.read_corpus(str(tmp_path), 'text')
  with pytest.raises(UserError, match='heldout_names'):
    text.split_corpus(corpus, heldout_names=('nope',))


def test_single_file_holds_out_its_tail(tmp_path):
  path = tmp_path / 'novel.txt'
  path.write_text(''.join(f'line {i}\n' for i in range(1000)), encoding='utf-8')
  training, heldout = text.split_corpus(text.read_corpus(str(path)), heldout_fraction=0.1)
  assert training.documents[0] + heldout.documents[0] == path.read_text(encoding='utf-8')
  assert heldout.documents[0].startswith('line ') and 0.09 < len(heldout) / 8890 < 0.11


def test_embedded_corpus_ships_with_python():
  corpus = text.read_corpus(None)
  assert len(corpus) > 300_000 and len(corpus.names) > 50


def test_level_reader_and_writer_round_trip_a_corpus_file(mario_dir):
  original = (mario_dir / 'mario-1-1.txt').read_text(encoding='utf-8')
  rows = levels.parse_level(original, 'mario-1-1')
  assert len(rows) == 14 and len(rows[0]) == 202
  stream = levels.to_stream(rows)
  columns = levels.from_stream(stream)
  assert len(columns) == 202 and columns[0][0] == 'X'  # Bottom tile first: ground.
  assert stream.count('\n') == 202 and all(len(c) == 14 for c in columns)
  assert '\n'.join(levels.rows_of(columns)) + '\n' == original.replace('\r', '')


def test_levels_of_different_heights_are_read_and_written(tmp_path):
  (tmp_path / 'low.txt').write_text('----\n-<>-\nXXXX\n', encoding='utf-8')
  (tmp_path / 'tall.txt').write_text('---\n-o-\n---\n-E-\nXXX\n', encoding='utf-8')
  (tmp_path / 'legend.json').write_text('{}', encoding='utf-8')
  corpus = text.read_corpus(str(tmp_path), 'levels')
  assert corpus.names == ('low', 'tall')
  assert corpus.documents[0] == 'X--\nX<-\nX>-\nX--\n'
  assert [len(c) for c in levels.from_stream(corpus.documents[1])] == [5, 5, 5]
  for rows, document in zip(corpus.levels, corpus.documents):
    assert levels.rows_of(levels.from_stream(document)) == list(rows)
  (tmp_path / 'ragged.txt').write_text('---\n--\n', encoding='utf-8')
  with pytest.raises(UserError, match='ragged.txt line 2 has 2 tiles'):
    text.read_corpus(str(tmp_path), 'levels')


def test_level_measures_on_real_and_broken_levels(mario_dir):
  corpus = text.read_corpus(str(mario_dir), 'levels')
  real = level_quality.level_report([levels.columns_of(r) for r in corpus.levels], corpus.levels)
  assert real['valid_column_share'] == 1.0 and real['well_formed_pipe_share'] == 1.0
  assert real['corpus_well_formed_pipe_share'] == 1.0
  assert real['pipes'] == 85 and real['pipes_cut_by_edge'] == 0
  assert real['novel_window_share'] == 0.0
  broken = ['-----',
            '<>-<-',
            '[]-[]',
            '--<>-',
            'XX[]X']
  # A floating pipe, a '<' without its right half, the stray '[]' under it; the last pipe reaches
  # the bottom edge, which counts as ground.
  assert level_quality.pipe_counts(broken) == (1, 4, 0)
  good = ['-----', '<>-<>', '[]-[]', 'XXXXX']
  assert level_quality.pipe_counts(good) == (2, 2, 0)
  assert level_quality.pipe_counts(['-]-', 'XXX']) == (0, 1, 0)  # A stray body piece.
  # A pipe whose left half is the last column is cut by the sampler's edge: not judged, and its
  # '[' is not a stray piece; a body piece without a top in that column still is.
  assert level_quality.pipe_counts(['-<>-<', '-[]-[', 'XXXXX']) == (1, 1, 1)
  assert level_quality.pipe_counts(['-<>--', '-[]-[', 'XXXXX']) == (1, 2, 0)
  # Hanging from a ceiling mouth down (Super Mario Land): its body must reach the ceiling.
  assert level_quality.pipe_counts(['XXXX', '-[]-', '-<>-', '----', 'XXXX']) == (1, 1, 0)
  assert level_quality.pipe_counts(['XXXX', '----', '-[]-', '-<>-', '----', 'XXXX']) == (0, 2, 0)
  assert level_quality.pipe_counts(['XXXX', '-<>-', '----', 'XXXX']) == (0, 1, 0)  # Needs a body.
  land = text.read_corpus(str(mario_dir.parent / 'sml'), 'levels')
  counts = np.sum([level_quality.pipe_counts(list(rows)) for rows in land.levels], axis=0)
  # Six pipes hang from 4-2's ceiling; 1-1 has one pipe whose right half is an enemy ('E[-E').
  assert tuple(counts) == (73, 75, 0)
  assert level_quality.valid_column_share(['X--', 'X-', 'XZ-'], 3, 'X-') == pytest.approx(1 / 3)


def test_mirrored_levels_keep_their_pipes_and_join_the_training_streams(mario_dir):
  rows = ['--<>-E', 'X-[]-S', 'XXXX-X']
  assert levels.mirror(rows) == ['E-<>--', 'S-[]-X', 'X-XXXX']
  corpus = text.read_corpus(str(mario_dir), 'levels')
  for real in corpus.levels:
    assert levels.mirror(levels.mirror(real)) == list(real)
    assert level_quality.pipe_counts(levels.mirror(real)) == level_quality.pipe_counts(real)
  training, _ = text.split_corpus(corpus, ('mario-1-1',))
  config = small_config(MARIO_CONFIG, text_path=str(mario_dir), mirror_levels=False)
  assert char_rnn.training_documents(config, training) == list(training.documents)
  config.mirror_levels = True
  documents, n = char_rnn.training_documents(config, training), len(training.documents)
  assert documents[:n] == list(training.documents) and len(documents) == 2 * n
  assert levels.rows_of(levels.from_stream(documents[n])) == levels.mirror(training.levels[0])
  with pytest.raises(UserError, match='mirror_levels=True needs corpus_format'):
    char_rnn.build(small_config(mirror_levels=True), '/nonexistent')


def test_previous_line_input_needs_a_line_length():
  vocab = text.Vocabulary(text.UNKNOWN + char_model.START + 'ab')
  config = small_config()
  config.model.previous_line_input = True
  with pytest.raises(UserError, match='previous_line_input=True needs model.max_position > 0'):
    char_model.create_model(config, vocab)
  config.model.max_position = 16
  assert char_model.create_model(config, vocab).previous_line_input


def test_kneser_ney_is_a_distribution_and_beats_the_unigram():
  corpus = ('the cat sat on the mat. the dog sat on the log. ' * 40)
  ids = {c: i + 2 for i, c in enumerate(sorted(set(corpus)))}
  vocab_size = len(ids) + 2
  train_ids = [np.array([ids[c] for c in corpus], np.int32)]
  model = ngram.KneserNey(train_ids, 4, vocab_size, start_id=1)
  for history in ((ids['t'], ids['h'], ids['e']), (1, 1, 1), (ids['q'] if 'q' in ids else 0,) * 3):
    total = sum(model.probability(history, t) for t in range(vocab_size))
    assert total == pytest.approx(1.0, abs=1e-9)
  heldout = 'the dog sat on the mat. the cat sat on the log. '
  tokens, mask = streams.eval_chunks([np.array([ids[c] for c in heldout])], start_id=1,
                                     sequence_length=20)
  unigram = ngram.unigram_bits(train_ids, tokens, mask, vocab_size)
  assert model.bits(tokens, mask) < 0.5 * unigram


def test_kneser_ney_without_singletons_still_gives_unseen_characters_probability():
  model = ngram.KneserNey([[2, 3], [2, 3]], 1, 5, start_id=1)  # Counts of 2 only: no singletons.
  assert model.probability((), 4) > 0
  assert sum(model.probability((), t) for t in range(5)) == pytest.approx(1.0)


def test_short_mario_training_beats_the_unigram_and_generate_writes_a_level(mario_run, tmp_path):
  workdir, summary = mario_run.workdir, mario_run.summary
  report = json.loads((workdir / 'report.json').read_text())
  assert summary['eval_bits_per_character'] == pytest.approx(report['heldout_bits_per_character'],
                                                             rel=1e-4)
  assert report['heldout_bits_per_character'] < 0.8 * report['unigram_bits_per_character']
  assert report['columns'] == 60 and 0.0 <= report['valid_column_share'] <= 1.0
  assert (workdir / 'samples' / 'level_1.png').exists()
  assert json.loads((workdir / 'vocabulary.json').read_text())['characters'][0] == text.UNKNOWN
  result = run_module('mlfun_jax.experiments.generate',
                      f'--workdir={workdir}', '--length=40', '--seed=3',
                      f'--output_dir={tmp_path / "gen"}')
  assert result.returncode == 0, result.stderr
  printed = result.stdout.strip().splitlines()
  assert len(printed) == 16 and all(len(row) == 40 for row in printed[:14]) and not printed[14]
  measures = json.loads(printed[-1])
  assert measures['columns'] == 40 and 'novel_window_share' in measures
  assert (tmp_path / 'gen' / 'level_seed3.txt').read_text().splitlines() == printed[:14]
  assert (tmp_path / 'gen' / 'level_seed3.png').exists()


def test_text_training_resumes_exactly_and_generate_continues_a_prime(text_runs):
  for a, b in zip(jax.tree.leaves((text_runs.straight.params, text_runs.straight.carry)),
                  jax.tree.leaves((text_runs.resumed.params, text_runs.resumed.carry))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  args = [f'--workdir={text_runs.straight_dir}', '--length=30', '--prime=abra', '--seed=5']
  result = run_module('mlfun_jax.experiments.generate', *args)
  assert result.returncode == 0, result.stderr
  assert len(result.stdout) == 31  # 30 characters and the newline print adds.
  bad = run_module('mlfun_jax.experiments.generate',
                   f'--workdir={text_runs.straight_dir}', '--prime=xyz€')
  assert bad.returncode != 0 and 'never saw' in bad.stderr.strip().splitlines()[-1]
