"""Small named arrays with a JSON record, in one checksummed .npz file written atomically.

For what a run keeps beside its checkpoint that is not a train state (a linear detector's weights,
a landmark locator's parameters): a crash never leaves half a file, and a flipped byte or a file
of another kind is one line naming the file, never a silently wrong array.
"""

import io
import json
import os
from typing import Any
import zipfile

import numpy as np

from mlfun_jax.core import checksums
from mlfun_jax.core import files
from mlfun_jax.core.errors import UserError

_RECORD = "__record__"  # The .npz entry holding the JSON record (meta and checksums).


def save(path, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> str:
  """Writes `arrays` (name -> array; names without '/') and the JSON-able `meta` to `path` (.npz),
  atomically, with a CRC-32 of every array; returns `path`."""
  arrays = {name: np.asarray(value) for name, value in arrays.items()}
  record = {"meta": meta or {}, "checksums": checksums.of_tree(arrays)}
  record_bytes = np.frombuffer(json.dumps(record).encode("utf-8"), np.uint8)
  return files.write_atomically(
      path, lambda f: np.savez(f, **arrays, **{_RECORD: record_bytes}))


def load(path, noun: str = "array file") -> tuple[dict[str, np.ndarray], dict[str, Any]]:
  """(arrays, meta) saved by `save`.

  Raises:
    UserError: `path` is missing, is not such a file, or an array fails its checksum (one line
      naming `path` and, for a checksum, the array).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f"{noun} {path!r} does not exist")
  try:
    with open(path, "rb") as f:
      data = f.read()
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
      loaded = {name: npz[name] for name in npz.files}
    record = json.loads(loaded.pop(_RECORD).tobytes().decode("utf-8"))
    expected, meta = record["checksums"], record["meta"]
  except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
          UnicodeDecodeError) as e:
    raise UserError(f"{noun} {path!r} is damaged or not an mlfun_jax array file "
                    f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})"
                    ) from e
  bad = checksums.mismatches(loaded, expected)
  if bad:
    raise UserError(f"{noun} {path!r} is damaged: array {bad[0]!r} fails its checksum")
  return loaded, meta
