"""Translation data: length buckets, tokenisers, the sentence pairs file, its splits and batches."""

import itertools
import json

import numpy as np
import pytest

from mlfun_jax.translation import subwords
from mlfun_jax.data import buckets
from mlfun_jax.translation import data as sentence_pairs
from mlfun_jax.core.errors import UserError
from tests.conftest import find_shared_data_dir

SPA_TXT = find_shared_data_dir() / 'translation_eng_spa' / 'spa.txt'
needs_spa = pytest.mark.skipif(not SPA_TXT.is_file(),
                               reason=f'{SPA_TXT} is absent (set MLFUN_DATA_DIR)')

ENGLISH = ['Go.', 'Hi.', 'Run!', 'How are you?', 'I like green apples.', 'Where is the station?',
           'She reads a book every week.', 'We will be late tomorrow.', 'It is cold.',
           'Tom plays the guitar.']
SPANISH = ['Ve.', 'Hola.', '¡Corre!', '¿Qué tal?', 'Me gustan las manzanas verdes.',
           '¿Dónde está la estación?', 'Ella lee un libro cada semana.',
           'Mañana llegaremos tarde.', 'Hace frío.', 'Tom toca la guitarra.']


def _sentences(count=400, seed=0):
  """Synthetic Spanish-like sentences (seeded) built from the word lists above."""
  words = ' '.join(SPANISH).replace('.', '').replace('¡', '').replace('!', '').split()
  rng = np.random.default_rng(seed)
  return [' '.join(rng.choice(words, size=rng.integers(2, 9))) + '.' for _ in range(count)]


def _write_pairs(path, count=60):
  """A TSV of `count` pairs; source sentence i has 1 + i % 3 translations."""
  lines = []
  for i in range(count // 2):
    for k in range(1 + i % 3):
      lines.append(f'{ENGLISH[i % 10]} {i}\t{SPANISH[i % 10]} {i}{"!" * k}')
  path.write_text('\n'.join(lines[:count]) + '\n', encoding='utf-8')
  return path


@pytest.fixture(scope='module')
def subword_pair():
  """(English, Spanish) unigram tokenisers of 60 pieces trained on the word lists."""
  return (subwords.train_subwords(ENGLISH * 3 + _sentences(50, 1), 60),
          subwords.train_subwords(SPANISH * 3 + _sentences(50, 2), 60))


@pytest.fixture(scope='module')
def small_split(subword_pair):
  pairs = list(zip(ENGLISH, SPANISH)) * 3
  return sentence_pairs.TokenizedPairs.of(pairs, *subword_pair)


# ---- buckets ----

def test_bucket_sizes_round_up_to_buckets_then_multiples():
  sizes = buckets.bucket_sizes(np.array([1, 8, 9, 16, 17, 40]), (16, 8), multiple=32)
  np.testing.assert_array_equal(sizes, [8, 8, 16, 16, 32, 64])


def test_index_batches_resume_and_cover_every_example():
  sizes = buckets.bucket_sizes(np.arange(1, 30), (8, 16, 32))
  straight = list(itertools.islice(buckets.train_index_batches(sizes, 4, seed=3), 20))
  resumed = next(buckets.train_index_batches(sizes, 4, seed=3, start_step=17))
  assert resumed[0] == straight[17][0]
  np.testing.assert_array_equal(resumed[1], straight[17][1])
  for size, indices in straight:
    assert (sizes[indices] == size).all()
  seen = []
  for size, indices, mask in buckets.eval_index_batches(sizes, 4):
    assert (sizes[indices] == size).all()
    seen += indices[mask == 1].tolist()
  assert sorted(seen) == list(range(29))


def test_padding_share():
  assert buckets.padding_share([3, 5], [4, 8]) == pytest.approx(1 - 8 / 12)
  assert buckets.padding_share([], []) == 0.0


# ---- tokenisers ----

def test_subword_round_trip_with_accents(subword_pair):
  spanish = subword_pair[1]
  assert spanish.vocab_size == 60
  for text in ['¿Qué tal?', 'Mañana llegaremos tarde.', '¡Corre!']:
    ids = spanish.encode(text)
    assert ids.dtype == np.int32 and ids.ndim == 1 and (ids >= 4).all()
    assert spanish.decode(ids) == text


def test_decode_drops_specials_and_stops_at_eos(subword_pair):
  spanish = subword_pair[1]
  ids = spanish.encode('¿Qué tal?').tolist()
  framed = [subwords.BOS] + ids + [subwords.EOS] + spanish.encode('Hola.').tolist() + [0, 0]
  assert spanish.decode(framed) == '¿Qué tal?'
  assert spanish.decode(np.array([framed])) == '¿Qué tal?'
  characters = subwords.train_characters(SPANISH)
  framed = [2] + characters.encode('¿Qué tal?').tolist() + [3, 5, 6]
  assert characters.decode(framed) == '¿Qué tal?'


def test_character_tokenizer():
  characters = subwords.train_characters(['ba', 'ñá'])
  assert characters.characters == 'abáñ' and characters.vocab_size == 8
  np.testing.assert_array_equal(characters.encode('abz'), [4, 5, subwords.UNKNOWN])
  assert characters.encode('').dtype == np.int32
  assert characters.decode(characters.encode('ñába')) == 'ñába'
  # NFC: a decomposed 'á' (a + combining acute) is the same id as the composed one.
  np.testing.assert_array_equal(characters.encode('a\u0301'), characters.encode('á'))


def test_json_round_trip_gives_identical_ids(subword_pair):
  texts = SPANISH + ['¿Qué tal, señor Núñez?']
  for tokenizer in (subword_pair[1], subwords.train_characters(SPANISH)):
    meta = json.loads(json.dumps(tokenizer.to_json()))
    assert meta['kind'] == tokenizer.kind
    again = subwords.Tokenizer.from_json(meta)
    assert again.vocab_size == tokenizer.vocab_size
    for text in texts:
      np.testing.assert_array_equal(again.encode(text), tokenizer.encode(text))
  with pytest.raises(UserError, match='tokeniser kind'):
    subwords.Tokenizer.from_json({'kind': 'words'})


def test_subword_training_is_deterministic():
  sentences = _sentences(300)
  for model_type in ('unigram', 'bpe'):
    first = subwords.train_subwords(sentences, 60, model_type, seed=0)
    second = subwords.train_subwords(sentences, 60, model_type, seed=0)
    assert first.model == second.model
    assert first.to_json() == second.to_json()


def test_vocab_size_errors_name_the_field():
  with pytest.raises(UserError, match='vocab_size=5000.*too high'):
    subwords.train_subwords(_sentences(50), 5000)
  with pytest.raises(UserError, match='vocab_size=10'):
    subwords.train_subwords(_sentences(50), 10)
  with pytest.raises(UserError, match='tokenizer.source_vocab_size=5000'):
    subwords.train_tokenizer('subwords', _sentences(50), 5000,
                             vocab_field='tokenizer.source_vocab_size')
  with pytest.raises(UserError, match='tokenizer.kind='):
    subwords.train_tokenizer('words', ['a'])
  with pytest.raises(UserError, match='tokenizer.model_type='):
    subwords.train_subwords(_sentences(50), 100, 'wordpiece')


# ---- the pairs file ----

def test_read_pairs_both_directions(tmp_path):
  path = tmp_path / 'pairs.txt'
  path.write_text('\ufeffGo.\tVe.\tCC-BY 2.0 (France)\n\n  Hi. \t Hola. \r\n   \n¿?\t¿Qué?\n',
                  encoding='utf-8')
  assert sentence_pairs.read_pairs(path, 'forward') == [('Go.', 'Ve.'), ('Hi.', 'Hola.'),
                                                        ('¿?', '¿Qué?')]
  assert sentence_pairs.read_pairs(str(path), 'reverse') == [('Ve.', 'Go.'), ('Hola.', 'Hi.'),
                                                             ('¿Qué?', '¿?')]


@pytest.mark.parametrize('content, message', [
    (b'Go.\tVe.\nHi. Hola.\n', 'line 2: no tab'),
    (b'Go.\tVe.\n\nHi.\t  \n', 'line 3: the second column is empty'),
    (b'\tVe.\n', 'line 1: the first column is empty'),
    (b'Go.\tVe.\nHi.\tHol\xe1.\n', 'line 2: not UTF-8'),
    (b'\n  \n', 'holds no pairs'),
])
def test_bad_files_name_file_and_line(tmp_path, content, message):
  path = tmp_path / 'bad.txt'
  path.write_bytes(content)
  with pytest.raises(UserError, match=message) as error:
    sentence_pairs.read_pairs(path, 'forward')
  assert str(path) in str(error.value) and '\n' not in str(error.value)


def test_missing_file_and_unknown_direction(tmp_path):
  with pytest.raises(UserError, match='missing.txt'):
    sentence_pairs.read_pairs(tmp_path / 'missing.txt', 'forward')
  with pytest.raises(UserError, match='config field direction'):
    sentence_pairs.read_pairs(_write_pairs(tmp_path / 'p.txt'), 'backward')


# ---- splits ----

def test_split_groups_sources_and_is_seeded(tmp_path):
  pairs = sentence_pairs.read_pairs(_write_pairs(tmp_path / 'p.txt', 60), 'forward')
  splits = sentence_pairs.split_pairs(pairs, 0.2, 0.1, seed=0)
  assert len(splits.train) + len(splits.validation) + len(splits.test) == len(pairs)
  sources = [{s for s, _ in split} for split in (splits.train, splits.validation, splits.test)]
  assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
  num_sources = len({s for s, _ in pairs})
  assert (len(sources[1]), len(sources[2])) == (round(0.2 * num_sources), round(0.1 * num_sources))
  for split in (splits.train, splits.validation, splits.test):  # All translations go together.
    assert sorted(split) == sorted(p for p in pairs if p[0] in {s for s, _ in split})
  assert sentence_pairs.split_pairs(pairs, 0.2, 0.1, seed=0) == splits
  assert sentence_pairs.split_pairs(pairs, 0.2, 0.1, seed=1).test != splits.test
  with pytest.raises(UserError, match='config field test_fraction'):
    sentence_pairs.split_pairs(pairs, 0.1, 1.5, seed=0)
  with pytest.raises(UserError, match='none of'):
    sentence_pairs.split_pairs(pairs, 0.5, 0.5 - 1e-9, seed=0)


def test_group_by_source():
  groups = sentence_pairs.group_by_source([('a', 'x'), ('b', 'y'), ('a', 'z')])
  assert groups == [('a', ['x', 'z']), ('b', ['y'])]


# ---- tokenised pairs and batches ----

def test_tokenized_pairs_and_length_filter(small_split, subword_pair):
  first = small_split.targets[0]
  assert first[0] == subwords.BOS and first[-1] == subwords.EOS
  assert subword_pair[1].decode(first) == SPANISH[0]
  assert subword_pair[0].decode(small_split.sources[3]) == ENGLISH[3]
  np.testing.assert_array_equal(small_split.lengths, np.maximum(small_split.source_lengths,
                                                                small_split.target_lengths))
  limit = int(np.median(small_split.target_lengths))
  kept, dropped = small_split.filter_length(100, limit)
  assert dropped == int((small_split.target_lengths > limit).sum()) > 0
  assert len(kept) + dropped == len(small_split) and kept.target_lengths.max() <= limit
  assert [t for t in kept.texts] == [t for t, n in zip(small_split.texts,
                                                       small_split.target_lengths) if n <= limit]


def test_train_batches_shapes_and_resume(small_split):
  kwargs = dict(global_batch_size=8, seed=5, local_device_count=2)
  straight = list(itertools.islice(sentence_pairs.train_batches(small_split, (16, 32), **kwargs),
                                   12))
  resumed = next(sentence_pairs.train_batches(small_split, (16, 32), start_step=9, **kwargs))
  assert resumed.keys() == straight[9].keys() == {'source', 'source_length', 'target'}
  for name in resumed:
    np.testing.assert_array_equal(resumed[name], straight[9][name])
  for batch in straight:
    size = batch['source'].shape[2]
    assert size in (16, 32) and batch['source'].shape == batch['target'].shape == (2, 4, size)
    assert batch['source_length'].shape == (2, 4)
    assert all(batch[k].dtype == np.int32 for k in batch)
    target = batch['target'].reshape(8, size)
    assert (target[:, 0] == subwords.BOS).all()
    target_lengths = (target != 0).sum(axis=1)
    assert (target[np.arange(8), target_lengths - 1] == subwords.EOS).all()
    source = batch['source'].reshape(8, size)
    np.testing.assert_array_equal((source != 0).sum(axis=1), batch['source_length'].reshape(8))
  assert len({b['source'].shape for b in straight}) > 1  # Both buckets are drawn.
  other = next(sentence_pairs.train_batches(small_split, (16, 32), **{**kwargs, 'seed': 6}))
  assert not all(np.array_equal(other[k], straight[0][k]) for k in other)


def test_processes_take_slices_of_the_global_batch(small_split):
  kwargs = dict(global_batch_size=8, seed=0, local_device_count=2)
  whole = next(sentence_pairs.train_batches(small_split, (16, 32), **kwargs))
  parts = [next(sentence_pairs.train_batches(small_split, (16, 32), process_index=p,
                                             process_count=2, **kwargs)) for p in range(2)]
  for name in whole:
    flat = [part[name].reshape((4,) + part[name].shape[2:]) for part in parts]
    np.testing.assert_array_equal(np.concatenate(flat), whole[name].reshape(
        (8,) + whole[name].shape[2:]))


def test_eval_batches_every_example_once(small_split):
  for process_count in (1, 2):
    seen = []
    for p in range(process_count):
      for batch in sentence_pairs.eval_batches(small_split, (16, 32), global_batch_size=8,
                                               process_index=p, process_count=process_count):
        assert batch['mask'].dtype == np.float32 and batch['mask'].shape == (1, 8 // process_count)
        assert batch['index'].shape == batch['source_length'].shape
        real = batch['mask'].reshape(-1) == 1
        for row in np.flatnonzero(real):
          i = batch['index'].reshape(-1)[row]
          source = small_split.sources[i]
          np.testing.assert_array_equal(batch['source'][0, row, :len(source)], source)
        seen += batch['index'].reshape(-1)[real].tolist()
    assert sorted(seen) == list(range(len(small_split)))


def test_batch_size_must_divide(small_split):
  with pytest.raises(UserError, match='batch_size'):
    sentence_pairs.train_batches(small_split, (8,), global_batch_size=6, seed=0,
                                 local_device_count=4)


# ---- the real file ----

@pytest.fixture(scope='module')
def spa_pairs():
  return sentence_pairs.read_pairs(SPA_TXT, 'forward')


@needs_spa
def test_real_file_splits_share_no_source(spa_pairs):
  assert len(spa_pairs) == 118964
  assert spa_pairs[0] == ('Go.', 'Ve.')
  splits = sentence_pairs.split_pairs(spa_pairs, 0.05, 0.05, seed=0)
  sources = [{s for s, _ in split} for split in (splits.train, splits.validation, splits.test)]
  assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
  assert sum(map(len, sources)) == len({s for s, _ in spa_pairs})
  assert abs(len(sources[2]) / sum(map(len, sources)) - 0.05) < 1e-4
  reverse = sentence_pairs.read_pairs(SPA_TXT, 'reverse')
  assert reverse[0] == ('Ve.', 'Go.') and len(reverse) == len(spa_pairs)


@needs_spa
def test_real_file_bucketing_cuts_padding(spa_pairs):
  train = sentence_pairs.split_pairs(spa_pairs, 0.05, 0.05, seed=0).train
  tokenized = sentence_pairs.TokenizedPairs.of(
      train, subwords.train_characters([s for s, _ in train]),
      subwords.train_characters([t for _, t in train]))
  tokenized, dropped = tokenized.filter_length(128, 128)
  assert 0 < dropped < 0.01 * len(train)
  report = sentence_pairs.padding_report(tokenized, (16, 32, 48, 64, 96, 128),
                                         global_batch_size=64, seed=0)
  assert report['bucketed'] < report['longest_in_batch'] < report['fixed']
  assert report['bucketed'] < 0.5 * report['fixed']
  assert report['shapes_bucketed'] <= 6 < report['shapes_longest_in_batch']
