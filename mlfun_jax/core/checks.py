"""Input-convention checks for public functions: one clear error for images, ids or arrays that do
not follow the documented convention (dtype, rank, shape, value range).

Dtype and shape checks run anywhere (also while jit/pmap trace); value checks (ranges, ids inside a
vocabulary) only on concrete arrays, never on tracers.
"""

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from mlfun_jax.core.errors import UserError

_KIND_NAMES = {"u": "unsigned integer", "i": "integer", "f": "floating-point", "b": "boolean"}


class InputConventionError(UserError, ValueError):
  """An argument that does not follow its function's documented input convention."""


InputError = InputConventionError  # The same error under its shorter name.


def is_concrete(x: Any) -> bool:
  """False for a value traced under jit/pmap/vmap/grad (its values are unknown)."""
  return not isinstance(x, jax.core.Tracer)


def _describe(x: Any) -> str:
  return f"{np.dtype(x.dtype).name} of shape {tuple(x.shape)}"


def check_array(x: Any, *, name: str, expected: str, dtype_kinds: str | None = None,
                rank: int | None = None, shape: Sequence[int | None] | None = None,
                value_range: tuple[float, float] | None = None) -> None:
  """Raises InputConventionError unless `x` has the given dtype kinds, rank, trailing shape and
  (concrete arrays only) values within the closed `value_range`.

  Args:
    x: a numpy or JAX array (or a tracer).
    name: the argument's name, for the message.
    expected: the convention in words, e.g. 'uint8 images [B, H, W, C] with values 0..255'.
    dtype_kinds: numpy dtype kinds allowed ('u' unsigned int, 'i' int, 'f' float, 'b' bool).
    rank: the number of axes required.
    shape: the trailing axes required (None: any length).
    value_range: (low, high) every value must lie in (skipped for tracers and empty arrays).
  """
  if not hasattr(x, "dtype") or not hasattr(x, "shape"):
    raise InputConventionError(f"{name}: expected {expected}, got {type(x).__name__}")
  dtype = np.dtype(x.dtype)
  if dtype_kinds is not None and dtype.kind not in dtype_kinds:
    raise InputConventionError(f"{name}: expected {expected}, got {_describe(x)}")
  if rank is not None and len(x.shape) != rank:
    raise InputConventionError(f"{name}: expected {expected}, got {_describe(x)}")
  if shape is not None:
    shape = tuple(shape)
    trailing = tuple(x.shape[len(x.shape) - len(shape):]) if len(shape) <= len(x.shape) else None
    if trailing is None or any(s is not None and s != t for s, t in zip(shape, trailing)):
      raise InputConventionError(f"{name}: expected {expected}, got {_describe(x)}")
  if value_range is not None and is_concrete(x) and x.size:
    low, high = value_range
    values = np.asarray(x)
    lowest, highest = values.min(), values.max()
    if not (lowest >= low and highest <= high):  # Also refuses NaN.
      raise InputConventionError(f"{name}: expected {expected}, got values in "
                                 f"[{lowest}, {highest}]")


def check_images(x: Any, *, name: str, dtype_kind: str, value_range: tuple[float, float] | None
                 = None, rank: int = 4, shape: Sequence[int | None] | None = None) -> None:
  """Raises InputConventionError unless `x` is a batch of images of one convention.

  Args:
    x: images, [B, H, W, C] for rank 4 (rank 3: [H, W, C]; rank 2: [H, W]).
    name: the argument's name, for the message.
    dtype_kind: 'u' (uint8 0..255: the range is implied by the dtype) or 'f' (floats).
    value_range: for floats, the closed range values must lie in (None: any values).
    rank: the number of axes required.
    shape: the trailing axes required, e.g. (H, W, C) (None entries: any length).
  """
  letters = {4: ["B", "H", "W", "C"], 3: ["H", "W", "C"], 2: ["H", "W"]}.get(rank)
  if letters is None:
    axes = f"of rank {rank}"
  else:
    if shape is not None and len(tuple(shape)) <= rank:
      sizes = tuple(shape)
      letters[rank - len(sizes):] = [str(n) if n is not None else letter for n, letter in
                                     zip(sizes, letters[rank - len(sizes):])]
    axes = f"[{', '.join(letters)}]"
  if dtype_kind == "u":
    expected = f"uint8 images {axes} with values 0..255"
    kinds = "u"
  else:
    kinds = dtype_kind
    values = "" if value_range is None else f" in [{value_range[0]}, {value_range[1]}]"
    expected = f"{_KIND_NAMES.get(dtype_kind, dtype_kind)} images {axes}{values}"
  if dtype_kind == "u" and hasattr(x, "dtype") and np.dtype(x.dtype) != np.uint8:
    raise InputConventionError(f"{name}: expected {expected}, got {_describe(x)}")
  check_array(x, name=name, expected=expected, dtype_kinds=kinds, rank=rank, shape=shape,
              value_range=value_range)


def _axes(rank: int | None, shape: Any) -> str:
  """' [B, T]' for a shape description (str), else ' of rank R' (or '')."""
  if isinstance(shape, str):
    return f" {shape}"
  return "" if rank is None else f" of rank {rank}"


def check_ids(ids: Any, *, name: str, vocab_size: int | None = None, rank: int | None = None,
              shape: str | Sequence[int | None] | None = None,
              empty_any_dtype: bool = False) -> None:
  """Raises InputConventionError unless `ids` are integers (of `rank` axes) in 0..vocab_size-1.

  ids: an array (or a list, read as one). vocab_size None: any integers (e.g. person labels).
  shape: the axes in words for the message (e.g. '[B, T]'), or the trailing sizes required. The
  range is checked on concrete arrays only. empty_any_dtype: an empty array passes the dtype check
  whatever its dtype (`np.asarray([])` is float64); its rank and shape are still checked.
  """
  if not hasattr(ids, "dtype"):
    ids = np.asarray(ids)
  sizes = None if shape is None or isinstance(shape, str) else shape
  kinds = None if empty_any_dtype and not np.size(ids) else "iu"
  expected = f"integer ids{_axes(rank, shape)}"
  if vocab_size is None:
    check_array(ids, name=name, expected=expected, dtype_kinds=kinds, rank=rank, shape=sizes)
    return
  check_array(ids, name=name, expected=f"{expected} in 0..{vocab_size - 1}", dtype_kinds=kinds,
              rank=rank, shape=sizes, value_range=(0, vocab_size - 1))


def check_floats(x: Any, *, name: str, rank: int | None = None,
                 shape: str | Sequence[int | None] | None = None,
                 value_range: tuple[float, float] | None = None) -> None:
  """Raises InputConventionError unless `x` is a float array (of `rank` axes; values in the closed
  `value_range`, checked on concrete arrays only). shape: as for `check_ids`."""
  if not hasattr(x, "dtype"):
    x = np.asarray(x)
  sizes = None if shape is None or isinstance(shape, str) else shape
  values = "" if value_range is None else f" in [{value_range[0]}, {value_range[1]}]"
  check_array(x, name=name, expected=f"floats{_axes(rank, shape)}{values}", dtype_kinds="f",
              rank=rank, shape=sizes, value_range=value_range)


def check_text(text: Any, *, name: str) -> None:
  """Raises InputConventionError unless `text` is one str."""
  if not isinstance(text, str):
    raise InputConventionError(f"{name}: expected one str, got {type(text).__name__}")


def check_texts(texts: Any, *, name: str) -> None:
  """Raises InputConventionError unless `texts` is a list or tuple of str (not one str)."""
  if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
    raise InputConventionError(f"{name}: expected a list of str, got {type(texts).__name__}")
  for i, text in enumerate(texts):
    if not isinstance(text, str):
      raise InputConventionError(f"{name}: expected a list of str, got {type(text).__name__} at "
                                 f"index {i}")
