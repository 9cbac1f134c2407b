"""Classification datasets from image files in class folders, in a folder or a .zip.

Layout: `<source>/[<prefix>/]<class>/<file>.{jpg,jpeg,png}` (extensions in any case), e.g.
`train.zip:train/airplane/0000.jpg`. Decoded images are cached on disk (see `image_cache`), so only
the first load of a source decodes; the train/validation split is drawn after the cache.
absl is imported on first use: importing mlfun_jax.data must not pull it in.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import struct
import threading
import time
import zipfile
import zlib
from concurrent import futures

import numpy as np
from PIL import Image
from PIL import ImageFile
from PIL import UnidentifiedImageError

from mlfun_jax.data import images as images_lib
from mlfun_jax.data import embedded
from mlfun_jax.data import image_cache
from mlfun_jax.data.arrays import ArraySplit, ImageDataset
from mlfun_jax.core import progress
from mlfun_jax.core.errors import UserError

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
BAD_IMAGES_CHOICES = ('error', 'skip')
_CHUNK = 64  # Images per task of the decode thread pool (2 tasks per thread in flight).
# What a corrupt or unreadable file can raise while read and decoded.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, zlib.error,
                  zipfile.BadZipFile, Image.DecompressionBombError)


def _is_image(rel_path: str) -> bool:
  """True for an image file not inside a hidden or __MACOSX folder."""
  parts = rel_path.split('/')
  return (rel_path.lower().endswith(IMAGE_EXTENSIONS)
          and not any(p.startswith('.') or p == '__MACOSX' for p in parts))


def _walk_images(root: str, max_depth: int | None = None):
  """Yields (relative '/'-separated path, full path) of image files under a folder, any order.

  max_depth: if given, only files at most that many path parts deep ('a/b.png' is 2).
  """
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    rel_dir = os.path.relpath(dirpath, root).replace(os.sep, '/')
    depth = 1 if rel_dir == '.' else rel_dir.count('/') + 2  # Of the files in dirpath.
    keep = max_depth is None or depth < max_depth
    dirnames[:] = [d for d in dirnames if keep and not d.startswith('.') and d != '__MACOSX']
    for filename in filenames:
      rel = filename if rel_dir == '.' else f'{rel_dir}/{filename}'
      if _is_image(rel):
        yield rel, os.path.join(dirpath, filename)


def has_class_folders(path: str) -> bool:
  """True when `path` is a folder with an image at <class>/<file> or <prefix>/<class>/<file>.

  Deeper files are not looked at (a TFDS data_dir may hold extracted images deep down).
  """
  return os.path.isdir(path) and any('/' in rel for rel, _ in _walk_images(path, max_depth=3))


def _list_zip(source: str) -> list[str]:
  try:
    with zipfile.ZipFile(source) as zf:
      names = {info.filename for info in zf.infolist() if not info.is_dir()}
  except (OSError, zipfile.BadZipFile) as e:
    raise UserError(f'{source!r} is not a readable zip file: {e}') from e
  return sorted(n for n in names if _is_image(n))


def _classes(source: str, paths: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
  """Sorted paths -> (sorted class names, labels int32 [N]); UserError for a bad layout."""
  if not paths:
    raise UserError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in {source!r}')
  split = [p.split('/') for p in paths]
  for parts, path in zip(split, paths):
    if len(parts) == 1:
      raise UserError(f'image {path!r} sits directly in {source!r}: put each class in its own '
                      'folder, <class>/<file>')
    if len(parts) != len(split[0]) or parts[:-2] != split[0][:-2]:
      raise UserError(f'{source!r}: images {paths[0]!r} and {path!r} are not in class folders '
                      'under one common prefix; expected [<prefix>/]<class>/<file> for every image')
  class_names = tuple(sorted({parts[-2] for parts in split}))
  if len(class_names) < 2:
    raise UserError(f'{source!r} has only one class folder ({class_names[0]!r}); a classifier '
                    'needs at least 2')
  index = {name: i for i, name in enumerate(class_names)}
  return class_names, np.array([index[parts[-2]] for parts in split], np.int32)


def _decode_image(data: bytes, channels: int, image_size: int | None) -> np.ndarray:
  """Encoded JPEG or PNG bytes -> uint8 [H, W, channels] (resized and cropped when image_size)."""
  with Image.open(io.BytesIO(data), formats=('JPEG', 'PNG')) as image:
    if image.width * image.height > images_lib.MAX_IMAGE_PIXELS:
      raise ValueError(f'{image.width} x {image.height} pixels; at most '
                       f'{images_lib.MAX_IMAGE_PIXELS:,} (8192 x 8192) are read')
    image.load()  # Decodes now, so truncated files raise here.
    mode = 'L' if channels == 1 else 'RGB'
    if image.mode != mode:
      image = image.convert(mode)
    if image_size is not None:
      image = images_lib.resize_and_center_crop(image, image_size)
    pixels = np.asarray(image, np.uint8)
  return pixels.reshape(pixels.shape[:2] + (channels,))


class _Reader:
  """Reads the bytes of one image; thread-safe (one ZipFile per thread for a zip)."""

  def __init__(self, source: str, is_zip: bool):
    self._source, self._is_zip = source, is_zip
    self._local = threading.local()
    self._lock = threading.Lock()
    self._opened: list[zipfile.ZipFile] = []

  def __call__(self, rel_path: str) -> bytes:
    if not self._is_zip:
      with open(os.path.join(self._source, rel_path), 'rb') as f:
        return f.read()
    zf = getattr(self._local, 'zip', None)
    if zf is None:
      zf = self._local.zip = zipfile.ZipFile(self._source)
      with self._lock:
        self._opened.append(zf)
    return zf.read(rel_path)

  def close(self) -> None:
    for zf in self._opened:
      zf.close()


@dataclasses.dataclass(frozen=True)
class FolderSource:
  """An image folder or zip as given: `path` (~ expanded), `absolute`, `is_zip`, the dataset
  `name` (default: the base name without '.zip'), `paths` (a folder's image paths, sorted; None
  for a zip, listed by `image_paths`) and `stamp` (what identifies the contents: a zip's [size,
  mtime_ns], a folder's [[path, size, mtime_ns], ...])."""
  path: str
  absolute: str
  is_zip: bool
  name: str
  paths: list[str] | None
  stamp: list

  def image_paths(self) -> list[str]:
    """The relative paths of the images, sorted."""
    return self.paths if self.paths is not None else _list_zip(self.path)


def open_source(source: str | os.PathLike[str], name: str | None = None) -> FolderSource:
  """Describes an image folder or .zip (UserError when `source` is neither)."""
  source = os.path.expanduser(os.fspath(source))
  is_zip = os.path.isfile(source) and source.lower().endswith('.zip')
  if not is_zip and not os.path.isdir(source):
    raise UserError(f'image folder source {source!r} is neither a folder nor a .zip file')
  absolute = os.path.abspath(source)
  name = name or os.path.basename(absolute.rstrip(os.sep))
  if is_zip and name.lower().endswith('.zip'):
    name = name[:-4]
  if is_zip:
    stat = os.stat(source)
    return FolderSource(source, absolute, True, name, None, [stat.st_size, stat.st_mtime_ns])
  found = sorted(_walk_images(source))
  stamp = [[rel, s.st_size, s.st_mtime_ns] for rel, s in
           ((rel, os.stat(full)) for rel, full in found)]
  return FolderSource(source, absolute, False, name, [rel for rel, _ in found], stamp)


def _display(source: str, is_zip: bool, rel_path: str) -> str:
  """How messages name an image: 'x.zip:train/cat/1.jpg' or 'folder/train/cat/1.jpg'."""
  return f'{source}:{rel_path}' if is_zip else os.path.join(source, rel_path)


def _decode_all(source: str, is_zip: bool, paths: list[str], channels: int, image_size: int | None,
                bad_images: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """Decodes `paths` in order on os.cpu_count() threads.

  Returns:
    (images uint8 [M, H, W, C], kept int64 [M] indices into paths, skipped display names).
  """
  from absl import logging  # pylint: disable=g-import-not-at-top
  reader = _Reader(source, is_zip)

  def decode_chunk(start: int, stop: int) -> list[np.ndarray | str]:
    out = []
    for rel_path in paths[start:stop]:
      try:
        out.append(_decode_image(reader(rel_path), channels, image_size))
      except UnidentifiedImageError:
        out.append('not a JPEG or PNG file')
      except _DECODE_ERRORS as e:
        out.append(f'{type(e).__name__}: {e}')
    return out

  began = time.perf_counter()
  workers = os.cpu_count() or 1
  images, kept, skipped = None, [], []
  # Periodic lines only: the closing line is the 'Decoded ...' one below.
  counter = progress.Counter(f'decoding {os.path.basename(source)}', total=len(paths),
                             unit='images')
  starts = iter(range(0, len(paths), _CHUNK))
  pending = collections.deque()

  def submit() -> None:
    start = next(starts, None)
    if start is not None:
      pending.append((start, pool.submit(decode_chunk, start, min(start + _CHUNK, len(paths)))))

  try:
    with futures.ThreadPoolExecutor(workers, thread_name_prefix='decode') as pool:
      try:
        for _ in range(2 * workers):
          submit()
        while pending:  # In order, so the first bad file in sorted order is the one reported.
          start, future = pending.popleft()
          results = future.result()
          submit()
          counter.add(len(results))
          for i, result in enumerate(results, start):
            name = _display(source, is_zip, paths[i])
            if isinstance(result, str):
              if bad_images == 'error':
                raise UserError(f'{name!r} is not a readable image ({result}); fix or delete it, '
                                "or set config field bad_images to 'skip'")
              logging.warning('Skipping unreadable image %s (%s)', name, result)
              skipped.append(name)
              continue
            if images is None:
              first = name
              images = np.empty((len(paths),) + result.shape, np.uint8)
            elif result.shape != images.shape[1:]:
              (h, w, _), (first_h, first_w, _) = result.shape, images.shape[1:]
              raise UserError(f'{name!r} is {w}x{h} pixels but {first!r} is {first_w}x{first_h}; '
                              'set config field image_size to resize and centre-crop all images '
                              'to one size')
            images[len(kept)] = result
            kept.append(i)
      finally:
        for _, future in pending:
          future.cancel()
  finally:
    reader.close()
  if images is None:
    raise UserError(f'none of the {len(paths)} images in {source!r} is readable')
  seconds = time.perf_counter() - began
  logging.info('Decoded %d images (%d skipped) from %s in %.1f s: %.0f images/s on %d threads.',
               len(kept), len(skipped), source, seconds, len(paths) / max(seconds, 1e-9), workers)
  return images[:len(kept)], np.array(kept, np.int64), skipped


def _check_args(image_size, channels, validation_fraction, split_seed, bad_images) -> None:
  if bad_images not in BAD_IMAGES_CHOICES:
    raise UserError(f'bad_images {bad_images!r} must be one of {", ".join(BAD_IMAGES_CHOICES)} '
                    '(config field bad_images)')
  if image_size is not None and (isinstance(image_size, bool) or
                                 not isinstance(image_size, (int, np.integer)) or image_size <= 0):
    raise UserError(f'image_size {image_size!r} must be a positive integer or None '
                    '(config field image_size)')
  if channels not in (1, 3):
    raise UserError(f'channels {channels!r} must be 1 (grey) or 3 (RGB) (config field channels)')
  if (isinstance(validation_fraction, bool) or
      not isinstance(validation_fraction, (int, float, np.floating)) or
      not 0 <= validation_fraction < 1):
    raise UserError(f'validation_fraction {validation_fraction!r} must be in [0, 1) '
                    '(config field validation_fraction)')
  if (isinstance(split_seed, bool) or not isinstance(split_seed, (int, np.integer))
      or split_seed < 0):
    raise UserError(f'split_seed {split_seed!r} must be a non-negative integer '
                    '(config field split_seed)')


def load_image_folder(source: str | os.PathLike[str], *, name: str | None = None,
                      image_size: int | None = None, channels: int = 3,
                      validation_fraction: float = 0.1, split_seed: int = 0,
                      bad_images: str = 'error',
                      cache_dir: str | os.PathLike[str] | None = None) -> ImageDataset:
  """Loads `<source>/[<prefix>/]<class>/<image>` (a folder or a .zip) as a classification dataset.

  Class names are the class folder names, sorted: labels 0..K-1. Images are decoded with PIL as
  JPEG or PNG (whatever the extension), converted to RGB or grey, in path order, on os.cpu_count()
  threads, once: the arrays are cached under `cache_dir` (else $MLFUN_CACHE_DIR, else
  ~/.cache/mlfun_jax), keyed by the source (path; a zip's size and mtime, a folder's image paths,
  sizes and mtimes), image_size, channels and bad_images. A damaged cache is rebuilt.

  Args:
    source: the folder or .zip file.
    name: the dataset's name; default the source's base name without '.zip'.
    image_size: None: all images must have one size. S: each image's shorter side is scaled to S
      and the centre S x S is kept (`images.resize_and_center_crop`, LANCZOS).
    channels: 3 (RGB) or 1 (grey).
    validation_fraction: in [0, 1); round(fraction * n) images of each class of n go to `test`.
    split_seed: >= 0; the split is `embedded.stratified_split(labels, validation_fraction,
      split_seed)` over all decoded images. Neither changes the cache.
    bad_images: 'error' (UserError naming the first unreadable file) or 'skip' (warn and leave it
      out; the count is info['num_skipped']).
    cache_dir: the cache root folder.

  Returns:
    ImageDataset with images uint8 [N, H, W, C] in memory, labels int32, each split in path order,
    and info {'source', 'num_images' (decoded), 'num_skipped', 'skipped', 'cache' (folder, None if
    it could not be written), 'from_cache'}.

  Raises:
    UserError: a bad argument, layout or image (bad_images='error'); the message names it.
  """
  from absl import logging  # pylint: disable=g-import-not-at-top
  _check_args(image_size, channels, validation_fraction, split_seed, bad_images)
  described = open_source(source, name)
  source, is_zip, absolute, name = (described.path, described.is_zip, described.absolute,
                                    described.name)
  fields = {'source': absolute, 'image_size': image_size, 'channels': channels,
            'bad_images': bad_images, ('zip' if is_zip else 'files'): described.stamp}
  folder, key = image_cache.cache_folder(image_cache.cache_root(cache_dir), name, fields)

  began = time.perf_counter()
  try:
    cached = image_cache.read(folder, key)
  except image_cache.DamagedCache as e:
    logging.warning('Rebuilding the damaged image cache %s: %s', folder, e)
    cached = None
  if cached is not None:
    images, labels, stored = cached
    class_names, skipped = tuple(stored['class_names']), list(stored['skipped'])
    logging.info('Loaded %d images of %s from the cache %s.', len(labels), source, folder)
  else:
    if ImageFile.LOAD_TRUNCATED_IMAGES:
      logging.warning('PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images in %s will '
                      'load as partly grey instead of being reported.', source)
    paths = described.image_paths()
    class_names, all_labels = _classes(source, paths)
    images, kept, skipped = _decode_all(source, is_zip, paths, channels, image_size, bad_images)
    labels = all_labels[kept]
    stored = {'key': key, 'source': absolute, 'class_names': list(class_names),
              'num_images': len(labels), 'skipped': skipped, 'image_size': image_size,
              'channels': channels, 'bad_images': bad_images,
              'decode_seconds': round(time.perf_counter() - began, 3)}
    if not image_cache.write(folder, images, labels, stored):
      folder = None

  train, test = (np.sort(i) for i in embedded.stratified_split(labels, validation_fraction,
                                                               split_seed))
  if not len(train):
    raise UserError(f'validation_fraction {validation_fraction} leaves no training images of the '
                    f'{len(labels)} in {source!r} (config field validation_fraction)')
  info = {'source': absolute, 'num_images': len(labels), 'num_skipped': len(skipped),
          'skipped': skipped, 'cache': folder, 'from_cache': cached is not None}
  return ImageDataset(name=name,
                      train=ArraySplit(images=np.asarray(images[train]), labels=labels[train]),
                      test=ArraySplit(images=np.asarray(images[test]), labels=labels[test]),
                      class_names=class_names, info=info)
