"""Every public char_rnn function taking ids or text checks its input convention: a call in another
one fails with one clear line (checks.InputError, a UserError and a ValueError) naming the
argument."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.char_rnn import inference
from mlfun_jax.char_rnn import level_pictures
from mlfun_jax.char_rnn import level_quality
from mlfun_jax.char_rnn import levels
from mlfun_jax.char_rnn import ngram
from mlfun_jax.char_rnn import sampling as char_sampling
from mlfun_jax.char_rnn import streams
from mlfun_jax.char_rnn import task as char_rnn
from mlfun_jax.char_rnn import text
from mlfun_jax.core import checks
from mlfun_jax.models import rnn
from tests.conftest import raises_one_line


@pytest.fixture(scope='module')
def tiny_model():
  model = rnn.CharLM(vocab_size=13, embed_dim=8, hidden=16, num_layers=1, cell='gru')
  params = model.init(jax.random.key(0), model.zero_carry(1), jnp.zeros((1, 1), jnp.int32))
  return model, params['params']


def test_sampling_checks_prime_and_last_ids(tiny_model):
  model, params = tiny_model
  with raises_one_line(r'prime_ids: expected integer ids \[P\] in 0\.\.12, got float32 of shape \(2,\)'):
    char_sampling.generate(model, params, np.array([3.0, 4.0], np.float32), 5)
  with raises_one_line(r'prime_ids: expected integer ids \[P\] in 0\.\.12, got values in \[3, 13\]'):
    char_sampling.generate(model, params, np.array([3, 13], np.int32), 5)
  with raises_one_line(r'prime_ids: expected integer ids \[P\] in 0\.\.12, got int32 of shape'):
    char_sampling.generate(model, params, np.array([[3, 4]], np.int32), 5)
  with raises_one_line(r'prime_ids: expected integer ids \[P\] with P >= 1, got none'):
    char_sampling.generate(model, params, np.array([], np.int32), 5)
  with raises_one_line(r'prime_ids: expected integer ids \[P\]'):
    char_sampling.prime(model, params, jnp.array([[3]], jnp.int32), 2)
  carry, last = char_sampling.prime(model, params, jnp.array([3, 4], jnp.int32), 2)
  with raises_one_line(r'last: expected integer ids \[B\] in 0\.\.12, got int32 of shape \(2, 1\)'):
    char_sampling.sample(model, params, carry, last[:, None], jax.random.key(0), 4)
  with raises_one_line(r'last: expected integer ids \[B\] in 0\.\.12, got values in'):
    char_sampling.sample(model, params, carry, last + 20, jax.random.key(0), 4)
  with raises_one_line(r'logits: expected floats \[B, V\], got int32'):
    char_sampling.choose(jnp.ones((2, 5), jnp.int32), jax.random.key(0), jnp.float32(1.0),
                         jnp.int32(0))
  with raises_one_line(r'logits: expected floats \[B, V\], got float32 of shape \(5,\)'):
    char_sampling.choose(jnp.ones((5,)), jax.random.key(0), jnp.float32(1.0), jnp.int32(0))


def test_value_checks_skip_traced_ids_but_dtype_checks_do_not():
  check = lambda x: checks.check_ids(x, name='x', vocab_size=3) or x
  np.testing.assert_array_equal(jax.jit(check)(jnp.array([7])), [7])  # Values unknown in jit.
  with raises_one_line('x: expected integer ids in 0..2, got float32'):
    jax.jit(check)(jnp.array([1.0]))
  with raises_one_line(r'x: expected integer ids in 0\.\.2, got values in \[7, 7\]'):
    check(jnp.array([7]))


def test_sampler_takes_one_str_prime(tiny_model):
  model, params = tiny_model
  vocab = text.Vocabulary(text.UNKNOWN + '\nabcdefghij')
  sampler = inference.CharSampler(model, params, vocab, 'text', None, ('a',))
  assert len(sampler.text(7, prime='ab')) == 7
  with raises_one_line('prime: expected one str, got list'):
    sampler.text(7, prime=['ab'])
  with raises_one_line('prime: expected one str, got bytes'):
    sampler.levels(1, 2, prime=b'ab')


def test_trained_model_restores_and_checks_its_prime(text_runs):
  trained = inference.TrainedCharRNN(str(text_runs.straight_dir))
  assert trained.step == 16 and trained.config.model.max_position == 0
  assert trained.text(12, prime='abra', seed=5) == trained.text(12, prime='abra', seed=5)
  with raises_one_line('prime: expected one str, got tuple'):
    trained.text(12, prime=('abra',))


def test_vocabulary_checks_text_and_ids():
  vocab = text.Vocabulary(text.UNKNOWN + '\nab')
  with raises_one_line('text: expected one str, got list'):
    vocab.encode(['ab'])
  with raises_one_line(r'ids: expected integer ids \[T\] in 0\.\.3, got int32 of shape \(1, 2\)'):
    vocab.decode(np.array([[1, 2]], np.int32))
  with raises_one_line(r'ids: expected integer ids \[T\] in 0\.\.3, got values in \[1, 9\]'):
    vocab.decode([1, 9])
  with raises_one_line('ids: expected integer ids .T. in 0..3, got float64'):
    vocab.decode(np.array([1.0, 2.0]))


def test_level_functions_take_lists_of_str():
  rows = ['-<>-', 'X[]X', 'XXXX']
  for call, name in ((lambda x: levels.columns_of(x), 'rows'),
                     (lambda x: levels.rows_of(x), 'columns'),
                     (lambda x: levels.mirror(x), 'rows'),
                     (lambda x: levels.to_stream(x), 'rows'),
                     (lambda x: level_quality.pipe_counts(x), 'rows'),
                     (lambda x: level_quality.windows(x), 'columns'),
                     (lambda x: level_quality.valid_column_share(x, 3, 'X-'), 'columns'),
                     (lambda x: level_pictures.render(x), 'rows')):
    call(rows)  # The convention works...
    with raises_one_line(f'{name}: expected a list of str, got str'):
      call('-<>-')  # ... one str (a single row) does not.
  with raises_one_line('stream: expected one str, got list'):
    levels.from_stream(['XX\n'])
  with raises_one_line('text: expected one str, got list'):
    levels.parse_level(rows)
  with raises_one_line('generated: expected a list of levels'):
    level_quality.level_report(levels.columns_of(rows), [rows])
  with raises_one_line('columns: expected a list of str, got str'):
    level_pictures.write_level('XX--', 4, '/nonexistent/level')


def test_ngram_and_stream_functions_check_ids():
  tokens, mask = streams.eval_chunks([np.array([2, 3, 4, 2])], start_id=1, sequence_length=3)
  assert ngram.unigram_bits([np.array([2, 3])], tokens, mask, 5) > 0
  with raises_one_line(r'tokens: expected integer ids \[C, L \+ 1\] in 0\.\.3, got values in'):
    ngram.unigram_bits([np.array([2, 3])], tokens, mask, 4)
  with raises_one_line(r'train_documents\[i\]: expected integer ids of rank 1 in 0\.\.4'):
    ngram.unigram_bits([np.array([2, 7])], tokens, mask, 5)
  with raises_one_line(r'tokens: expected integer ids \[C, L \+ 1\] in 0\.\.4, got float32'):
    ngram.KneserNey([[2, 3]], 2, 5, start_id=1).bits(tokens.astype(np.float32), mask)
  with raises_one_line(r'mask: expected floats \[C, L\] in \[0.0, 1.0\], got float32 of shape'):
    ngram.KneserNey([[2, 3]], 2, 5, start_id=1).bits(tokens, mask[0])
  with raises_one_line(r'documents\[i\]: expected integer ids of rank 1 in 0\.\.4'):
    ngram.KneserNey([[2, 9]], 2, 5, start_id=1)
  with raises_one_line('documents: expected a list of integer id arrays'):
    streams.eval_chunks(np.arange(2, 9), start_id=1, sequence_length=3)
  with raises_one_line(r'documents\[i\]: expected integer ids \[n\], got float64'):
    streams.StreamBatches([np.ones(50)], start_id=1, sequence_length=3, global_batch_size=2,
                          seed=0)
  with raises_one_line(r'documents\[i\]: expected integer ids >= 0'):
    streams.eval_chunks([np.array([2, -1])], start_id=1, sequence_length=3)
  with raises_one_line(r'mask: expected floats \[C, L\] in \[0.0, 1.0\], got values in \[0.0, 2.0\]'):
    streams.eval_batches(tokens, mask * 2, global_batch_size=8, local_device_count=8)


def test_report_functions_check_eval_chunks(tiny_model):
  model, params = tiny_model
  tokens, mask = streams.eval_chunks([np.array([2, 3, 4, 12])], start_id=1, sequence_length=3)
  assert np.isfinite(char_rnn.heldout_bits(model, params, tokens, mask))
  with raises_one_line(r'tokens: expected integer ids \[C, L \+ 1\] in 0\.\.12, got values in \[0, 13\]'):
    char_rnn.heldout_bits(model, params, tokens + (tokens == 12), mask)
  vocab = text.Vocabulary(text.UNKNOWN + '\nab')
  with raises_one_line(r'tokens: expected integer ids \[C, L \+ 1\] in 0\.\.3'):
    char_rnn.baselines([np.array([2, 3])], vocab, tokens, mask, (2,))
