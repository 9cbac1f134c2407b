"""Decode-once cache of image-folder arrays: one folder per key with images.npy, labels.npy and
info.json, written into a temporary sibling and moved into place with os.replace, so a crash never
leaves a half-written cache.

absl is imported on first use: importing mlfun_jax.data must not pull it in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from typing import Any

import numpy as np

FORMAT_VERSION = 1
_FILES = ('images.npy', 'labels.npy', 'info.json')


class DamagedCache(Exception):
  """A cache folder that exists but cannot be trusted; the message says why."""


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> str:
  """`cache_dir` if given, else $MLFUN_CACHE_DIR, else ~/.cache/mlfun_jax."""
  if cache_dir is None:
    cache_dir = os.environ.get('MLFUN_CACHE_DIR') or os.path.join('~', '.cache', 'mlfun_jax')
  return os.path.abspath(os.path.expanduser(os.fspath(cache_dir)))


def cache_folder(root: str, label: str, fields: dict[str, Any]) -> tuple[str, str]:
  """(folder, key): key = sha256 of `fields` (plus FORMAT_VERSION) as canonical JSON.

  The folder is <root>/image_folder/<label>-<key[:20]>; `label` only helps a human find it.
  """
  text = json.dumps({'format': FORMAT_VERSION, **fields}, sort_keys=True, separators=(',', ':'))
  key = hashlib.sha256(text.encode('utf-8')).hexdigest()
  label = re.sub(r'[^A-Za-z0-9_.-]+', '_', label).strip('._') or 'images'
  return os.path.join(root, 'image_folder', f'{label}-{key[:20]}'), key


def read(folder: str, key: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]] | None:
  """Opens a cache folder: (images uint8 [N, H, W, C] memmap, labels int32 [N], info dict).

  Returns None when the folder does not exist.

  Raises:
    DamagedCache: a file is missing, truncated or inconsistent, or it belongs to another key.
  """
  if not os.path.isdir(folder):
    return None
  try:
    with open(os.path.join(folder, 'info.json'), encoding='utf-8') as f:
      info = json.load(f)
    if not isinstance(info, dict) or info.get('key') != key:
      raise DamagedCache('info.json does not carry this cache key')
    images = np.load(os.path.join(folder, 'images.npy'), mmap_mode='r')
    labels = np.load(os.path.join(folder, 'labels.npy'))
    num_images, num_classes = info['num_images'], len(info['class_names'])
    if os.path.getsize(os.path.join(folder, 'images.npy')) != images.offset + images.nbytes:
      raise DamagedCache('images.npy has the wrong size')
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] != num_images:
      raise DamagedCache(f'images.npy is {images.dtype} {images.shape}, info.json says '
                         f'{num_images} images')
    if labels.dtype != np.int32 or labels.shape != (num_images,):
      raise DamagedCache(f'labels.npy is {labels.dtype} {labels.shape}, expected int32 '
                         f'[{num_images}]')
    if num_images and (labels.min() < 0 or labels.max() >= num_classes):
      raise DamagedCache(f'labels.npy spans {labels.min()}..{labels.max()} for {num_classes} '
                         'classes')
  except (OSError, EOFError, ValueError, KeyError, TypeError) as e:  # JSONDecodeError: ValueError
    raise DamagedCache(f'{type(e).__name__}: {e}') from e
  return images, labels, info


def _save(path: str, write) -> None:
  with open(path, 'wb') as f:
    write(f)
    f.flush()
    os.fsync(f.fileno())


def write(folder: str, images: np.ndarray, labels: np.ndarray, info: dict[str, Any]) -> bool:
  """Stores a cache folder atomically; replaces a damaged one. False (with a warning) on OSError.

  Args:
    folder: from `cache_folder`.
    images: uint8 [N, H, W, C].
    labels: int32 [N].
    info: JSON-serialisable; must hold 'key', 'num_images' and 'class_names' (see `read`).
  """
  from absl import logging  # pylint: disable=g-import-not-at-top
  parent = os.path.dirname(folder)
  tmp = None
  try:
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(folder) + '.tmp-', dir=parent)
    _save(os.path.join(tmp, 'images.npy'), lambda f: np.save(f, images))
    _save(os.path.join(tmp, 'labels.npy'), lambda f: np.save(f, labels))
    _save(os.path.join(tmp, 'info.json'),
          lambda f: f.write(json.dumps(info, indent=1).encode('utf-8')))
    if os.path.lexists(folder):  # Damaged (a sound one would have been used): move it aside.
      trash = tempfile.mkdtemp(prefix=os.path.basename(folder) + '.damaged-', dir=parent)
      os.replace(folder, os.path.join(trash, 'old'))
      shutil.rmtree(trash, ignore_errors=True)
    os.replace(tmp, folder)
    return True
  except OSError as e:
    logging.warning('Could not write the image cache %s (%s); continuing without it.', folder, e)
    if tmp:
      shutil.rmtree(tmp, ignore_errors=True)
    return False
