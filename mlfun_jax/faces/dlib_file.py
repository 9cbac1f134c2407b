"""Reads the weights of dlib's face-recognition ResNet from its serialized `.dat` file.

The file (`dlib_face_recognition_resnet_model_v1.dat`, public domain / CC0, shipped by the
`face_recognition_models` package) is dlib's serialization of the trained network, layer by layer
from the input to the loss. Its format (from dlib's serialize.h and dnn/layers.h): integers are a
control byte (low nibble: the number of bytes, bit 7: the sign) then the magnitude's bytes, little
endian; strings are a length then the bytes; a tensor is a version (2), its dimensions
(num_samples, k, nr, nc) and its values as little-endian float32; doubles are a mantissa and an
exponent, two such integers. Only the layers with weights are read:

- `con_4` ... `con_6`: params = filters [filters, k, nr, nc] then biases [filters];
- `affine_` / `affine_2`: params = gamma [k] then beta [k] (batch norm folded at the end of
  training);
- `fc_2` / `fc_3`: params = weights [inputs, outputs] (then biases when it has them).

`cached` keeps what was read from a dlib file as a checksummed .npz in the cache folder
($MLFUN_CACHE_DIR, else ~/.cache/mlfun_jax), so later processes load it in milliseconds.
"""

import dataclasses
import hashlib
import logging
import os
from collections.abc import Callable

import numpy as np

from mlfun_jax.core import array_files
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import image_cache

CONV_NAMES = (b"con_4", b"con_5", b"con_6")
AFFINE_NAMES = (b"affine_", b"affine_2")
DENSE_NAMES = (b"fc_2", b"fc_3")


@dataclasses.dataclass(frozen=True)
class Layer:
  """One layer with weights, as stored: kind 'conv' | 'affine' | 'dense' and its arrays.

  conv: kernel float32 [nr, nc, k, filters] (HWIO), bias [filters], stride, padding (ints).
  affine: scale, shift float32 [k]. dense: kernel float32 [inputs, outputs].
  """
  kind: str
  arrays: dict


class Reader:
  """Sequential reader of dlib's serialized values (raises UserError past the end)."""

  def __init__(self, data: bytes, path: str):
    self.data, self.path, self.at = data, path, 0

  def _take(self, count: int) -> bytes:
    if self.at + count > len(self.data):
      raise UserError(f"{self.path}: truncated dlib model file (needed {count} bytes at byte "
                      f"{self.at})")
    chunk = self.data[self.at:self.at + count]
    self.at += count
    return chunk

  def integer(self) -> int:
    control = self._take(1)[0]
    size = control & 0x0F
    if size > 8:
      raise UserError(f"{self.path}: not a dlib model file (bad integer at byte {self.at - 1})")
    value = int.from_bytes(self._take(size), "little") if size else 0
    return -value if control & 0x80 else value

  def string(self) -> bytes:
    return self._take(self.integer())

  def double(self) -> float:
    mantissa = self.integer()
    return float(mantissa) * 2.0 ** self.integer()

  def matrix(self) -> np.ndarray:
    """float32 [rows, cols] of a dlib matrix (-rows, -cols, then each value as a double)."""
    rows, cols = abs(self.integer()), abs(self.integer())
    return np.array([self.double() for _ in range(rows * cols)], np.float32).reshape(rows, cols)

  def tensor(self) -> np.ndarray:
    """float32 [num_samples, k, nr, nc]."""
    if self.integer() != 2:
      raise UserError(f"{self.path}: unexpected tensor version at byte {self.at}")
    shape = tuple(self.integer() for _ in range(4))
    if min(shape) < 0 or np.prod(shape) > len(self.data):
      raise UserError(f"{self.path}: bad tensor shape {shape} at byte {self.at}")
    count = int(np.prod(shape))
    return np.frombuffer(self._take(4 * count), "<f4").astype(np.float32).reshape(shape)

  def alias(self) -> tuple[int, ...]:
    if self.integer() != 1:
      raise UserError(f"{self.path}: unexpected alias_tensor version at byte {self.at}")
    return tuple(self.integer() for _ in range(4))


def _read_conv(reader: Reader, version: bytes) -> Layer:
  params = reader.tensor().reshape(-1)
  filters, rows, cols = reader.integer(), reader.integer(), reader.integer()
  stride_y, stride_x = reader.integer(), reader.integer()
  pad_y, pad_x = reader.integer(), reader.integer()
  shape = reader.alias()  # filters [filters, k, nr, nc]
  reader.alias()  # biases
  for _ in range(4):  # learning-rate and weight-decay multipliers.
    reader.double()
  if version in (b"con_5", b"con_6"):
    reader.integer()  # use_bias
  if version == b"con_6":
    reader.integer()  # use_relu
  size = int(np.prod(shape))
  if shape[0] != filters or shape[2:] != (rows, cols) or len(params) not in (size,
                                                                              size + filters):
    raise UserError(f"{reader.path}: inconsistent convolution record at byte {reader.at}")
  kernel = params[:size].reshape(shape).transpose(2, 3, 1, 0)
  bias = params[size:] if len(params) > size else np.zeros(filters, np.float32)
  if (stride_y, pad_y) != (stride_x, pad_x):
    raise UserError(f"{reader.path}: unsupported non-square convolution at byte {reader.at}")
  return Layer("conv", {"kernel": kernel, "bias": bias, "stride": stride_y, "padding": pad_y})


def _read_affine(reader: Reader, version: bytes) -> Layer:
  params = reader.tensor().reshape(-1)
  gamma, beta = reader.alias(), reader.alias()
  reader.integer()  # mode (per channel for convolutions)
  if version == b"affine_2":
    reader.integer()  # disabled
  size = int(np.prod(gamma))
  if int(np.prod(beta)) != size or len(params) != 2 * size:
    raise UserError(f"{reader.path}: inconsistent affine record at byte {reader.at}")
  return Layer("affine", {"scale": params[:size].copy(), "shift": params[size:].copy()})


def _read_dense(reader: Reader, version: bytes) -> Layer:
  outputs, inputs = reader.integer(), reader.integer()
  params = reader.tensor().reshape(-1)
  reader.alias()
  reader.alias()
  reader.integer()  # bias mode
  for _ in range(4):
    reader.double()
  if version == b"fc_3":
    reader.integer()
  if len(params) < inputs * outputs:
    raise UserError(f"{reader.path}: inconsistent fc record at byte {reader.at}")
  return Layer("dense", {"kernel": params[:inputs * outputs].reshape(inputs, outputs)})


_READERS = ({name: _read_conv for name in CONV_NAMES}
            | {name: _read_affine for name in AFFINE_NAMES}
            | {name: _read_dense for name in DENSE_NAMES})


def _record_offsets(data: bytes) -> list[tuple[int, bytes]]:
  """(offset, name) of every layer-with-weights record name in `data` (its length byte, then the
  name), in file order; some may lie inside weights and are skipped while reading."""
  found = []
  for name in _READERS:
    marker = bytes([1, len(name)]) + name
    at = data.find(marker)
    while at >= 0:
      found.append((at, name))
      at = data.find(marker, at + 1)
  return sorted(found)


def read_layers(path: str) -> list[Layer]:
  """The layers with weights of a dlib network file, input to output.

  Raises:
    UserError: a missing, truncated or foreign file (one line naming it).
  """
  if not os.path.isfile(path):
    raise UserError(f"dlib model file {path!r} does not exist")
  with open(path, "rb") as f:
    data = f.read()
  reader = Reader(data, path)
  if reader.integer() < 0 or not reader.string().startswith(b"loss_metric"):
    raise UserError(f"{path}: not a dlib metric-learning network (loss_metric) file")
  layers = []
  for offset, _ in _record_offsets(data):
    if offset < reader.at:
      continue  # Inside a record already read.
    reader.at = offset
    version = reader.string()
    layers.append(_READERS[version](reader, version))
  return layers


def cached(path: str, read: Callable[[str], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """`read(path)` (name -> array), kept in the cache folder under a key of the file's path, size
  and modification time; a damaged or unwritable cache is read again from `path` (a warning)."""
  stat = os.stat(path)  # A missing file: `read` names it.
  key = hashlib.sha256(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
  name = f"{os.path.splitext(os.path.basename(path))[0]}-{key.hexdigest()[:16]}.npz"
  cache = os.path.join(image_cache.cache_root(), "dlib", name)
  if os.path.isfile(cache):
    try:
      return array_files.load(cache, "dlib model cache")[0]
    except UserError as e:
      logging.warning("%s; reading %s again", e, path)
  arrays = read(path)
  try:
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    array_files.save(cache, arrays, {"source": os.path.abspath(path)})
  except OSError as e:
    logging.warning("could not cache %s in %s: %s", path, cache, e)
  return arrays
