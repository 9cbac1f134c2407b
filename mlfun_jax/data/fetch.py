"""`mlfun-data`: download and prepare the datasets the experiment configs read.

  mlfun-data list [--data_dir=DIR]              each dataset: source, licence, layout, present?
  mlfun-data fetch NAME... [--data_dir=DIR]     download and prepare (NAME 'all': every one)
  mlfun-data fetch tfds:NAME [--data_dir=DIR]   a TFDS catalog dataset, prepared by TFDS
  (also: python -m mlfun_jax.data.fetch ...)

DIR defaults to `sources.default_data_dir()` ($MLFUN_DATA_DIR, else ~/mlfun_jax_data); each
dataset goes to DIR/<name> (`sources.SOURCES`). Downloads use urllib into a temporary folder inside
DIR, are checked against the checksums the sources publish, and the prepared folder is moved into
place in one rename: a failed or interrupted fetch leaves nothing behind. Each source's base URL
can be replaced by the environment variable it names (`Source.url_env`, e.g.
MLFUN_DATA_URL_MNIST=https://mirror/mnist) or by `fetch(..., base_url=...)`.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from mlfun_jax.core import extras
from mlfun_jax.core import progress
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import idx
from mlfun_jax.data import sources

_LOG = logging.getLogger('mlfun_jax')
_TIMEOUT_S = 60.0
_BLOCK = 1 << 20
TFDS_PREFIX = 'tfds:'

# The subsets the documented results were measured on.
FSDD_SPEAKERS = ('george', 'jackson', 'lucas', 'nicolas', 'theo')
ORL_PEOPLE = 30  # s1 .. s30.


class FetchError(UserError):
  """A download or preparation failed; the message is one line naming the URL or file."""


# ---------------------------------------------------------------------------------------------
# Downloads.


def download(url: str, path: str, *, sha256: str | None = None, md5: str | None = None) -> None:
  """Downloads `url` to the file `path`, checking the given checksums of its bytes.

  Raises:
    FetchError: a network or HTTP error, a short read, or a checksum mismatch; one line naming
      the URL. `path` may then hold a partial file (the caller's temporary folder).
  """
  request = urllib.request.Request(url, headers={'User-Agent': 'mlfun_jax-data'})
  digests = {name: hashlib.new(name) for name, want in (('sha256', sha256), ('md5', md5)) if want}
  try:
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(path, 'wb') as f:
      length = response.headers.get('Content-Length')
      total = int(length) if length and length.isdigit() else None
      with progress.Counter(f'downloading {url}', total=total, unit='bytes') as counter:
        for block in iter(lambda: response.read(_BLOCK), b''):
          f.write(block)
          for digest in digests.values():
            digest.update(block)
          counter.add(len(block))
      received = counter.count
  except urllib.error.HTTPError as e:
    raise FetchError(f'cannot download {url}: HTTP {e.code} {e.reason}') from None
  except urllib.error.URLError as e:
    raise FetchError(f'cannot download {url}: {e.reason} (is the network reachable?)') from None
  except (socket.timeout, TimeoutError) as e:
    raise FetchError(f'cannot download {url}: no answer within {_TIMEOUT_S:.0f} s ({e})') from None
  except OSError as e:
    raise FetchError(f'cannot download {url}: {e}') from None
  if total is not None and received != total:
    raise FetchError(f'cannot download {url}: got {received:,} of {total:,} bytes')
  for name, want in (('sha256', sha256), ('md5', md5)):
    if want and digests[name].hexdigest() != want.lower():
      raise FetchError(f'checksum mismatch for {url}: {name} {digests[name].hexdigest()}, '
                       f'expected {want} (damaged download or a changed file); nothing kept')


# ---------------------------------------------------------------------------------------------
# Preparation: (source, downloaded file paths in `source.downloads` order, output folder) -> None.


def _write(path: str, data: bytes) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(data)


def _open_tar(path: str, url: str) -> tarfile.TarFile:
  try:
    return tarfile.open(path, 'r:*')
  except (tarfile.TarError, OSError, EOFError) as e:
    raise FetchError(f'{url} is not a readable tar archive: {e}') from None


def _open_zip(path: str, url: str) -> zipfile.ZipFile:
  try:
    return zipfile.ZipFile(path)
  except (zipfile.BadZipFile, OSError) as e:
    raise FetchError(f'{url} is not a readable zip archive: {e}') from None


def _tar_members(path: str, url: str, pattern: str) -> dict[str, bytes]:
  """{member name: bytes} of the regular members whose name matches `pattern` (re.search)."""
  found = {}
  try:
    with _open_tar(path, url) as tar:
      for member in tar:
        if member.isfile() and re.search(pattern, member.name):
          found[member.name] = tar.extractfile(member).read()
  except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
    raise FetchError(f'{url}: damaged tar archive ({e})') from None
  return found


def _prepare_mnist(source: sources.Source, files: list[str], out: str, urls: list[str]) -> None:
  os.makedirs(out)
  for download_, path in zip(source.downloads, files):
    shutil.move(path, os.path.join(out, download_.path))
  try:
    idx.read_mnist_dir(out)
  except UserError as e:
    raise FetchError(f'the files of {urls[0].rsplit("/", 1)[0]} are not MNIST IDX files: {e}') \
        from None


CIFAR_RECORD = 1 + 32 * 32 * 3  # Label byte, then 1024 red, 1024 green, 1024 blue bytes.


def cifar_binary_images(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
  """A CIFAR-10 binary batch -> (images uint8 [N, 32, 32, 3], labels uint8 [N])."""
  if len(data) % CIFAR_RECORD:
    raise FetchError(f'{name} is {len(data):,} bytes, not a whole number of {CIFAR_RECORD}-byte '
                     'CIFAR-10 records')
  records = np.frombuffer(data, np.uint8).reshape(-1, CIFAR_RECORD)
  return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), records[:, 0]


def _zip_info(name: str) -> zipfile.ZipInfo:
  info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
  info.compress_type = zipfile.ZIP_STORED
  info.external_attr = 0o644 << 16
  return info


def _prepare_cifar10(source: sources.Source, files: list[str], out: str, urls: list[str]) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  del source
  members = _tar_members(files[0], urls[0], r'(^|/)(data_batch_[1-5]\.bin|batches\.meta\.txt)$')
  by_base = {os.path.basename(name): data for name, data in members.items()}
  needed = [f'data_batch_{i}.bin' for i in range(1, 6)] + ['batches.meta.txt']
  absent = [n for n in needed if n not in by_base]
  if absent:
    raise FetchError(f'{urls[0]} lacks {", ".join(absent)}: not the CIFAR-10 binary archive')
  class_names = [line.strip() for line in by_base['batches.meta.txt'].decode().splitlines()
                 if line.strip()]
  batches = [cifar_binary_images(by_base[n], n) for n in needed[:-1]]
  labels = np.concatenate([b[1] for b in batches])
  if len(class_names) < 2 or labels.max(initial=0) >= len(class_names):
    raise FetchError(f'{urls[0]}: labels up to {labels.max(initial=0)} but batches.meta.txt names '
                     f'{len(class_names)} classes')
  os.makedirs(out)
  counts = [0] * len(class_names)
  with zipfile.ZipFile(os.path.join(out, 'train.zip'), 'w', zipfile.ZIP_STORED) as zf, \
       progress.Counter('writing CIFAR-10 PNGs', total=len(labels), unit='images') as counter:
    for images, batch_labels in batches:
      for image, label in zip(images, batch_labels):
        encoded = io.BytesIO()
        Image.fromarray(image).save(encoded, format='PNG')
        name = f'train/{class_names[label]}/{counts[label]:04d}.png'
        counts[label] += 1
        zf.writestr(_zip_info(name), encoded.getvalue())
      counter.add(len(batch_labels))


_FSDD_FILE = re.compile(r'(?:^|/)recordings/(([0-9])_([a-z]+)_([0-9]+)\.wav)$')


def _fsdd_speakers(metadata_py: bytes) -> dict:
  """The `metadata = {...}` dict literal of FSDD's metadata.py, read without running it."""
  try:
    for node in ast.parse(metadata_py.decode('utf-8')).body:
      if isinstance(node, ast.Assign) and any(getattr(t, 'id', '') == 'metadata'
                                              for t in node.targets):
        return ast.literal_eval(node.value)
  except (SyntaxError, ValueError, UnicodeDecodeError):
    pass
  return {}


def _prepare_fsdd(source: sources.Source, files: list[str], out: str, urls: list[str]) -> None:
  del source
  os.makedirs(os.path.join(out, 'recordings'))
  kept, metadata = 0, {}
  try:
    with _open_tar(files[0], urls[0]) as tar, \
         progress.Counter('unpacking FSDD', unit='files') as counter:
      for member in tar:
        if not member.isfile():
          continue
        match = _FSDD_FILE.search(member.name)
        top_level = member.name.count('/') == 1
        if match and match[3] in FSDD_SPEAKERS:
          _write(os.path.join(out, 'recordings', match[1]), tar.extractfile(member).read())
          kept += 1
          counter.add()
        elif top_level and member.name.endswith('/README.md'):
          _write(os.path.join(out, 'README.md'), tar.extractfile(member).read())
        elif top_level and member.name.endswith('/metadata.py'):
          metadata = _fsdd_speakers(tar.extractfile(member).read())
  except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
    raise FetchError(f'{urls[0]}: damaged tar archive ({e})') from None
  if not kept:
    raise FetchError(f'{urls[0]} holds no recordings/<digit>_<speaker>_<take>.wav of '
                     f'{", ".join(FSDD_SPEAKERS)}: not the FSDD archive')
  speakers = {name: info for name, info in metadata.items() if name in FSDD_SPEAKERS}
  with open(os.path.join(out, 'speakers.json'), 'w', encoding='utf-8') as f:
    json.dump(speakers, f, indent=1)


_ORL_FILE = re.compile(r'(?:^|/)s([0-9]+)/([0-9]+)\.pgm$')


def _prepare_faces_orl(source: sources.Source, files: list[str], out: str,
                       urls: list[str]) -> None:
  del source
  os.makedirs(out)
  people = set()
  with _open_zip(files[0], urls[0]) as zf:
    for info in zf.infolist():
      match = _ORL_FILE.search(info.filename)
      if match and 1 <= int(match[1]) <= ORL_PEOPLE:
        _write(os.path.join(out, f's{int(match[1])}', f'{int(match[2])}.pgm'), zf.read(info))
        people.add(int(match[1]))
      elif re.search(r'(^|/)README$', info.filename):
        _write(os.path.join(out, 'README'), zf.read(info))
  if len(people) < ORL_PEOPLE:
    raise FetchError(f'{urls[0]} holds s<N>/<i>.pgm faces of {len(people)} of the people '
                     f's1-s{ORL_PEOPLE}: not the AT&T faces archive')


def _prepare_as_downloaded(source: sources.Source, files: list[str], out: str,
                           urls: list[str]) -> None:
  del urls
  for download_, path in zip(source.downloads, files):
    target = os.path.join(out, *(download_.target or os.path.basename(download_.path)).split('/'))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.move(path, target)


def _prepare_translation(source: sources.Source, files: list[str], out: str,
                         urls: list[str]) -> None:
  del source
  os.makedirs(out)
  with _open_zip(files[0], urls[0]) as zf:
    for info in zf.infolist():
      base = info.filename.rsplit('/', 1)[-1]
      if base in ('spa.txt', '_about.txt') and not info.is_dir():
        _write(os.path.join(out, base), zf.read(info))
  path = os.path.join(out, 'spa.txt')
  if not os.path.isfile(path):
    raise FetchError(f'{urls[0]} holds no spa.txt: not the English-Spanish pairs archive')
  with open(path, encoding='utf-8', errors='replace') as f:
    first = f.readline()
  if '\t' not in first:
    raise FetchError(f'{urls[0]}: spa.txt is not English<TAB>Spanish lines '
                     f'(first line {first[:60]!r})')


PREPARE: dict[str, Callable[[sources.Source, list[str], str, list[str]], None]] = {
    'mnist': _prepare_mnist,
    'cifar10': _prepare_cifar10,
    'fsdd': _prepare_fsdd,
    'faces_orl': _prepare_faces_orl,
    'vglc_mario': _prepare_as_downloaded,
    'translation_eng_spa': _prepare_translation,
}


# ---------------------------------------------------------------------------------------------
# Fetch.


def _unknown(name: str) -> UserError:
  return UserError(f'unknown dataset {name!r}: choose one of {", ".join(sources.SOURCES)}, '
                   f'all, or {TFDS_PREFIX}<TFDS name> (mlfun-data list)')


def fetch(name: str, data_dir: str | os.PathLike[str] | None = None, *,
          base_url: str | None = None) -> str:
  """Downloads and prepares dataset `name` in data_dir/name (a no-op when it is present).

  Args:
    name: a key of `sources.SOURCES`, or 'tfds:<name>' for a TFDS catalog dataset.
    data_dir: the data folder; None: `sources.default_data_dir()`. Created when absent.
    base_url: replaces the source's base URL (and its environment variable).

  Returns:
    The dataset's folder.

  Raises:
    FetchError: a download failed or a file is not what the source publishes; nothing is left
      behind (not even data_dir, if this call created it).
    UserError: an unknown name, or a folder of that name exists but is incomplete.
  """
  data_dir = (os.path.expanduser(os.fspath(data_dir)) if data_dir is not None
              else sources.default_data_dir())
  if name.startswith(TFDS_PREFIX):
    return fetch_tfds(name[len(TFDS_PREFIX):], data_dir)
  if name not in sources.SOURCES:
    raise _unknown(name)
  source = sources.SOURCES[name]
  final = sources.dataset_dir(name, data_dir)
  if sources.is_present(name, data_dir):
    _LOG.info('%s is already in %s', name, final)
    return final
  if os.path.exists(final):
    raise UserError(f'{final} exists but lacks {", ".join(source.markers)}: move it away (or '
                    f'delete it) and fetch {name} again')
  created = _missing_parents(data_dir)
  try:
    os.makedirs(data_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f'.{name}.partial-', dir=data_dir)
  except OSError as e:
    raise UserError(f'cannot write in the data folder {data_dir}: {e.strerror or e} '
                    '(--data_dir or $MLFUN_DATA_DIR)') from None
  try:
    urls = source.urls(base_url)
    _LOG.info('fetching %s from %s', name, urls[0] if len(urls) == 1 else
              f'{(base_url or source.base()).rstrip("/")}/ ({len(urls)} files)')
    files = []
    for i, (url, download_) in enumerate(zip(urls, source.downloads)):
      path = os.path.join(staging, 'downloads', f'{i:03d}-{os.path.basename(download_.path)}')
      os.makedirs(os.path.dirname(path), exist_ok=True)
      download(url, path, sha256=download_.sha256, md5=download_.md5)
      files.append(path)
    out = os.path.join(staging, name)
    PREPARE[name](source, files, out, urls)
    absent = [m for m in source.markers if not os.path.isfile(os.path.join(out, m))]
    if absent:
      raise FetchError(f'preparing {name} from {urls[0]} made no {", ".join(absent)}')
    _check_reference(source, out)
    os.rename(out, final)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
    if not os.path.exists(final):
      for folder in created:  # Innermost first; only folders this call made, and only if empty.
        try:
          os.rmdir(folder)
        except OSError:
          break
  _LOG.info('%s is ready in %s', name, final)
  return final


def _missing_parents(folder: str) -> list[str]:
  """The folders of `folder`'s path that do not exist yet, innermost first."""
  missing = []
  folder = os.path.abspath(folder)
  while not os.path.exists(folder):
    missing.append(folder)
    parent = os.path.dirname(folder)
    if parent == folder:
      break
    folder = parent
  return missing


def _check_reference(source: sources.Source, out: str) -> None:
  """Warns (one line) when the prepared files differ from the copy the documented results used."""
  if not source.reference_sha256:
    return
  digest = sources.content_digest(out, *source.reference_files)
  if digest != source.reference_sha256:
    _LOG.warning('note: the prepared %s differs from the copy the documented results were '
                 'measured on (content sha256 %s, expected %s); results may differ',
                 source.name, digest, source.reference_sha256)


def fetch_tfds(name: str, data_dir: str) -> str:
  """Prepares the TFDS catalog dataset `name` in data_dir with TFDS's own download_and_prepare
  (tensorflow-datasets is imported here only)."""
  tfds = extras.require('tensorflow_datasets', f'{TFDS_PREFIX}{name}')
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
  except (tfds.core.registered.DatasetNotFoundError, ValueError, AssertionError) as e:
    raise UserError(f'TFDS dataset {name!r}: {str(e).splitlines()[0]}') from None
  except OSError as e:
    raise FetchError(f'TFDS could not prepare {name!r} in {data_dir}: {e}') from None
  return str(builder.data_dir)


# ---------------------------------------------------------------------------------------------
# Command line.


def list_lines(data_dir: str | None = None) -> list[str]:
  """The lines `mlfun-data list` prints."""
  data_dir = data_dir if data_dir is not None else sources.default_data_dir()
  env = os.environ.get(sources.ENV_VAR)
  lines = [f'data folder: {data_dir}' + ('' if env or data_dir != sources.default_data_dir()
                                         else f' (${sources.ENV_VAR} is not set)'), '']
  for name, source in sources.SOURCES.items():
    state = 'present' if sources.is_present(name, data_dir) else 'absent'
    urls = source.urls()
    where = urls[0] if len(urls) == 1 else f'{source.base()}/ ({len(urls)} files)'
    lines += [f'{name}  [{state}]  {source.title}',
              f'    source:  {where}',
              f'    licence: {source.licence}',
              f'    layout:  {source.folder}/: {source.layout}',
              f'    size:    {source.size}']
    if source.note:
      lines.append(f'    note:    {source.note}')
  lines += ['', f'fetch one with: {sources.FETCH_COMMAND} NAME [--data_dir=DIR]']
  return lines


def main(argv: Sequence[str] | None = None) -> int:
  """`mlfun-data` with arguments argv (default sys.argv[1:]); returns the exit status."""
  parser = argparse.ArgumentParser(
      prog='mlfun-data', description='Download and prepare the datasets the configs read, in '
      f'${sources.ENV_VAR} (else ~/{sources.HOME_FOLDER}).')
  commands = parser.add_subparsers(dest='command', required=True)
  listing = commands.add_parser('list', help='each dataset: source, licence, layout, present?')
  getting = commands.add_parser('fetch', help='download and prepare datasets')
  getting.add_argument('names', nargs='+', metavar='NAME',
                       help=f'{", ".join(sources.SOURCES)}, all, or {TFDS_PREFIX}<TFDS name>')
  for sub in (listing, getting):
    sub.add_argument('--data_dir', default=None,
                     help=f'the data folder (default ${sources.ENV_VAR}, else '
                          f'~/{sources.HOME_FOLDER})')
  args = parser.parse_args(argv)
  handler = logging.StreamHandler(sys.stderr)
  handler.setFormatter(logging.Formatter('%(message)s'))
  _LOG.addHandler(handler)
  level = _LOG.level
  _LOG.setLevel(logging.INFO)
  try:
    if args.command == 'list':
      print('\n'.join(list_lines(args.data_dir)))
      return 0
    names = list(sources.SOURCES) if 'all' in args.names else args.names
    for name in names:
      if not name.startswith(TFDS_PREFIX) and name not in sources.SOURCES:
        raise _unknown(name)
    for name in names:
      print(fetch(name, args.data_dir))
    return 0
  except UserError as e:
    print(f'error: {e}', file=sys.stderr, flush=True)
    return 2
  except KeyboardInterrupt:
    print('error: interrupted; nothing was left half-prepared', file=sys.stderr, flush=True)
    return 130
  finally:
    _LOG.removeHandler(handler)
    _LOG.setLevel(level)


def run() -> None:
  """The `mlfun-data` console script."""
  sys.exit(main())


if __name__ == '__main__':
  run()
