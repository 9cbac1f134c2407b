"""Input-convention checks of the speech family: one clear line instead of a silently wrong answer.

Each check raises `InputError` (a UserError and a ValueError) with a one-line message naming the
argument and what was expected. dtype, rank and type checks run anywhere (shapes are static under
jit); value checks (ranges, ids) run only on concrete arrays, never on tracers inside jit/pmap.
Waveform checks (`audio.check_waves`) and logits-vs-alphabet checks (`ctc_decode.check_logits`)
build on these.
"""

from typing import Any

import jax
import numpy as np

from mlfun_jax.core.errors import UserError


class InputError(UserError, ValueError):
  """An argument in another convention (type, dtype, shape or value range) than the one taken."""


def is_traced(x: Any) -> bool:
  """True for a jax tracer (inside jit, pmap, grad, ...): its values are unknown."""
  return isinstance(x, jax.core.Tracer)


def _as_array(x: Any) -> Any:
  """`x` itself when it is an array (numpy, jax or a tracer), else `np.asarray(x)`."""
  return x if hasattr(x, "dtype") and hasattr(x, "ndim") else np.asarray(x)


def _describe(x: Any) -> str:
  return f"{x.dtype} {list(x.shape)}"


def check_rank(x: Any, *, name: str, rank: int, shape: str = "") -> None:
  """InputError unless `x` has `rank` axes (`shape` names them in the message, e.g. '[B, T]')."""
  x = _as_array(x)
  if x.ndim != rank:
    raise InputError(f"{name} must have shape {shape or f'rank {rank}'}, got {_describe(x)}")


def check_ids(ids: Any, *, name: str, vocab_size: int | None = None, rank: int | None = None,
              shape: str = "") -> None:
  """InputError unless `ids` are integers of `rank` axes with values in 0..vocab_size-1 (values
  checked on concrete arrays only; an empty array passes)."""
  x = _as_array(ids)
  if x.size and not np.issubdtype(x.dtype, np.integer):
    raise InputError(f"{name} must be integer ids, got {_describe(x)}")
  if rank is not None:
    check_rank(x, name=name, rank=rank, shape=shape)
  if vocab_size is None or is_traced(x) or not x.size:
    return
  values = np.asarray(x)
  low, high = int(values.min()), int(values.max())
  if low < 0 or high >= vocab_size:
    raise InputError(f"{name} must hold ids in 0..{vocab_size - 1}, got ids in {low}..{high}")


def check_floats(x: Any, *, name: str, rank: int | None = None, shape: str = "") -> None:
  """InputError unless `x` is a float array of `rank` axes."""
  x = _as_array(x)
  if not np.issubdtype(x.dtype, np.floating):
    raise InputError(f"{name} must be floats, got {_describe(x)}")
  if rank is not None:
    check_rank(x, name=name, rank=rank, shape=shape)


def check_text(text: Any, *, name: str) -> None:
  """InputError unless `text` is one str (not a list of them, not bytes)."""
  if not isinstance(text, str):
    raise InputError(f"{name} must be one str, got {type(text).__name__}"
                     + (" (a batch: pass its items one at a time)"
                        if isinstance(text, (list, tuple)) else ""))
