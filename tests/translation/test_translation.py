"""Translation: attention and the encoder-decoder, greedy and beam search, the translator, the
task's steps under pmap, BLEU and chrF, config errors, a short run and the translate CLI."""

import functools
import itertools
import json

import flax.jax_utils
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sacrebleu

from mlfun_jax import families
from mlfun_jax.translation import pictures as attention_pictures
from mlfun_jax.core import cli
from mlfun_jax.core import metrics_writer
from mlfun_jax.core import parallel
from mlfun_jax.translation import decode as seq_decode
from mlfun_jax.translation import subwords
from mlfun_jax.core import train
from mlfun_jax.translation import metrics as translation_metrics
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn
from mlfun_jax.translation import model as seq2seq
from mlfun_jax.translation import inference
from mlfun_jax.translation import task as translation
from tests import mixed_precision
from tests.conftest import run_module
from tests.translation.conftest import ENGLISH, SPANISH, tiny_config
from tests.translation.conftest import number_pairs as _number_pairs
from tests.translation.conftest import write_pairs as _write_pairs

NEVER = list(inference._NEVER_DECODED)  # pylint: disable=protected-access


def _model(cell='gru', attention='additive', source_vocab=11, target_vocab=13, **kwargs):
  """A small Seq2Seq and its random parameters (init on source [2, 4])."""
  model = seq2seq.Seq2Seq(source_vocab, target_vocab, embed_dim=8, hidden=16, cell=cell,
                          attention=attention, **kwargs)
  tokens = jnp.full((2, 4), 5, jnp.int32)
  params = model.init(jax.random.key(0), tokens, jnp.array([4, 2], jnp.int32), tokens)['params']
  return model, params


def _padded(sentences, size, fill=None, seed=0):
  """int32 [B, size] of the id lists, padded with 0 (or random ids below `fill`), and lengths."""
  rng = np.random.default_rng(seed)
  out = (np.zeros((len(sentences), size), np.int32) if fill is None
         else rng.integers(1, fill, size=(len(sentences), size)).astype(np.int32))
  for row, ids in enumerate(sentences):
    out[row, :len(ids)] = ids
  return jnp.asarray(out), jnp.array([len(s) for s in sentences], jnp.int32)


# ---- attention and the encoder-decoder ----

SOURCES = [[5, 6, 7], [4, 5, 6, 7, 8, 9], [10], [9, 8, 7, 6, 5]]
TARGET_IN = jnp.array([[2, 5, 6, 7, 8], [2, 4, 4, 12, 4], [2, 9, 0, 0, 0], [2, 11, 10, 9, 8]],
                      jnp.int32)


@pytest.mark.parametrize('cell, attention',
                         list(itertools.product(rnn.CELLS, seq2seq.ATTENTIONS)))
def test_attention_ignores_padding(cell, attention):
  model, params = _model(cell, attention, encoder_layers=2)
  apply = jax.jit(lambda source, lengths: model.apply({'params': params}, source, lengths,
                                                      TARGET_IN))
  logits, weights = apply(*_padded(SOURCES, 6))
  assert logits.shape == (4, 5, 13) and weights.shape == (4, 5, 6)
  assert weights.dtype == logits.dtype == jnp.float32
  lengths = np.array([len(s) for s in SOURCES])
  real = np.arange(6)[None, None, :] < lengths[:, None, None]
  np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-5)
  assert np.all(np.asarray(weights)[np.broadcast_to(~real, weights.shape)] == 0.0)
  assert np.all(np.asarray(weights)[np.broadcast_to(real, weights.shape)] > 0.0)
  for size, fill in ((9, None), (6, 11), (9, 11)):
    other_logits, other_weights = apply(*_padded(SOURCES, size, fill, seed=size))
    np.testing.assert_allclose(other_logits, logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(other_weights[:, :, :6], weights, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(other_weights)[:, :, 6:] == 0.0)
  # A real token does change the outputs (the comparison above can tell).
  changed = [[5, 6, 8]] + SOURCES[1:]
  assert not np.allclose(apply(*_padded(changed, 6))[0][0], logits[0], atol=1e-4)


@pytest.mark.parametrize('kind', seq2seq.ATTENTIONS)
def test_attention_weights_are_the_masked_softmax_of_the_scores(kind):
  attention = seq2seq.Attention(kind, features=6)
  rng = np.random.default_rng(1)
  queries = jnp.asarray(rng.normal(size=(2, 3, 5)), jnp.float32)
  values = jnp.asarray(rng.normal(size=(2, 4, 7)), jnp.float32)
  mask = jnp.array([[True, True, False, False], [True, True, True, True]])
  attend = lambda module: module(queries, {'values': values, 'keys': module.keys(values),
                                            'mask': mask})
  params = attention.init(jax.random.key(2), method=attend)
  contexts, weights = attention.apply(params, method=attend)
  p = jax.tree.map(np.asarray, params['params'])
  k = np.asarray(values) @ p['keys']['kernel']
  q = np.asarray(queries) @ p['queries']['kernel']
  if kind == 'additive':
    q = q + p['queries']['bias']
    scores = (np.tanh(q[:, :, None, :] + k[:, None, :, :]) @ p['score']['kernel'])[..., 0]
  else:
    scores = np.einsum('bta,bsa->bts', q, k)
  scores = np.where(np.asarray(mask)[:, None, :], scores, -np.inf)
  expected = np.exp(scores - scores.max(-1, keepdims=True))
  expected /= expected.sum(-1, keepdims=True)
  np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(contexts, expected @ np.asarray(values), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('cell, attention', [('gru', 'additive'), ('lstm', 'multiplicative')])
def test_decoding_one_token_at_a_time_equals_teacher_forcing(cell, attention):
  model, params = _model(cell, attention, encoder_layers=2, decoder_layers=2)
  source, lengths = _padded(SOURCES, 8)
  variables = {'params': params}
  logits, weights = model.apply(variables, source, lengths, TARGET_IN)
  memory, carry = model.apply(variables, source, lengths, method=model.encode)
  whole_carry, _, _ = model.apply(variables, carry, TARGET_IN, memory, method=model.decode)
  step = jax.jit(lambda carry, tokens: model.apply(variables, carry, tokens, memory,
                                                   method=model.decode))
  step_logits, step_weights = [], []
  for t in range(TARGET_IN.shape[1]):
    carry, out, w = step(carry, TARGET_IN[:, t:t + 1])
    step_logits.append(out)
    step_weights.append(w)
  np.testing.assert_allclose(np.concatenate(step_logits, 1), logits, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.concatenate(step_weights, 1), weights, rtol=1e-5, atol=1e-6)
  for a, b in zip(jax.tree.leaves(carry), jax.tree.leaves(whole_carry)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_model_rejects_bad_settings():
  for kwargs, message in ((dict(cell='rnn'), 'unknown cell'), (dict(hidden=15), 'even'),
                          (dict(attention='dot'), 'unknown attention')):
    model = seq2seq.Seq2Seq(10, 10, **{'embed_dim': 4, 'hidden': 8, **kwargs})
    tokens = jnp.ones((1, 3), jnp.int32)
    with pytest.raises(ValueError, match=message):
      model.init(jax.random.key(0), tokens, jnp.array([3]), tokens)


# ---- greedy and beam search ----

def _model_step(model, params):
  """The translator's step function: (memory, carry, tokens [N]) -> (carry, log-probs [N, V])
  with PAD, UNKNOWN and BOS never chosen."""

  def step(memory, carry, tokens):
    carry, logits, _ = model.apply({'params': params}, carry, tokens[:, None], memory,
                                   method=model.decode)
    return carry, jax.nn.log_softmax(logits[:, 0]).at[:, NEVER].set(seq_decode.NEG_INF)

  return step


def _peaked_model(seed):
  """A random model whose logits are scaled up (peaked distributions, EOS sometimes likely)."""
  model, params = _model('gru', 'additive', target_vocab=9)
  key = jax.random.key(seed)
  params['logits']['kernel'] = 4.0 * jax.random.normal(key, params['logits']['kernel'].shape)
  params['logits']['bias'] = params['logits']['bias'].at[subwords.EOS].set(1.0)
  return model, params


@functools.partial(jax.jit, static_argnums=0)
def _sequence_log_prob(model, params, source, lengths, tokens):
  """(log P of each row of `tokens` [B, L] up to and including its EOS, teacher-forced; lengths)."""
  is_end = tokens == subwords.EOS
  length = jnp.where(is_end.any(1), jnp.argmax(is_end, 1) + 1, tokens.shape[1])
  target_in = jnp.concatenate([jnp.full((len(tokens), 1), subwords.BOS), tokens[:, :-1]], 1)
  logits, _ = model.apply({'params': params}, source, lengths, target_in)
  log_probs = jax.nn.log_softmax(logits).at[:, :, NEVER].set(seq_decode.NEG_INF)
  picked = jnp.take_along_axis(log_probs, tokens[:, :, None], -1)[..., 0]
  return (picked * (jnp.arange(tokens.shape[1])[None] < length[:, None])).sum(1), length


@functools.partial(jax.jit, static_argnames=('model', 'max_length', 'beam_size', 'alpha'))
def _decode_all(model, params, source, lengths, *, max_length, beam_size=None, alpha=0.0):
  """Greedy tokens (beam_size None), or beam search's (tokens, scores), of a source batch."""
  memory, carry = model.apply({'params': params}, source, lengths, method=model.encode)
  settings = dict(batch_size=source.shape[0], bos_id=subwords.BOS, eos_id=subwords.EOS,
                  max_length=max_length)
  if beam_size is None:
    return seq_decode.greedy(_model_step(model, params), memory, carry, **settings)
  return seq_decode.beam_search(_model_step(model, params), memory, carry, beam_size=beam_size,
                                alpha=alpha, **settings)


def test_beam_of_one_is_greedy_and_wider_beams_score_no_worse():
  source, lengths = _padded([[4 + (i * 7 + j) % 7 for j in range(1 + i % 5)] for i in range(10)],
                            6)
  ended = better = 0
  for seed in range(3):
    model, params = _peaked_model(seed)
    decode = functools.partial(_decode_all, model, params, source, lengths, max_length=12)
    log_prob_of = functools.partial(_sequence_log_prob, model, params, source, lengths)
    greedy = np.asarray(decode())
    assert greedy.shape == (10, 12) and greedy.dtype == np.int32
    ended += sum(subwords.EOS in row for row in greedy)
    one, one_score = decode(beam_size=1)
    np.testing.assert_array_equal(one, greedy)
    greedy_log_prob, _ = log_prob_of(greedy)
    np.testing.assert_allclose(one_score, greedy_log_prob, rtol=1e-5, atol=1e-4)
    for beam_size in (2, 4):
      tokens, scores = decode(beam_size=beam_size)
      log_prob, _ = log_prob_of(tokens)
      np.testing.assert_allclose(scores, log_prob, rtol=1e-5, atol=1e-4)
      assert np.all(log_prob >= greedy_log_prob - 1e-4), (beam_size, log_prob - greedy_log_prob)
      better += int(np.sum(log_prob > greedy_log_prob + 1e-3))
    tokens, scores = decode(beam_size=3, alpha=0.8)
    log_prob, length = log_prob_of(tokens)
    np.testing.assert_allclose(scores, log_prob / ((5 + length) / 6)**0.8, rtol=1e-5, atol=1e-4)
  assert 0 < ended < 30  # Both kinds of ending (EOS, max_length) were decoded...
  assert better > 0  # ... and beam search did beat greedy somewhere.


def _table_step(tables):
  """A step function reading log-probabilities off `tables` [sentences, V, V]: row `last token`
  of the sentence's table (static: each row's sentence index; carry: unused)."""
  tables = jnp.log(jnp.asarray(tables, jnp.float32) + 1e-12)

  def step(sentence, carry, tokens):
    return carry, tables[sentence, tokens]

  return step


def _distribution(**probs):
  """A row over the ids PAD UNK BOS EOS A B C (4, 5, 6) of the given probabilities."""
  names = ['pad', 'unk', 'bos', 'eos', 'a', 'b', 'c']
  return [probs.get(n, 0.0) for n in names]


def test_beam_search_finds_what_greedy_misses_on_a_hand_built_table():
  A, B, C, EOS = 4, 5, 6, subwords.EOS
  uniform = _distribution(a=0.3, b=0.3, c=0.4)
  # Sentence 0: greedy takes A (0.55) then EOS (0.4): 0.22; B then EOS is 0.45 * 0.9 = 0.405.
  first = [uniform] * 7
  first[subwords.BOS] = _distribution(a=0.55, b=0.45)
  first[A] = _distribution(eos=0.4, a=0.3, b=0.3)
  first[B] = _distribution(eos=0.9, c=0.1)
  # Sentence 1: greedy is already best (C then EOS).
  second = [_distribution(eos=1.0)] * 7
  second[subwords.BOS] = _distribution(c=0.7, a=0.3)
  second[C] = _distribution(eos=0.8, b=0.2)
  second[A] = _distribution(eos=0.5, b=0.5)
  # Sentence 2: EOS first (0.5) or C then EOS (0.5 * 0.99): the length penalty decides.
  third = [_distribution(eos=1.0)] * 7
  third[subwords.BOS] = _distribution(eos=0.5, c=0.5)
  third[C] = _distribution(eos=0.99, c=0.01)
  # Sentence 3: never ends; max_length stops both searches.
  fourth = [_distribution(a=0.6, b=0.4)] * 7
  # Sentence 4: EOS first (0.4) is kept as finished, but A A A A A, cut at max_length, is likelier.
  fifth = [_distribution(b=1.0)] * 7
  fifth[subwords.BOS] = _distribution(a=0.55, eos=0.4, b=0.05)
  fifth[A] = _distribution(a=0.99, b=0.01)
  step = _table_step([first, second, third, fourth, fifth])
  static, carry = jnp.arange(5), jnp.zeros((5, 1))
  settings = dict(batch_size=5, bos_id=subwords.BOS, eos_id=EOS, max_length=5)
  greedy = np.asarray(seq_decode.greedy(step, static, carry, **settings))
  np.testing.assert_array_equal(greedy, [[A, EOS, 0, 0, 0], [C, EOS, 0, 0, 0],
                                         [EOS, 0, 0, 0, 0], [A] * 5, [A] * 5])
  one, _ = seq_decode.beam_search(step, static, carry, beam_size=1, **settings)
  np.testing.assert_array_equal(one, greedy)
  tokens, scores = seq_decode.beam_search(step, static, carry, beam_size=2, **settings)
  np.testing.assert_array_equal(tokens, [[B, EOS, 0, 0, 0], [C, EOS, 0, 0, 0],
                                         [EOS, 0, 0, 0, 0], [A] * 5, [A] * 5])
  np.testing.assert_allclose(
      scores, np.log([0.45 * 0.9, 0.7 * 0.8, 0.5, 0.6**5, 0.55 * 0.99**4]), rtol=1e-5)
  tokens, scores = seq_decode.beam_search(step, static, carry, beam_size=2, alpha=1.0,
                                          **settings)
  np.testing.assert_array_equal(tokens[2], [C, EOS, 0, 0, 0])
  np.testing.assert_allclose(scores[2:], np.log([0.5 * 0.99, 0.6**5, 0.55 * 0.99**4])
                             / np.array([7, 10, 10]) * 6, rtol=1e-5)
  np.testing.assert_allclose(seq_decode.length_penalty(jnp.array([1, 5]), 0.6),
                             [(6 / 6)**0.6, (10 / 6)**0.6], rtol=1e-6)


# ---- the translator ----

@functools.partial(jax.jit, static_argnums=0)
def _decode_step(model, params, carry, tokens, memory):
  return model.apply({'params': params}, carry, tokens, memory, method=model.decode)


def _python_greedy(translator, sentence):
  """One sentence greedily, a token at a time in Python, on its source padded to its bucket."""
  model, params = translator.model, translator.params
  ids = translator.source_tokenizer.encode(sentence)
  size = next((b for b in translator.buckets if b >= len(ids)), 32)  # 32: a multiple of 32.
  source, lengths = _padded([ids], size)
  memory, carry = model.apply({'params': params}, source, lengths, method=model.encode)
  tokens, last = [], subwords.BOS
  for _ in range(int(translator.max_length_ratio * size) + translator.max_length_extra):
    carry, logits, _ = _decode_step(model, params, carry, jnp.array([[last]], jnp.int32), memory)
    logits = np.array(logits[0, 0])
    logits[NEVER] = -np.inf
    last = int(np.argmax(logits))
    tokens.append(last)
    if last == subwords.EOS:
      break
  return translator.target_tokenizer.decode(tokens)


SENTENCES = ['one', 'two three', 'ten', 'six seven eight', 'nine', 'five four', 'eight',
             'seven seven seven']  # Padded to 4, 16, 4, 16, 4, 16, 8 and (past the buckets) 32.


def test_translator_is_deterministic_keeps_order_and_beam_one_is_greedy(tiny_translator):
  out = tiny_translator.translate(SENTENCES, beam_size=1)
  assert len(out) == len(SENTENCES) and len(set(out)) > 3
  assert tiny_translator.translate(SENTENCES, beam_size=1) == out
  assert out == [_python_greedy(tiny_translator, s) for s in SENTENCES]
  assert [tiny_translator.translate([s])[0] for s in reversed(SENTENCES)] == out[::-1]
  assert tiny_translator.translate(['', 'one']) == [_python_greedy(tiny_translator, '\u2047'),
                                                    out[0]]  # '' reads as one unknown token.
  beam = tiny_translator.translate(SENTENCES, beam_size=3, length_penalty=0.6)
  assert tiny_translator.translate(SENTENCES[::-1], beam_size=3, length_penalty=0.6) == beam[::-1]
  assert beam != out  # Beam search finds other translations for some.
  with pytest.raises(UserError, match='beam size 0'):
    tiny_translator.translate(SENTENCES, beam_size=0)
  with pytest.raises(UserError, match='length penalty -1'):
    tiny_translator.translate(SENTENCES, beam_size=2, length_penalty=-1)


def test_attention_of_one_sentence_and_its_picture(tiny_translator, tmp_path):
  sources, targets, weights = tiny_translator.attention('six seven')
  assert sources == ['_' if c == ' ' else c for c in 'six seven']
  translation_text = tiny_translator.translate(['six seven'])[0]
  assert targets[-1] == '</s>' and len(targets) == len(translation_text) + 1
  assert weights.shape == (len(targets), len(sources))
  np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-5)
  path = tmp_path / 'pics' / 'attention.png'
  assert attention_pictures.save_attention(str(path), sources, targets, weights, 'six') == str(path)
  assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  with pytest.raises(ValueError, match='do not match'):
    attention_pictures.save_attention(str(path), sources[1:], targets, weights)


# ---- the task's steps ----

def _synthetic_batch(rng, size=8, global_batch=8, vocab=12):
  """{'source', 'source_length', 'target'} [global_batch, size]: BOS ... EOS targets, 0-padded."""
  source = np.zeros((global_batch, size), np.int32)
  target = np.zeros((global_batch, size), np.int32)
  source_length = rng.integers(1, size + 1, global_batch).astype(np.int32)
  for row in range(global_batch):
    source[row, :source_length[row]] = rng.integers(4, vocab, source_length[row])
    n = rng.integers(0, size - 1)
    target[row, :n + 2] = [subwords.BOS] + rng.integers(4, vocab, n).tolist() + [subwords.EOS]
  return {'source': source, 'source_length': source_length, 'target': target}


def test_token_losses_mask_padding_and_smooth_labels():
  model, params = _model(source_vocab=12, target_vocab=12)
  batch = _synthetic_batch(np.random.default_rng(0))
  losses = jax.jit(functools.partial(translation.token_losses, model),
                   static_argnames='label_smoothing')
  plain = losses(params, batch)
  smooth = losses(params, batch, label_smoothing=0.2)
  target_out = batch['target'][:, 1:]
  np.testing.assert_array_equal(plain['mask'], target_out != 0)
  for values in (plain['loss'], plain['nll'], plain['correct'], smooth['loss']):
    assert np.all(np.asarray(values)[target_out == 0] == 0.0)
  np.testing.assert_allclose(plain['loss'], plain['nll'], rtol=1e-6)
  logits, _ = model.apply({'params': params}, batch['source'], batch['source_length'],
                          batch['target'][:, :-1])
  log_probs = np.asarray(jax.nn.log_softmax(logits))
  nll = -np.take_along_axis(log_probs, target_out[:, :, None], -1)[..., 0]
  np.testing.assert_allclose(plain['nll'], nll * (target_out != 0), rtol=1e-5, atol=1e-6)
  expected = (0.8 * nll + 0.2 * -log_probs.mean(-1)) * (target_out != 0)
  np.testing.assert_allclose(smooth['loss'], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(plain['correct'], (log_probs.argmax(-1) == target_out)
                                * (target_out != 0))


def test_bfloat16_steps_on_8_devices_match_1_device_and_the_loss_falls(tmp_path):
  """config.dtype='bfloat16': bfloat16 embeddings, recurrent gates, attention and dense layers;
  parameters, optimizer state, carries, attention softmax, logits and metrics stay float32; 8
  devices compute what 1 does within bfloat16 rounding; greedy and beam decoding (GRU) and beam
  decoding (LSTM) trace with the bfloat16 model (shapes only)."""
  config = tiny_config(tmp_path / 'unused.txt', optimizer__schedule='constant',
                       optimizer__learning_rate=0.01, dtype='bfloat16')
  model = seq2seq.create_model(config, 12, 12)
  state = seq2seq.create_state(model, config, 10, jax.random.key(0))
  batch = _synthetic_batch(np.random.default_rng(3))
  batch_of = lambda n, _: {k: v.reshape((n, -1) + v.shape[1:]) for k, v in batch.items()}
  step = translation.make_train_step(model, config)
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 6)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 3)
  # (Not 'accuracy': one argmax tie broken the other way moves it by a whole token.)
  mixed_precision.assert_devices_agree(state.params, states1[2].params, states8[2].params,
                                       metrics1[2], metrics8[2], names=['loss', 'nll', 'tokens'])
  mixed_precision.assert_float32((states1[-1], metrics1), 'state')
  losses = [float(m['loss'][0]) for m in metrics1]
  assert 2.3 < losses[0] < 2.8 and losses[-1] < losses[0] - 0.3  # 2.53 -> 2.06 when written.
  source, length, target_in = batch['source'], batch['source_length'], batch['target'][:, :-1]
  mixed_precision.assert_float32(jax.eval_shape(lambda p: model.apply(
      {'params': p}, source, length, target_in), state.params), 'logits and attention')
  assert set(mixed_precision.matmul_dtypes(model.apply, {'params': state.params}, source, length,
                                           target_in)) == {'bfloat16'}
  decode = inference._decode_batch  # pylint: disable=protected-access
  for cell, beam_size in (('gru', 1), ('gru', 2), ('lstm', 2)):
    config.model.cell = cell
    model = seq2seq.create_model(config, 12, 12)
    params = state.params if cell == 'gru' else jax.eval_shape(
        lambda m=model: seq2seq.create_state(m, config, 10, jax.random.key(0)).params)
    translations = jax.eval_shape(lambda p, m=model, b=beam_size: decode(  # Carries keep dtypes.
        m, p, source, length, beam_size=b, max_length=5, alpha=0.6), params)
    assert translations.shape == (8, 5)


def test_train_and_eval_steps_on_8_devices_equal_1_device(tmp_path):
  assert jax.local_device_count() == 8
  config = tiny_config(tmp_path / 'unused.txt', label_smoothing=0.1,
                       optimizer__schedule='constant', optimizer__learning_rate=0.01)
  model = seq2seq.create_model(config, 12, 12)
  rng = np.random.default_rng(3)
  batches = [_synthetic_batch(rng) for _ in range(3)]
  first_state = seq2seq.create_state(model, config, 10, jax.random.key(0))
  losses = jax.jit(lambda params, batch: translation.token_losses(model, params, batch, 0.1))
  results = []
  for n in (8, 1):
    devices = jax.local_devices()[:n]
    step = train.pmap_train_step(translation.make_train_step(model, config), jax.random.key(1),
                                 devices=devices)
    replicated = flax.jax_utils.replicate(first_state, devices)
    metrics = []
    for batch in batches:
      replicated, m = step(replicated, {k: v.reshape((n, -1) + v.shape[1:])
                                        for k, v in batch.items()})
      metrics.append(jax.tree.map(lambda x: float(x[0]), m))
    eval_step = train.pmap_eval_step(translation.make_eval_step(model, config), devices=devices)
    batch = {k: v.reshape((n, -1) + v.shape[1:]) for k, v in batches[1].items()}
    batch['mask'] = np.tile([1.0, 1.0, 1.0, 0.0], 2).reshape(n, -1).astype(np.float32)
    sums = jax.tree.map(lambda x: float(x[0]), eval_step(replicated, batch))
    results.append((metrics, parallel.to_host(replicated).params, sums))
  (metrics8, params8, sums8), (metrics1, params1, sums1) = results
  for m8, m1 in zip(metrics8, metrics1):
    assert m8.keys() == {'loss', 'nll', 'accuracy', 'tokens'}
    for name in m8:
      np.testing.assert_allclose(m8[name], m1[name], rtol=1e-5, err_msg=name)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               params8, params1)
  for name in sums8:
    np.testing.assert_allclose(sums8[name], sums1[name], rtol=1e-5, err_msg=name)
  # The first step's loss is the token mean over the whole global batch.
  per_token = losses(first_state.params, batches[0])
  assert metrics1[0]['tokens'] == float(per_token['mask'].sum())
  np.testing.assert_allclose(metrics1[0]['loss'],
                             float(per_token['loss'].sum() / per_token['mask'].sum()), rtol=1e-5)
  np.testing.assert_allclose(metrics1[0]['accuracy'],
                             float(per_token['correct'].sum() / per_token['mask'].sum()),
                             rtol=1e-5)
  # Eval sums cover the masked-in rows only.
  rows = np.tile([1.0, 1.0, 1.0, 0.0], 2)
  per_token = losses(params1, batches[1])
  assert sums1['sentences'] == 6.0
  assert sums1['tokens'] == float((per_token['mask'] * rows[:, None]).sum())
  np.testing.assert_allclose(sums1['nll'], float((per_token['nll'] * rows[:, None]).sum()),
                             rtol=1e-5)
  summary = translation.summarize_eval(sums1)
  np.testing.assert_allclose(summary['perplexity'], np.exp(sums1['nll'] / sums1['tokens']),
                             rtol=1e-6)
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), params1, first_state.params)
  assert min(jax.tree.leaves(moved)) > 1e-4  # Every parameter did move.


# ---- metrics ----

def test_bleu_and_chrf_scores():
  hypotheses = ['the cat sat on the mat .', 'a dog barks loudly at night .']
  perfect = translation_metrics.scores(hypotheses, [[h] for h in hypotheses])
  assert perfect == pytest.approx({'bleu': 100.0, 'chrf': 100.0, 'bleu_multi_reference': 100.0,
                                   'chrf_multi_reference': 100.0})
  references = [['the cat sat on a mat .', 'the cat sat on the mat .'],
                ['a dog is barking at night .']]
  scores = translation_metrics.scores(hypotheses, references)
  assert 0 < scores['bleu'] < scores['bleu_multi_reference'] < 100
  assert 0 < scores['chrf'] < 100 and 0 < scores['chrf_multi_reference'] < 100
  pairs = (['the cat sat on the mat .'] * 2 + ['a dog barks loudly at night .'],
           [[r for refs in references for r in refs]])
  assert scores['bleu'] == pytest.approx(sacrebleu.corpus_bleu(*pairs).score)
  assert scores['chrf'] == pytest.approx(sacrebleu.corpus_chrf(*pairs).score)
  streams = [[r[0] for r in references], ['the cat sat on the mat .', None]]
  assert scores['bleu_multi_reference'] == pytest.approx(
      sacrebleu.corpus_bleu(hypotheses, streams).score)
  assert scores['chrf_multi_reference'] == pytest.approx(
      sacrebleu.corpus_chrf(hypotheses, streams).score)
  with pytest.raises(ValueError, match='one non-empty list'):
    translation_metrics.scores(hypotheses, references[:1])
  with pytest.raises(ValueError, match='one non-empty list'):
    translation_metrics.scores(hypotheses, [['x'], []])


# ---- config errors ----

@pytest.mark.parametrize('overrides, message', [
    (dict(model__cell='rnn'), 'model.cell'),
    (dict(model__attention='dot'), 'model.attention'),
    (dict(model__hidden=15), 'model.hidden'),
    (dict(label_smoothing=1.0), 'label_smoothing'),
    (dict(decode__beam_size=0), 'decode.beam_size'),
    (dict(decode__length_penalty=-0.5), 'decode.length_penalty'),
    (dict(batch_size=0), 'batch_size'),
    (dict(validation_fraction=0.0), 'validation_fraction=0.0 leaves no validation pairs'),
    (dict(test_fraction=0.0), 'test_fraction=0.0 leaves no test pairs'),
])
def test_bad_config_fields_name_the_field(tmp_path, overrides, message):
  path = _write_pairs(tmp_path / 'pairs.txt', _number_pairs(60))
  with pytest.raises(UserError, match=message):
    translation.build(tiny_config(path, **overrides), str(tmp_path / 'work'))


# ---- a short run and the CLI ----

def test_short_run_reports_translates_and_resumes(short_run, tmp_path):
  pairs, path, workdir = short_run.pairs, short_run.path, short_run.workdir
  summary = short_run.summary
  assert np.isfinite(summary['eval_perplexity']) and summary['eval_sentences'] > 0
  report = json.loads((workdir / 'report.json').read_text())
  for name in ('greedy', 'beam'):
    for key in ('bleu', 'chrf', 'bleu_multi_reference', 'chrf_multi_reference'):
      assert 0.0 <= report[f'{name}_{key}'] <= 100.0, (name, key)
  assert report['step'] == 6 and report['beam_size'] == 2
  assert report['test_pairs'] > report['test_sentences'] > 0  # Some have two references.
  assert report['beam_gain_bleu'] == pytest.approx(report['beam_bleu'] - report['greedy_bleu'])
  records = metrics_writer.read_metrics(str(workdir))
  test_records = [r for r in records if 'test/greedy_bleu' in r]
  assert [r['step'] for r in test_records] == [6]
  assert test_records[0]['test/beam_chrf'] == pytest.approx(report['beam_chrf'])
  rows = (workdir / 'translations.tsv').read_text(encoding='utf-8').splitlines()
  assert rows[0] == 'source\treferences\tgreedy\tbeam'
  assert len(rows) == report['test_sentences'] + 1
  assert all(len(row.split('\t')) == 4 for row in rows)
  assert (workdir / 'attention.png').read_bytes()[:4] == b'\x89PNG'
  saved = inference.Translator.restore(str(workdir))
  assert saved.step == 6 and saved.config.model.hidden == 16

  args = ['one two', 'nine', 'ten ten ten']
  result = run_module('mlfun_jax.experiments.translate', f'--workdir={workdir}', '--beam_width=1',
                      *args, f'--output_dir={tmp_path / "a"}')
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines() == saved.translate(args, beam_size=1)
  assert (tmp_path / 'a' / 'attention.png').read_bytes()[:4] == b'\x89PNG'
  lines = args + ['', 'five']
  piped = run_module('mlfun_jax.experiments.translate', f'--workdir={workdir}', '--batch_lines=2',
                     input=''.join(line + '\n' for line in lines))
  assert piped.returncode == 0, piped.stderr
  decode = saved.config.decode
  assert piped.stdout.splitlines() == saved.translate(
      lines, beam_size=decode.beam_size, length_penalty=decode.length_penalty)
  missing = run_module('mlfun_jax.experiments.translate', f'--workdir={tmp_path / "none"}', 'one')
  assert missing.returncode == cli.EXIT_USER_ERROR and 'none does not exist' in missing.stderr

  # Resume with more steps, after the data gained characters: the saved tokenisers are kept.
  _write_pairs(path, pairs + [(f'zero {e}', f'cero {s}') for e, s in zip(ENGLISH, SPANISH)])
  state, _ = families.train_and_evaluate(tiny_config(path, num_steps=9), str(workdir))
  assert int(state.step) == 9
  resumed = inference.Translator.restore(str(workdir))
  assert resumed.step == 9
  assert resumed.source_tokenizer.to_json() == saved.source_tokenizer.to_json()
  assert resumed.target_tokenizer.to_json() == saved.target_tokenizer.to_json()
  assert 'z' not in resumed.source_tokenizer.characters
  records = metrics_writer.read_metrics(str(workdir))
  assert [r['step'] for r in records if 'test/greedy_bleu' in r] == [6, 9]  # Step 6's is kept.
  assert [r['step'] for r in records if 'train_loss' in r] == [3, 6, 9]
  assert json.loads((workdir / 'report.json').read_text())['step'] == 9
