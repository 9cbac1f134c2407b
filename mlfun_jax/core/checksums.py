"""CRC-32 checksums of a pytree's arrays (with dtype and shape), keyed by each array's path
('params/Dense_0/kernel').

A checkpoint records them beside its state and checks them on every restore: a flipped byte in a
data file (same size, so orbax reads it without complaint) shows up as a mismatch. The paths are
the same for a train state (a flax struct) and for the nested dicts orbax gives back without a
template, so either restore can be checked.
"""

from typing import Any
import zlib

import jax
import numpy as np

ALGORITHM = "crc32"


def _name(key: Any) -> str:
  for attribute in ("key", "name", "idx"):  # DictKey, GetAttrKey, SequenceKey/FlattenedIndexKey.
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def path_name(path: tuple[Any, ...]) -> str:
  """'params/Dense_0/kernel' for a jax key path."""
  return "/".join(_name(key) for key in path)


def _sum(array: np.ndarray) -> str:
  """'crc32-hex dtype shape', e.g. '783749d9 <i4 (2, 3)'."""
  return f"{zlib.crc32(np.ascontiguousarray(array).tobytes()):08x} {array.dtype.str} {array.shape}"


def of_tree(tree: Any) -> dict[str, str]:
  """{path: 'crc32-hex dtype shape'} of every array leaf (host or device arrays)."""
  return {path_name(path): _sum(np.asarray(leaf))
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _as_saved(array: np.ndarray, expected: str | None) -> np.ndarray:
  """`array` in the dtype `expected` records, when converting is exact (a restore may widen the
  step counter's int32 to the template's int64)."""
  try:
    dtype = np.dtype(expected.split(" ")[1])
  except (AttributeError, IndexError, TypeError):
    return array
  if dtype == array.dtype:
    return array
  converted = array.astype(dtype)
  return converted if np.array_equal(converted.astype(array.dtype), array) else array


def mismatches(tree: Any, expected: dict[str, str]) -> list[str]:
  """Paths of `tree` whose arrays do not match `expected` (a result of `of_tree`), and paths that
  are in one but not the other; empty when everything matches."""
  actual = {path_name(path): np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}
  return sorted(name for name in set(actual) | set(expected)
                if name not in actual or name not in expected
                or _sum(_as_saved(actual[name], expected[name])) != expected[name])


def first_non_finite(tree: Any) -> tuple[Any, ...] | None:
  """The key path of the first float array of `tree` holding NaN or inf; None when all are
  finite."""
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    leaf = np.asarray(leaf)
    if np.issubdtype(leaf.dtype, np.inexact) and not np.all(np.isfinite(leaf)):
      return path
  return None
