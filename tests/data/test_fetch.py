"""`mlfun-data fetch` offline: a local HTTP server serves small copies of each source's files.

Each test builds tiny fixture files of a source's format (IDX gz files, a CIFAR-10 binary tarball,
an FSDD tar.gz of wavs, an ORL zip of PGMs, VGLC level files, a Tatoeba zip), points the source's
base URL at the server, fetches, and reads the prepared folder back with the project's loaders.
Checksum mismatches, HTTP errors and unreachable servers give one line and leave nothing behind.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import io
import itertools
import logging
import os
import pathlib
import socket
import tarfile
import threading
import urllib.parse
import wave
import zipfile

import numpy as np
from PIL import Image
import pytest

from mlfun_jax.char_rnn import text as char_text
from mlfun_jax.core import cli
from mlfun_jax.core import progress
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import fetch as fetch_lib
from mlfun_jax.data import load_image_dataset
from mlfun_jax.data import sources
from mlfun_jax.faces import data as faces_data
from mlfun_jax.speech import data as speech_data
from mlfun_jax.translation import data as translation_data
from tests.conftest import REPO_ROOT, one_line, run_module

CIFAR_CLASSES = ('airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship',
                 'truck')


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args):  # pylint: disable=arguments-differ
    pass


@pytest.fixture(scope='module')
def server(tmp_path_factory):
  """(root folder, base URL) of an HTTP server on 127.0.0.1 serving the root's files."""
  root = tmp_path_factory.mktemp('www')
  handler = functools.partial(_QuietHandler, directory=str(root))
  httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  yield root, f'http://127.0.0.1:{httpd.server_address[1]}'
  httpd.shutdown()
  httpd.server_close()


_counter = itertools.count()


def serve(server, files: dict[str, bytes]) -> str:
  """Puts files (URL path under the base -> bytes) on the server; returns their base URL."""
  root, url = server
  folder = f'site{next(_counter)}'
  for path, data in files.items():
    target = root / folder / urllib.parse.unquote(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
  return f'{url}/{folder}'


def with_checksums(monkeypatch, name: str, files: dict[str, bytes]) -> sources.Source:
  """Replaces the source's published checksums by those of the fixture files."""
  source = sources.SOURCES[name]
  downloads = tuple(
      dataclasses.replace(d, sha256=hashlib.sha256(files[d.path]).hexdigest() if d.sha256 else None,
                          md5=hashlib.md5(files[d.path]).hexdigest() if d.md5 else None)
      for d in source.downloads)
  replaced = dataclasses.replace(source, downloads=downloads)
  monkeypatch.setitem(sources.SOURCES, name, replaced)
  return replaced


def only_entries(folder: pathlib.Path) -> list[str]:
  return sorted(os.listdir(folder)) if folder.exists() else []


# ------------------------------------------------------------------------------------- fixtures


def _idx_gz(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  native = array.dtype.newbyteorder('=')
  code = {np.dtype('uint8'): 0x08}[native]
  header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, '>u4').tobytes()
  buffer.write(gzip.compress(header + array.tobytes(), mtime=0))
  return buffer.getvalue()


def mnist_files() -> dict[str, bytes]:
  rng = np.random.default_rng(0)
  train_x = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
  test_x = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
  return {'train-images-idx3-ubyte.gz': _idx_gz(train_x),
          'train-labels-idx1-ubyte.gz': _idx_gz(np.arange(12, dtype=np.uint8) % 10),
          't10k-images-idx3-ubyte.gz': _idx_gz(test_x),
          't10k-labels-idx1-ubyte.gz': _idx_gz(np.arange(5, dtype=np.uint8))}


def _tar_gz(members: dict[str, bytes]) -> bytes:
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
    for name, data in members.items():
      info = tarfile.TarInfo(name)
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
  buffer = io.BytesIO()
  with zipfile.ZipFile(buffer, 'w') as zf:
    for name, data in members.items():
      zf.writestr(name, data)
  return buffer.getvalue()


def cifar_batches(per_batch: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
  """Five batches of (images uint8 [n, 32, 32, 3], labels): batch b holds labels b, b+1, ..."""
  rng = np.random.default_rng(1)
  return [(rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8),
           (np.arange(per_batch) + b) % 10) for b in range(5)]


def cifar_files() -> dict[str, bytes]:
  members = {'cifar-10-batches-bin/batches.meta.txt': ('\n'.join(CIFAR_CLASSES) + '\n\n').encode()}
  for b, (images, labels) in enumerate(cifar_batches(), 1):
    records = np.concatenate([labels.astype(np.uint8)[:, None],
                              images.transpose(0, 3, 1, 2).reshape(len(labels), -1)], axis=1)
    members[f'cifar-10-batches-bin/data_batch_{b}.bin'] = records.tobytes()
  members['cifar-10-batches-bin/test_batch.bin'] = b'\0' * fetch_lib.CIFAR_RECORD
  return {'cifar-10-binary.tar.gz': _tar_gz(members)}


def _wav(samples: np.ndarray, rate: int = 8000) -> bytes:
  buffer = io.BytesIO()
  with wave.open(buffer, 'wb') as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(rate)
    w.writeframes(samples.astype('<i2').tobytes())
  return buffer.getvalue()


FSDD_METADATA = b'''"""Speakers."""

metadata = {
    'theo': {'gender': 'male', 'accent': 'USA/neutral', 'language': 'english'},
    'lucas': {'gender': 'male', 'accent': 'DEU/German', 'language': 'english'},
    'yweweler': {'gender': 'male', 'accent': 'DEU/German', 'language': 'english'},
}
'''


def fsdd_files() -> dict[str, bytes]:
  rng = np.random.default_rng(2)
  top = 'free-spoken-digit-dataset-1.0.10'
  members = {f'{top}/README.md': b'# FSDD\nCC BY-SA 4.0\n', f'{top}/metadata.py': FSDD_METADATA}
  for speaker in ('theo', 'lucas', 'yweweler'):
    for digit in range(10):
      for take in range(2):
        members[f'{top}/recordings/{digit}_{speaker}_{take}.wav'] = _wav(
            rng.integers(-3000, 3000, 800))
  # Present in every real FSDD release: the markers of `sources` name them.
  members[f'{top}/recordings/9_george_49.wav'] = _wav(rng.integers(-3000, 3000, 800))
  return {'v1.0.10.tar.gz': _tar_gz(members)}


def _pgm(pixels: np.ndarray) -> bytes:
  h, w = pixels.shape
  return f'P5\n{w} {h}\n255\n'.encode() + pixels.astype(np.uint8).tobytes()


def faces_files(people: int = 32) -> dict[str, bytes]:
  members = {'README': b'The ORL face database\n'}
  for person in range(1, people + 1):
    for image in (1, 2, 10):
      members[f's{person}/{image}.pgm'] = _pgm(np.full((14, 12), 7 * person + image))
  return {'att_faces.zip': _zip(members)}


def vglc_files() -> dict[str, bytes]:
  level = lambda n: ('-' * (5 + n) + '\n' + 'X' * (5 + n) + '\n').encode()
  files = {}
  for i, d in enumerate(sources.SOURCES['vglc_mario'].downloads):
    files[d.path] = b'{"tiles": {}}\n' if d.path.endswith('.json') else level(i)
  return files


def translation_files() -> dict[str, bytes]:
  pairs = '\n'.join(f'Sentence {i}.\tFrase {i}.' for i in range(40)) + '\n'
  return {'spa-eng.zip': _zip({'spa-eng/_about.txt': b'tatoeba.org\n',
                               'spa-eng/spa.txt': pairs.encode()})}


FIXTURES = {'mnist': mnist_files, 'cifar10': cifar_files, 'fsdd': fsdd_files,
            'faces_orl': faces_files, 'vglc_mario': vglc_files,
            'translation_eng_spa': translation_files}


def fetched(server, monkeypatch, tmp_path, name: str) -> pathlib.Path:
  files = FIXTURES[name]()
  with_checksums(monkeypatch, name, files)
  folder = fetch_lib.fetch(name, tmp_path / 'data', base_url=serve(server, files))
  assert folder == str(tmp_path / 'data' / name)
  assert sources.is_present(name, tmp_path / 'data')
  assert only_entries(tmp_path / 'data') == [name]  # No temporary folder left.
  return pathlib.Path(folder)


# ---------------------------------------------------------------------- fetch and read back


def test_every_dataset_a_config_reads_has_a_source_and_a_preparer():
  assert set(sources.SOURCES) == set(fetch_lib.PREPARE) == set(FIXTURES)
  for source in sources.SOURCES.values():
    assert source.base_url.startswith('https://') and source.licence and source.markers


def test_mnist(server, monkeypatch, tmp_path):
  folder = fetched(server, monkeypatch, tmp_path, 'mnist')
  assert sorted(os.listdir(folder)) == sorted(mnist_files())
  for data_dir in (tmp_path / 'data', folder):
    ds = load_image_dataset('mnist', data_dir)
    assert (len(ds.train), len(ds.test)) == (12, 5) and ds.image_shape == (28, 28, 1)
    np.testing.assert_array_equal(ds.train.labels, np.arange(12) % 10)


def test_cifar10_pngs_hold_the_exact_pixels(server, monkeypatch, tmp_path):
  folder = fetched(server, monkeypatch, tmp_path, 'cifar10')
  with zipfile.ZipFile(folder / 'train.zip') as zf:
    names = zf.namelist()
    assert len(names) == 30 and 'train/airplane/0000.png' in names
    assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    first = np.asarray(Image.open(io.BytesIO(zf.read('train/airplane/0000.png'))))
  images, labels = cifar_batches()[0]
  np.testing.assert_array_equal(first, images[labels == 0][0])
  ds = load_image_dataset('cifar10', tmp_path / 'data', validation_fraction=0.0,
                          cache_dir=tmp_path / 'cache')
  assert ds.class_names == CIFAR_CLASSES and ds.image_shape == (32, 32, 3)
  all_images = np.concatenate([b[0] for b in cifar_batches()])
  all_labels = np.concatenate([b[1] for b in cifar_batches()])
  np.testing.assert_array_equal(np.bincount(ds.train.labels), np.bincount(all_labels))
  for label in range(10):  # Each class in file order: NNNN counts within the class.
    np.testing.assert_array_equal(ds.train.images[ds.train.labels == label],
                                  all_images[all_labels == label])


def test_fsdd_keeps_the_documented_speakers(server, monkeypatch, tmp_path, caplog):
  with caplog.at_level(logging.WARNING, logger='mlfun_jax'):
    folder = fetched(server, monkeypatch, tmp_path, 'fsdd')
  # Not the real recordings: the fetch says they differ from the documented copy.
  assert any('differs from the copy the documented results' in r.message for r in caplog.records)
  names = os.listdir(folder / 'recordings')
  assert len(names) == 41 and not any('yweweler' in n for n in names)
  assert (folder / 'README.md').is_file()
  assert set((folder / 'speakers.json').read_text().split('"')) >= {'theo', 'lucas'}
  assert 'yweweler' not in (folder / 'speakers.json').read_text()
  recordings = speech_data.read_fsdd(str(tmp_path / 'data'), 8000)
  assert len(recordings) == 41 and {r.speaker for r in recordings} == {'george', 'lucas', 'theo'}
  assert recordings[0].wave.dtype == np.float32 and len(recordings[0].wave) == 800


def test_faces_keep_s1_to_s30(server, monkeypatch, tmp_path):
  folder = fetched(server, monkeypatch, tmp_path, 'faces_orl')
  assert sorted(os.listdir(folder), key=faces_data.natural_key) == (
      ['README'] + [f's{i}' for i in range(1, 31)])
  faces = faces_data.load_faces(str(folder), sizes=(18, 4, 8), seed=0)
  assert len(faces.people) == 30 and faces.image_shape == (14, 12, 1)
  assert sum(len(s.labels) for s in faces.splits.values()) == 90


def test_vglc_levels_keep_their_names(server, monkeypatch, tmp_path):
  folder = fetched(server, monkeypatch, tmp_path, 'vglc_mario')
  assert len(os.listdir(folder / 'smb')) == 16 and len(os.listdir(folder / 'sml')) == 9
  assert (folder / 'sml' / 'super_mario_land_11.txt').is_file()  # Was ..._11.png.txt.
  corpus = char_text.read_corpus(str(folder / 'smb'), 'levels')
  assert corpus.names[0] == 'mario-1-1' and len(corpus.names) == 15


def test_translation_pairs(server, monkeypatch, tmp_path):
  folder = fetched(server, monkeypatch, tmp_path, 'translation_eng_spa')
  assert sorted(os.listdir(folder)) == ['_about.txt', 'spa.txt']
  pairs = translation_data.read_pairs(folder / 'spa.txt')
  assert len(pairs) == 40 and tuple(pairs[3]) == ('Sentence 3.', 'Frase 3.')


def test_present_dataset_is_not_fetched_again(server, monkeypatch, tmp_path):
  fetched(server, monkeypatch, tmp_path, 'translation_eng_spa')
  # No server at this URL: a present dataset needs no network.
  assert fetch_lib.fetch('translation_eng_spa', tmp_path / 'data',
                         base_url='http://127.0.0.1:9/none') == str(
                             tmp_path / 'data' / 'translation_eng_spa')


# ------------------------------------------------------------------------- failures: one line


def test_checksum_mismatch_is_one_line_and_leaves_nothing(server, monkeypatch, tmp_path):
  files = mnist_files()
  with_checksums(monkeypatch, 'mnist', files)
  files['t10k-labels-idx1-ubyte.gz'] = _idx_gz(np.zeros(5, np.uint8))  # Not what was published.
  base = serve(server, files)
  with pytest.raises(fetch_lib.FetchError) as error:
    fetch_lib.fetch('mnist', tmp_path / 'new' / 'data', base_url=base)
  message = one_line(error)
  assert message.startswith(f'checksum mismatch for {base}/t10k-labels-idx1-ubyte.gz: sha256 ')
  assert not (tmp_path / 'new').exists()  # Not even the data folder it made.


def test_http_404_is_one_line_and_leaves_nothing(server, monkeypatch, tmp_path):
  files = translation_files()
  with_checksums(monkeypatch, 'translation_eng_spa', files)
  base = serve(server, {})
  (tmp_path / 'data').mkdir()
  with pytest.raises(fetch_lib.FetchError) as error:
    fetch_lib.fetch('translation_eng_spa', tmp_path / 'data', base_url=base)
  assert one_line(error) == f'cannot download {base}/spa-eng.zip: HTTP 404 File not found'
  assert only_entries(tmp_path / 'data') == []


def test_unreachable_server_is_one_line(tmp_path):
  with socket.socket() as s:  # A port nobody listens on.
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  with pytest.raises(fetch_lib.FetchError) as error:
    fetch_lib.fetch('vglc_mario', tmp_path / 'data', base_url=f'http://127.0.0.1:{port}/x')
  message = one_line(error)
  assert message.startswith(f'cannot download http://127.0.0.1:{port}/x/Super%20Mario%20Bros/')
  assert 'is the network reachable?' in message
  assert not (tmp_path / 'data').exists()


def test_archive_of_the_wrong_kind_leaves_nothing(server, monkeypatch, tmp_path):
  files = {'att_faces.zip': _zip({'readme.txt': b'not faces'})}
  with_checksums(monkeypatch, 'faces_orl', files)
  with pytest.raises(fetch_lib.FetchError, match='not the AT&T faces archive'):
    fetch_lib.fetch('faces_orl', tmp_path / 'data', base_url=serve(server, files))
  assert only_entries(tmp_path) == []


def test_incomplete_folder_is_not_overwritten(tmp_path):
  (tmp_path / 'mnist').mkdir()
  (tmp_path / 'mnist' / 'mine.txt').write_text('keep me')
  with pytest.raises(UserError, match=r'exists but lacks train-images-idx3-ubyte.gz.*move it away'):
    fetch_lib.fetch('mnist', tmp_path)
  assert (tmp_path / 'mnist' / 'mine.txt').read_text() == 'keep me'


def test_data_folder_that_is_a_file_is_one_line(tmp_path):
  (tmp_path / 'file').write_text('x')
  with pytest.raises(UserError) as error:
    fetch_lib.fetch('mnist', tmp_path / 'file')
  assert one_line(error).startswith(f'cannot write in the data folder {tmp_path / "file"}: ')


# ------------------------------------------------------------------ the command and the errors


def test_command_fetch_and_list(server, monkeypatch, tmp_path, capsys):
  files = translation_files()
  with_checksums(monkeypatch, 'translation_eng_spa', files)
  monkeypatch.setenv('MLFUN_DATA_URL_TRANSLATION_ENG_SPA', serve(server, files))
  monkeypatch.setenv('MLFUN_DATA_DIR', str(tmp_path / 'home_data'))
  assert fetch_lib.main(['fetch', 'translation_eng_spa']) == 0
  assert capsys.readouterr().out.strip() == str(tmp_path / 'home_data' / 'translation_eng_spa')
  assert fetch_lib.main(['list']) == 0
  out = capsys.readouterr().out
  assert out.startswith(f'data folder: {tmp_path / "home_data"}\n')
  assert 'translation_eng_spa  [present]' in out and 'mnist  [absent]' in out
  for source in sources.SOURCES.values():
    assert source.licence in out and source.base() in out


def test_command_errors_are_one_line_exit_2(tmp_path, capsys):
  assert fetch_lib.main(['fetch', 'mnsit', f'--data_dir={tmp_path}']) == 2
  err = capsys.readouterr().err.strip()
  assert err.startswith("error: unknown dataset 'mnsit': choose one of mnist, cifar10,")
  assert '\n' not in err


def test_python_m_lists_with_data_dir(tmp_path):
  result = run_module('mlfun_jax.data.fetch', 'list', f'--data_dir={tmp_path}')
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith(f'data folder: {tmp_path}\n')
  assert 'fetch one with: mlfun-data fetch NAME [--data_dir=DIR]' in result.stdout


def test_default_data_folder(monkeypatch):
  monkeypatch.delenv('MLFUN_DATA_DIR', raising=False)
  assert sources.default_data_dir() == os.path.join(os.path.expanduser('~'), 'mlfun_jax_data')
  monkeypatch.setenv('MLFUN_DATA_DIR', '~/elsewhere')
  assert sources.default_data_dir() == os.path.join(os.path.expanduser('~'), 'elsewhere')
  assert sources.dataset_dir('fsdd') == os.path.join(os.path.expanduser('~'), 'elsewhere', 'fsdd')


def test_every_config_reads_its_data_from_the_home_data_folder(monkeypatch, tmp_path):
  monkeypatch.delenv('MLFUN_DATA_DIR', raising=False)
  monkeypatch.setenv('HOME', str(tmp_path))
  home_data = str(tmp_path / 'mlfun_jax_data')
  for path in sorted((REPO_ROOT / 'experiments' / 'configs').glob('*.py')):
    if path.name == '__init__.py':
      continue
    config = cli.load_config_file(str(path))
    for field in ('data_dir', 'data_path', 'text_path'):
      value = config.get(field)
      assert value is None or value.startswith(home_data), (path.name, field, value)


def test_missing_dataset_names_the_fetch_command(monkeypatch, tmp_path):
  monkeypatch.setenv('MLFUN_DATA_DIR', str(tmp_path))
  with pytest.raises(sources.DatasetMissing) as error:
    load_image_dataset('cifar10')
  assert one_line(error) == (f"dataset 'cifar10' not found in {tmp_path / 'cifar10'}; "
                             'fetch it with: mlfun-data fetch cifar10')
  with pytest.raises(sources.DatasetMissing) as error:
    load_image_dataset('mnist', tmp_path / 'other')
  assert one_line(error).endswith(f'fetch it with: mlfun-data fetch mnist '
                                  f'--data_dir={tmp_path / "other"}')
  with pytest.raises(sources.DatasetMissing, match='mlfun-data fetch faces_orl$'):
    faces_data.list_face_folders(str(tmp_path / 'faces_orl'))
  with pytest.raises(sources.DatasetMissing, match='mlfun-data fetch translation_eng_spa$'):
    translation_data.read_pairs(tmp_path / 'translation_eng_spa' / 'spa.txt')
  with pytest.raises(sources.DatasetMissing, match='mlfun-data fetch vglc_mario$'):
    char_text.read_corpus(str(tmp_path / 'vglc_mario' / 'smb'), 'levels')
  with pytest.raises(sources.DatasetMissing, match='mlfun-data fetch fsdd$'):
    speech_data.fsdd_paths(str(tmp_path))


# ----------------------------------------------------------------------------------- progress


def test_progress_is_silent_under_two_seconds_then_counts_and_rates():
  now, lines = [0.0], []
  counter = progress.Counter('decoding x', total=1000, unit='images', log=lines.append,
                             clock=lambda: now[0])
  for _ in range(10):
    now[0] += 0.1
    counter.add(10)
  counter.done()
  assert lines == []  # 1 s in all: nothing.
  counter = progress.Counter('decoding x', total=1000, unit='images', log=lines.append,
                             clock=lambda: now[0])
  for _ in range(100):
    now[0] += 0.1
    counter.add(10)
  counter.done()
  # First line at 2 s, then every 5 s at most, then the closing line.
  assert lines[0] == 'decoding x: 200/1,000 (20%) | 100 images/s | ETA 8s'
  assert len(lines) == 3 and lines[1].startswith('decoding x: 7')  # At ~7 s.
  assert lines[-1] == 'decoding x: 1,000 images in 10s (100 images/s)'


def test_progress_logs_at_info_only(caplog):
  with caplog.at_level(logging.WARNING, logger='mlfun_jax'):
    progress.Counter('quiet', quiet_s=0.0).done()
  assert not caplog.records
  with caplog.at_level(logging.INFO, logger='mlfun_jax'):
    progress.Counter('loud', total=2e6, unit='bytes', quiet_s=0.0, every_s=0.0).add(1e6)
  assert caplog.records[0].message.startswith('loud: 1.0 MB/2.0 MB (50%)')
