"""Each config that reads a data path also reads a user's own folder of that kind, with only the
path changed: it loads and splits (no training). Folders are tiny and built here."""

from __future__ import annotations

import pathlib
import wave

import numpy as np
from PIL import Image
import pytest

from mlfun_jax import data
from mlfun_jax.data import idx
from mlfun_jax.char_rnn import task as char_rnn_task
from mlfun_jax.core import cli
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import task as faces_task
from mlfun_jax.speech import data as speech_data
from mlfun_jax.translation import data as translation_data
from mlfun_jax.translation import task as translation_task
from tests.conftest import REPO_ROOT, one_line

CONFIGS = REPO_ROOT / 'experiments' / 'configs'


@pytest.fixture(autouse=True)
def _nothing_from_the_home_folders(tmp_path, monkeypatch):
  """Configs see an empty data folder, and image caches stay in tmp_path."""
  monkeypatch.setenv('MLFUN_DATA_DIR', str(tmp_path / 'empty_data_folder'))
  monkeypatch.setenv('MLFUN_CACHE_DIR', str(tmp_path / 'cache'))


def config_of(name: str, **paths):
  """The config file `name` with only its data path field(s) changed."""
  config = cli.load_config_file(str(CONFIGS / f'{name}.py'))
  for field, value in paths.items():
    setattr(config, field, str(value))
  return config


# --------------------------------------------------------------------------- folders of a kind


def level_folder(root: pathlib.Path) -> pathlib.Path:
  """Three small levels whose names sort differently from the shipped ones."""
  folder = root / 'my_levels'
  folder.mkdir()
  for name, width in (('castle.txt', 9), ('desert.txt', 7), ('beach.txt', 8)):
    rows = ['-' * width] * 3 + ['-' * (width - 2) + '<>', 'X' * width]
    (folder / name).write_text('\n'.join(rows) + '\n', encoding='utf-8')
  return folder


def class_folder(root: pathlib.Path, classes=('cats', 'dogs', 'owls'), per_class: int = 10,
                 size=(40, 30)) -> pathlib.Path:
  """Photos (PNG and JPEG, larger than 32x32) in one folder per class."""
  folder = root / 'my_photos'
  rng = np.random.default_rng(0)
  for c, name in enumerate(classes):
    (folder / name).mkdir(parents=True)
    for i in range(per_class):
      pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
      pixels[..., c % 3] = 255
      Image.fromarray(pixels).save(folder / name / f'{i}.{"png" if i % 2 else "jpg"}')
  return folder


def idx_folder(root: pathlib.Path) -> pathlib.Path:
  folder = root / 'my_digits'
  folder.mkdir()
  rng = np.random.default_rng(1)
  for stem, array in (('train-images-idx3-ubyte', rng.integers(0, 256, (30, 28, 28), np.uint8)),
                      ('train-labels-idx1-ubyte', np.arange(30, dtype=np.uint8) % 10),
                      ('t10k-images-idx3-ubyte', rng.integers(0, 256, (10, 28, 28), np.uint8)),
                      ('t10k-labels-idx1-ubyte', np.arange(10, dtype=np.uint8))):
    idx.write_idx(str(folder / f'{stem}.gz'), array)
  return folder


def wav_folder(root: pathlib.Path) -> pathlib.Path:
  """Two speakers of one's own, digits 0-9, takes 0-5 (0-4: the official split's test takes)."""
  folder = root / 'my_recordings'
  folder.mkdir()
  rng = np.random.default_rng(2)
  for speaker in ('ada', 'bob'):
    for digit in range(10):
      for take in range(6):
        with wave.open(str(folder / f'{digit}_{speaker}_{take}.wav'), 'wb') as w:
          w.setnchannels(1)
          w.setsampwidth(2)
          w.setframerate(16000)  # Not FSDD's 8 kHz: resampled on reading.
          w.writeframes(rng.integers(-2000, 2000, 2400).astype('<i2').tobytes())
  return folder


def face_folder(root: pathlib.Path, people: int = 30) -> pathlib.Path:
  folder = root / 'my_faces'
  for p in range(people):
    (folder / f'person_{p:02d}').mkdir(parents=True)
    for i in range(3):
      Image.fromarray(np.full((60, 50), 5 * p + i, np.uint8)).save(
          folder / f'person_{p:02d}' / f'{i}.png')
  return folder


def pairs_file(root: pathlib.Path) -> pathlib.Path:
  words = ['red', 'green', 'blue', 'cat', 'dog', 'house', 'tree', 'sun', 'moon', 'sea']
  rng = np.random.default_rng(3)
  lines = []
  for i in range(300):
    sentence = ' '.join(rng.choice(words, size=rng.integers(2, 6)))
    lines.append(f'{sentence} {i}.\t{sentence[::-1]} {i}.')
  path = root / 'my_pairs.tsv'
  path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
  return path


# ------------------------------------------------------------------------------------ the configs


def test_mario_config_holds_out_the_first_level_of_any_folder(tmp_path):
  config = config_of('char_rnn_mario', text_path=level_folder(tmp_path))
  corpus, training, heldout, vocab, path = char_rnn_task._prepared(config)  # pylint: disable=protected-access
  assert corpus.names == ('beach', 'castle', 'desert')
  assert heldout.names == ('beach',) and training.names == ('castle', 'desert')
  assert '<' in vocab and 'X' in vocab and path in vocab and path not in 'X<>[]-'


@pytest.mark.parametrize('name', ['cnn_cifar10', 'bird_or_not', 'resnet_cifar10', 'dcgan_cifar10'])
def test_photo_configs_read_a_folder_of_class_folders(tmp_path, name):
  config = config_of(name, data_dir=class_folder(tmp_path))
  ds = data.load_configured_dataset(config)
  assert ds.class_names == ('cats', 'dogs', 'owls') and ds.image_shape == (32, 32, 3)
  assert (len(ds.train), len(ds.test)) == (27, 3)  # validation_fraction 0.1 of each class.
  if 'positive_class' in config:  # bird_or_not: class 2 ('owls') or not.
    assert config.positive_class < len(ds.class_names)


def test_photo_config_reads_a_zip_of_class_folders(tmp_path):
  folder = class_folder(tmp_path)
  import shutil  # pylint: disable=g-import-not-at-top
  zip_path = shutil.make_archive(str(tmp_path / 'photos'), 'zip', folder)
  ds = data.load_configured_dataset(config_of('cnn_cifar10', data_dir=zip_path))
  assert ds.class_names == ('cats', 'dogs', 'owls') and len(ds.train) + len(ds.test) == 30


def test_mnist_config_reads_a_folder_of_idx_files(tmp_path):
  ds = data.load_configured_dataset(config_of('cnn_mnist_adversarial',
                                              data_dir=idx_folder(tmp_path)))
  assert (len(ds.train), len(ds.test)) == (30, 10) and ds.image_shape == (28, 28, 1)


def test_speech_config_reads_a_folder_of_wavs(tmp_path):
  config = config_of('speech_ctc_digits', data_dir=wav_folder(tmp_path))
  train, test = speech_data._split_recordings(config, config.audio.sample_rate)  # pylint: disable=protected-access
  assert (len(train), len(test)) == (20, 100)  # Takes 5 train, takes 0-4 test.
  assert {r.speaker for r in train} == {'ada', 'bob'}
  assert all(len(r.wave) == 1200 for r in train)  # 2,400 samples at 16 kHz -> 8 kHz.


def test_new_voices_config_holds_out_the_first_speaker_of_any_folder(tmp_path):
  config = config_of('speech_ctc_new_voices', data_dir=wav_folder(tmp_path))
  train, test = speech_data._split_recordings(config, config.audio.sample_rate)  # pylint: disable=protected-access
  assert {r.speaker for r in test} == {'ada'} and {r.speaker for r in train} == {'bob'}
  assert len(train) + len(test) == 120


def test_faces_config_reads_a_folder_of_people(tmp_path):
  faces = faces_task.load_dataset(config_of('faces_orl', data_dir=face_folder(tmp_path)))
  assert len(faces.people) == 30 and faces.image_shape == (48, 48, 1)  # The face box.
  assert [len(faces.people_of(s)) for s in ('train', 'validation', 'test')] == [16, 4, 10]


def test_faces_config_on_fewer_people_names_the_field_and_a_split(tmp_path):
  with pytest.raises(UserError, match=r'the folder has 10 \(config field people; e\.g\. '
                                      r'--config\.people=\(6,1,3\)\)'):
    faces_task.load_dataset(config_of('faces_orl', data_dir=face_folder(tmp_path, people=10)))


def test_translation_config_reads_a_pairs_file(tmp_path):
  config = config_of('translate_eng_spa', data_path=pairs_file(tmp_path))
  pairs = translation_data.read_pairs(config.data_path, config.direction)
  splits = translation_data.split_pairs(pairs, config.validation_fraction, config.test_fraction,
                                        config.split_seed)
  assert (len(splits.train), len(splits.validation), len(splits.test)) == (285, 6, 9)
  # 8,000 subwords do not fit 285 sentences: the one line names the field and the largest size.
  with pytest.raises(UserError) as error:
    translation_task.prepare(config)
  assert one_line(error).startswith('config field tokenizer.source_vocab_size=8000 does not fit '
                                    'the 285 training sentences: Vocabulary size too high')
  config.tokenizer.source_vocab_size = config.tokenizer.target_vocab_size = 60
  prepared = translation_task.prepare(config)
  assert len(prepared.train) + prepared.dropped == 285
