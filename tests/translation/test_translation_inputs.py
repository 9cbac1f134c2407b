"""Every public translation function taking ids or text checks its input convention: a call in
another one fails with one clear line (checks.InputError, a UserError and a ValueError)."""

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.translation import data as sentence_pairs
from mlfun_jax.translation import decode as seq_decode
from mlfun_jax.translation import inference
from mlfun_jax.translation import metrics as translation_metrics
from mlfun_jax.translation import pictures as attention_pictures
from mlfun_jax.translation import subwords
from mlfun_jax.translation import task as translation
from tests.conftest import raises_one_line


def test_translator_takes_a_list_of_sentences_and_attention_one(tiny_translator):
  assert len(tiny_translator.translate(['one two'])) == 1
  with raises_one_line('sentences: expected a list of str, got str'):
    tiny_translator.translate('one two')
  with raises_one_line('sentences: expected a list of str, got int at index 0'):
    tiny_translator.timed_translate([1, 2])
  with raises_one_line('sentence: expected one str, got list'):
    tiny_translator.attention(['one two'])


def test_restored_translator_checks_its_sentences(short_run):
  restored = inference.Translator.restore(str(short_run.workdir))
  assert restored.step >= 6 and restored.config.decode.beam_size == 2
  with raises_one_line('sentences: expected a list of str, got str'):
    restored.translate('one')


def test_model_checks_ids_dtypes_and_shapes(tiny_translator):
  model, params = tiny_translator.model, tiny_translator.params
  source, lengths = jnp.array([[5, 6, 7]], jnp.int32), jnp.array([3], jnp.int32)
  apply = lambda *args: model.apply({'params': params}, *args)
  apply(source, lengths, source)
  with raises_one_line(r'source: expected integer ids \[B, S\] in 0\.\.\d+, got float32'):
    apply(source.astype(jnp.float32), lengths, source)
  with raises_one_line(r'source: expected integer ids \[B, S\] in 0\.\.\d+, got values in'):
    apply(source + 100, lengths, source)
  with raises_one_line(r'source: expected integer ids \[B, S\] in 0\.\.\d+, got int32 of shape \(3,\)'):
    apply(source[0], lengths, source)
  with raises_one_line(r'source_length: expected integer ids \[B\], got int32 of shape \(1, 1\)'):
    apply(source, lengths[:, None], source)
  with raises_one_line(r'tokens: expected integer ids \[B, T\] in 0\.\.\d+, got values in'):
    apply(source, lengths, source + 100)
  # Under jit only dtypes and shapes are checked (the ids are unknown while tracing).
  assert jax.jit(apply)(source, lengths, source)[0].shape[:2] == (1, 3)
  with raises_one_line(r'source: expected integer ids \[B, S\] in 0\.\.\d+, got float32'):
    jax.jit(apply)(source.astype(jnp.float32), lengths, source)


def test_token_losses_check_the_target_ids(tiny_translator):
  batch = {'source': np.array([[5, 6]], np.int32), 'source_length': np.array([2], np.int32),
           'target': np.array([[2, 5, 3]], np.int32)}
  translation.token_losses(tiny_translator.model, tiny_translator.params, batch)
  with raises_one_line(r"batch\['target'\]: expected integer ids \[b, S\] in 0\.\.\d+, got values in"):
    translation.token_losses(tiny_translator.model, tiny_translator.params,
                             {**batch, 'target': batch['target'] + 1000})


def test_decoders_check_special_ids_and_batch_rows():
  table = jnp.log(jnp.full((6, 6), 1 / 6))
  step = lambda static, carry, tokens: (carry, table[tokens])
  settings = dict(batch_size=2, bos_id=2, eos_id=3, max_length=4)
  static, carry = jnp.zeros((2, 1)), jnp.zeros((2, 1))
  assert seq_decode.greedy(step, static, carry, **settings).shape == (2, 4)
  with raises_one_line(r'step_fn log-probabilities: expected \[2, V\] with bos_id=2 and eos_id=9 in 0\.\.V-1, got shape \(2, 6\)'):
    seq_decode.greedy(step, static, carry, **{**settings, 'eos_id': 9})
  with raises_one_line(r'expected \[4, V\] with bos_id=7 and eos_id=3 in 0\.\.V-1'):
    seq_decode.beam_search(step, static, carry, beam_size=2, **{**settings, 'bos_id': 7})
  with raises_one_line(r'carry: expected every leaf with batch_size=2 rows, got shape \(3, 1\)'):
    seq_decode.greedy(step, static, jnp.zeros((3, 1)), **settings)
  with raises_one_line('bos_id: expected an int >= 0, got 2.0'):
    seq_decode.greedy(step, static, carry, **{**settings, 'bos_id': 2.0})
  with raises_one_line('beam_size: expected an int >= 1, got 0'):
    seq_decode.beam_search(step, static, carry, beam_size=0, **settings)


def test_tokenizers_check_text_and_ids():
  tokenizer = subwords.train_characters(['abc'])
  with raises_one_line('text: expected one str, got list'):
    tokenizer.encode(['abc'])
  with raises_one_line('texts: expected a list of str, got str'):
    tokenizer.encode_all('abc')
  with raises_one_line(r'ids: expected one sequence \[T\] \(or \[1, T\]\), got shape \(2, 2\)'):
    tokenizer.decode(np.array([[4, 5], [5, 6]], np.int32))
  with raises_one_line(r'ids: expected integer ids in 0\.\.6, got values in \[4, 99\]'):
    tokenizer.decode([4, 99])
  with raises_one_line('ids: expected integer ids in 0..6, got float64'):
    tokenizer.decode(np.array([4.0]))
  with raises_one_line('sentences: expected a list of str, got str'):
    subwords.train_characters('abc')
  with raises_one_line('sentences: expected a list of str, got str'):
    subwords.train_tokenizer('subwords', 'abc', 60)


def test_pairs_functions_take_lists_of_str_pairs():
  pairs = [('one', 'uno'), ('two', 'dos')]
  assert sentence_pairs.group_by_source(pairs) == [('one', ['uno']), ('two', ['dos'])]
  with raises_one_line("pairs: expected a list of \\(source, target\\) str pairs, got an item 'one'"):
    sentence_pairs.group_by_source(('one', 'uno'))
  with raises_one_line("pairs: expected a list of .*, got an item \"\\('one', 1\\)\""):
    sentence_pairs.split_pairs([('one', 1)], 0.1, 0.1, 0)
  tokenizer = subwords.train_characters(['onetwo unodos'])
  with raises_one_line('pairs: expected a list of .*, got str'):
    sentence_pairs.TokenizedPairs.of('one\tuno', tokenizer, tokenizer)


def test_scores_take_lists_of_str(tmp_path):
  with raises_one_line('hypotheses: expected a list of str, got str'):
    translation_metrics.scores('the cat', [['the cat']])
  with raises_one_line('references: expected a list of lists of str'):
    translation_metrics.scores(['the cat'], ['the cat'])
  weights = np.full((1, 2), 0.5, np.float32)
  with raises_one_line('source_pieces: expected a list of str, got str'):
    attention_pictures.save_attention(str(tmp_path / 'a.png'), 'ab', ['x'], weights)
  with raises_one_line(r'weights: expected floats in \[0.0, 1.0\], got values in \[1.5, 1.5\]'):
    attention_pictures.save_attention(str(tmp_path / 'a.png'), ['a', 'b'], ['x'], weights * 3)
  with raises_one_line(r'weights: expected floats in \[0.0, 1.0\], got int32'):
    attention_pictures.save_attention(str(tmp_path / 'a.png'), ['a', 'b'], ['x'],
                                      np.ones((1, 2), np.int32))
