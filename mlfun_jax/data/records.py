"""Image folders and zips decoded once into array_record shards, read back one record at a time.

The streamed input pipeline (`data.stream`) reads these shards instead of one in-memory array: an
image folder of any size becomes `<cache>/<name>-records-<key>/{train,test}-NNNNN.array_record`
plus `info.json` (class names, counts, image shapes, skipped files), written once and found again
by the same key (the source's files, sizes and mtimes or the zip's size and mtime, image_size,
channels, bad_images, validation_fraction, split_seed). With many processes each process decodes
and writes the shards k with k % process_count == process_index, then all wait for the others; the
folder must be one they all see (the cache_dir on a shared file system).

A record is one decoded image: a 12-byte header (height, width, channels: uint16; label: int32;
little-endian, two bytes of padding) then the pixels, uint8 [H, W, C] in row-major order. Images
keep their own size, except that with `image_size` S an image whose shorter side exceeds
`stored_side(S)` is scaled down to it (crops in the pipeline still find enough pixels); they are
never scaled up here.
"""

from __future__ import annotations

import collections
import json
import math
import os
import struct
import time
from concurrent import futures
from typing import Any

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from mlfun_jax.core import progress
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import embedded
from mlfun_jax.data import image_cache
from mlfun_jax.data import image_folder

_HEADER = struct.Struct('<HHHxxi')
SHARD_SIZE = 4096  # Records per shard.
INFO_FILE = 'info.json'
FORMAT_VERSION = 1


def stored_side(image_size: int) -> int:
  """The shorter side images are scaled down to when stored for crops of `image_size`: 8/7 of it
  (a centre crop of S from a side of S / 0.875, as ImageNet evaluation does)."""
  return int(math.ceil(image_size / 0.875))


def encode(image: np.ndarray, label: int) -> bytes:
  """uint8 [H, W, C] and a label -> one record's bytes."""
  h, w, c = image.shape
  return _HEADER.pack(h, w, c, int(label)) + np.ascontiguousarray(image, np.uint8).tobytes()


def decode(record: bytes) -> tuple[np.ndarray, int]:
  """One record's bytes -> (uint8 [H, W, C], label); ValueError on a record of the wrong size."""
  h, w, c, label = _HEADER.unpack_from(record)
  pixels = np.frombuffer(record, np.uint8, offset=_HEADER.size)
  if pixels.size != h * w * c:
    raise ValueError(f'a record of {len(record)} bytes does not hold {h}x{w}x{c} pixels')
  return pixels.reshape(h, w, c), label


def _decode_file(data: bytes, channels: int, image_size: int | None) -> np.ndarray:
  """Encoded bytes -> uint8 [H, W, C], scaled down to `stored_side(image_size)` when larger."""
  pixels = image_folder._decode_image(data, channels, None)  # pylint: disable=protected-access
  if image_size is None:
    return pixels
  h, w = pixels.shape[:2]
  side = stored_side(image_size)
  if min(h, w) <= side:
    return pixels
  scale = side / min(h, w)
  size = (max(side, round(w * scale)), max(side, round(h * scale)))
  mode = 'L' if channels == 1 else 'RGB'
  image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
  resized = np.asarray(image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0), np.uint8)
  return resized.reshape(resized.shape[:2] + (channels,))


def _shard_name(split: str, index: int) -> str:
  return f'{split}-{index:05d}.array_record'


def _write_shard(path: str, records: list[bytes]) -> None:
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  temporary = f'{path}.tmp-{os.getpid()}'
  writer = array_record_module.ArrayRecordWriter(temporary, 'group_size:1')
  for record in records:
    writer.write(record)
  writer.close()
  os.replace(temporary, path)  # Atomic: a shard exists whole or not at all.


def _decode_shard(reader, source: str, is_zip: bool, paths: list[str], labels: np.ndarray,
                  channels: int, image_size: int | None, bad_images: str, pool
                  ) -> tuple[list[bytes], list[str], set[tuple[int, int, int]]]:
  """(records, skipped display names, image shapes) of `paths`, decoded on `pool`."""
  from absl import logging  # pylint: disable=g-import-not-at-top

  def one(rel_path: str) -> np.ndarray | str:
    try:
      return _decode_file(reader(rel_path), channels, image_size)
    except UnidentifiedImageError:
      return 'not a JPEG or PNG file'
    except image_folder._DECODE_ERRORS as e:  # pylint: disable=protected-access
      return f'{type(e).__name__}: {e}'

  records, skipped, shapes = [], [], set()
  for rel_path, label, result in zip(paths, labels, pool.map(one, paths)):
    if isinstance(result, str):
      name = image_folder._display(source, is_zip, rel_path)  # pylint: disable=protected-access
      if bad_images == 'error':
        raise UserError(f'{name!r} is not a readable image ({result}); fix or delete it, '
                        "or set config field bad_images to 'skip'")
      logging.warning('Skipping unreadable image %s (%s)', name, result)
      skipped.append(name)
      continue
    records.append(encode(result, label))
    shapes.add(result.shape)
  return records, skipped, shapes


def _wait_for_all(process_count: int, what: str) -> None:
  if process_count > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(what)


def prepare_image_folder(source: str | os.PathLike[str], *, name: str | None = None,
                         image_size: int | None = None, channels: int = 3,
                         validation_fraction: float = 0.1, split_seed: int = 0,
                         bad_images: str = 'error', cache_dir: str | os.PathLike[str] | None = None,
                         process_index: int = 0, process_count: int = 1,
                         shard_size: int = SHARD_SIZE) -> tuple[str, dict[str, Any]]:
  """Decodes `<source>/[<prefix>/]<class>/<image>` (a folder or a .zip) into array_record shards.

  The train/validation split is drawn per class over the listed files, as
  `image_folder.load_image_folder` draws it (`embedded.stratified_split` with split_seed), each
  split kept in path order. Shards already written (same key) are used as they are.

  Returns:
    (the shards' folder, its info: {'name', 'class_names', 'splits': {split: {'shards',
    'num_records'}}, 'shapes' (distinct [H, W, C] of the stored images, at most 10), 'skipped',
    'source'}).

  Raises:
    UserError: a bad argument, layout or image (bad_images='error'), or a folder it cannot write.
  """
  from absl import logging  # pylint: disable=g-import-not-at-top
  image_folder._check_args(image_size, channels, validation_fraction,  # pylint: disable=protected-access
                           split_seed, bad_images)
  described = image_folder.open_source(source, name)
  source, is_zip, absolute, name = (described.path, described.is_zip, described.absolute,
                                    described.name)
  paths = described.image_paths()
  fields = {'source': absolute, 'files': described.stamp, 'image_size': image_size, 'channels': channels,
            'bad_images': bad_images, 'validation_fraction': validation_fraction,
            'split_seed': split_seed, 'shard_size': shard_size, 'format': FORMAT_VERSION}
  folder, key = image_cache.cache_folder(image_cache.cache_root(cache_dir), f'{name}-records',
                                         fields)
  info_path = os.path.join(folder, INFO_FILE)
  info = _read_info(info_path, key)
  if info is not None:
    logging.info('Streaming %s from its records in %s.', source, folder)
    return folder, info

  class_names, labels = image_folder._classes(source, paths)  # pylint: disable=protected-access
  train, test = (np.sort(i) for i in embedded.stratified_split(labels, validation_fraction,
                                                               split_seed))
  if not len(train):
    raise UserError(f'validation_fraction {validation_fraction} leaves no training images of the '
                    f'{len(labels)} in {source!r} (config field validation_fraction)')
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise UserError(f'cannot write the records of {source!r} in {folder}: {e.strerror}; set '
                    'config field cache_dir to a writable folder') from e
  plan = [(split, k, indices[k * shard_size:(k + 1) * shard_size])
          for split, indices in (('train', train), ('test', test))
          for k in range(math.ceil(len(indices) / shard_size))]
  mine = [job for i, job in enumerate(plan) if i % process_count == process_index]
  began = time.perf_counter()
  reader = image_folder._Reader(source, is_zip)  # pylint: disable=protected-access
  counter = progress.Counter(f'decoding {os.path.basename(source)} into records',
                             total=sum(len(job[2]) for job in mine), unit='images')
  try:
    with futures.ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix='records') as pool:
      for split, k, indices in mine:
        records, skipped, shapes = _decode_shard(
            reader, source, is_zip, [paths[i] for i in indices], labels[indices], channels,
            image_size, bad_images, pool)
        _write_shard(os.path.join(folder, _shard_name(split, k)), records)
        with open(os.path.join(folder, _shard_name(split, k) + '.json'), 'w') as f:
          json.dump({'num_records': len(records), 'skipped': skipped,
                     'shapes': sorted(shapes)}, f)
        counter.add(len(indices))
  except OSError as e:
    raise UserError(f'cannot write the records of {source!r} in {folder}: {e.strerror or e}; '
                    'set config field cache_dir to a writable folder') from e
  finally:
    reader.close()
  counter.done()
  _wait_for_all(process_count, f'mlfun_jax: records of {name} written')
  if process_index == 0:
    info = _summarise(folder, key, name, class_names, absolute, plan,
                      round(time.perf_counter() - began, 3))
    temporary = f'{info_path}.tmp-{os.getpid()}'
    with open(temporary, 'w') as f:
      json.dump(info, f)
    os.replace(temporary, info_path)
  _wait_for_all(process_count, f'mlfun_jax: records of {name} listed')
  info = _read_info(info_path, key)
  if info is None:
    raise UserError(f'the records of {source!r} in {folder} are incomplete: {INFO_FILE} is missing')
  return folder, info


def _summarise(folder: str, key: str, name: str, class_names, source: str, plan,
               seconds: float) -> dict[str, Any]:
  splits = collections.defaultdict(lambda: {'shards': [], 'num_records': 0})
  skipped, shapes = [], set()
  for split, k, _ in plan:
    with open(os.path.join(folder, _shard_name(split, k) + '.json')) as f:
      shard = json.load(f)
    splits[split]['shards'].append(_shard_name(split, k))
    splits[split]['num_records'] += shard['num_records']
    skipped += shard['skipped']
    shapes.update(tuple(s) for s in shard['shapes'])
  splits.setdefault('test', {'shards': [], 'num_records': 0})
  return {'key': key, 'name': name, 'class_names': list(class_names), 'source': source,
          'splits': dict(splits), 'shapes': sorted(shapes)[:10], 'num_shapes': len(shapes),
          'skipped': skipped, 'decode_seconds': seconds}


def _read_info(path: str, key: str) -> dict[str, Any] | None:
  try:
    with open(path) as f:
      info = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(info, dict) or info.get('key') != key:
    return None
  folder = os.path.dirname(path)
  shards = [s for split in info['splits'].values() for s in split['shards']]
  if not all(os.path.exists(os.path.join(folder, s)) for s in shards):
    return None
  return info


class RecordSource:
  """Random access to the decoded images of one split's shards: `source[i]` -> (uint8 [H, W, C],
  label). Thread-safe; each read opens nothing new (grain's ArrayRecordDataSource)."""

  def __init__(self, folder: str, shards: list[str]):
    import grain  # pylint: disable=g-import-not-at-top
    self._paths = [os.path.join(folder, s) for s in shards]
    self._source = grain.sources.ArrayRecordDataSource(self._paths) if shards else []

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
    try:
      return decode(self._source[index])
    except ValueError as e:
      raise UserError(f'record {index} of {self._paths[0]}...: damaged ({e}); delete the folder '
                      f'{os.path.dirname(self._paths[0])} to decode the images again') from e
