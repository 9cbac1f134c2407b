"""IDX files (the MNIST format), gzipped or plain, and folders laid out like MNIST.

An IDX file is: two zero bytes, a dtype code, the number of dims K, K big-endian uint32 dims, then
the data, big-endian, row-major. A gzipped file is recognised by its content, not its name.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from mlfun_jax.data.arrays import ArraySplit
from mlfun_jax.core.errors import UserError

# IDX dtype code -> big-endian numpy dtype.
_DTYPES = {0x08: np.dtype('>u1'), 0x09: np.dtype('>i1'), 0x0B: np.dtype('>i2'),
           0x0C: np.dtype('>i4'), 0x0D: np.dtype('>f4'), 0x0E: np.dtype('>f8')}
_CODES = {dtype.newbyteorder('='): code for code, dtype in _DTYPES.items()}

# MNIST layout: split -> (images file, labels file), each found with or without '.gz'.
MNIST_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
               'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}


def _read_bytes(path: str) -> bytes:
  try:
    with open(path, 'rb') as f:
      data = f.read()
    if data[:2] == b'\x1f\x8b':
      data = gzip.decompress(data)
  except (OSError, EOFError, zlib.error) as e:
    raise UserError(f'cannot read IDX file {path!r}: {e}') from e
  return data


def read_idx(path: str) -> np.ndarray:
  """Reads an IDX file (gzipped or plain) into a native-endian array of the stored dtype and dims.

  Raises:
    UserError naming the file: unreadable, bad magic number, unknown dtype, truncated or too long.
  """
  data = _read_bytes(path)
  if len(data) < 4:
    raise UserError(f'{path!r} is not an IDX file: only {len(data)} bytes')
  if data[:2] != b'\0\0':
    raise UserError(f'{path!r} is not an IDX file: bad magic number 0x{data[:4].hex()}')
  code, ndim = data[2], data[3]
  if code not in _DTYPES:
    raise UserError(f'{path!r} is not an IDX file: unknown dtype code 0x{code:02x}')
  header = 4 + 4 * ndim
  if len(data) < header:
    raise UserError(f'{path!r} is truncated: {len(data)} bytes, shorter than its '
                    f'{header}-byte header')
  shape = tuple(int(d) for d in np.frombuffer(data, '>u4', count=ndim, offset=4))
  dtype = _DTYPES[code]
  expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) != expected:
    what = 'truncated' if len(data) < expected else 'too long'
    raise UserError(f'{path!r} is {what}: {len(data)} bytes, expected {expected} for {dtype.name} '
                    f'dims {shape}')
  return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder('='))


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes `array` as an IDX file, gzipped when `path` ends in '.gz'."""
  array = np.asarray(array)
  native = array.dtype.newbyteorder('=')
  if native not in _CODES:
    raise ValueError(f'IDX cannot store dtype {array.dtype}')
  header = bytes([0, 0, _CODES[native], array.ndim]) + np.asarray(array.shape, '>u4').tobytes()
  data = header + array.astype(array.dtype.newbyteorder('>')).tobytes()
  if path.endswith('.gz'):
    data = gzip.compress(data, mtime=0)
  with open(path, 'wb') as f:
    f.write(data)


def _find(directory: str, stem: str) -> str | None:
  for path in (os.path.join(directory, stem), os.path.join(directory, stem + '.gz')):
    if os.path.isfile(path):
      return path
  return None


def has_mnist_files(directory: str) -> bool:
  """True when `directory` holds at least one MNIST-layout IDX file (plain or '.gz')."""
  return any(_find(directory, stem) for pair in MNIST_FILES.values() for stem in pair)


def _read_split(images_path: str, labels_path: str) -> ArraySplit:
  images = read_idx(images_path)
  if images.ndim == 3:
    images = images[..., None]
  if images.ndim != 4 or images.dtype != np.uint8:
    raise UserError(f'{images_path!r} holds {images.dtype} dims {images.shape}, expected uint8 '
                    '[N, H, W] or [N, H, W, C]')
  labels = read_idx(labels_path)
  if labels.ndim != 1 or labels.dtype.kind not in 'iu':
    raise UserError(f'{labels_path!r} holds {labels.dtype} dims {labels.shape}, '
                    'expected integer [N]')
  if len(labels) != len(images):
    raise UserError(f'{labels_path!r} has {len(labels)} labels but {images_path!r} has '
                    f'{len(images)} images')
  return ArraySplit(images=images, labels=labels.astype(np.int32))


def read_mnist_dir(directory: str) -> dict[str, ArraySplit]:
  """Reads the four MNIST-layout IDX files in `directory` (see MNIST_FILES).

  Returns:
    {'train': ArraySplit, 'test': ArraySplit}; images uint8 [N, H, W, 1] (or [N, H, W, C]).

  Raises:
    UserError: a file is missing, unreadable or inconsistent (the message names it).
  """
  splits = {}
  for split_name, stems in MNIST_FILES.items():
    paths = []
    for stem in stems:
      path = _find(directory, stem)
      if path is None:
        needs = ', '.join(s for pair in MNIST_FILES.values() for s in pair)
        raise UserError(f'{os.path.join(directory, stem)!r}[.gz] is missing: an MNIST-format '
                        f'folder needs {needs}')
      paths.append(path)
    splits[split_name] = _read_split(*paths)
  return splits
