"""One run per workdir: WORKDIR/run.lock names the run that holds it (host, pid, start time).

The lock file is created exclusively (`O_CREAT | O_EXCL`), so of two runs started together exactly
one gets it. A lock left by a process that is gone (kill -9, a crash, a reboot) on this same host is
taken over with a warning; one held by a live process, or by a process on another host, stops the
new run with one line naming its owner (remove the file by hand once that run is surely gone).
The holder may take it again (nested runs of one process: the outer one releases it).
Bucket workdirs (gs://...) have no atomic exclusive create and are not locked: there, the job
scheduler must start one run per workdir.
"""

import contextlib
import datetime
import json
import os
import socket
from collections.abc import Iterator

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np

from mlfun_jax.core.errors import UserError

LOCK_FILE = "run.lock"


def _start_ticks(pid: int) -> str | None:
  """The process' start time in clock ticks since boot (tells a reused pid apart), or None."""
  try:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
      return f.read().rsplit(")", 1)[1].split()[19]
  except (OSError, IndexError):
    return None


def _alive(owner: dict) -> bool:
  pid = owner.get("pid")
  if not isinstance(pid, int) or pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Somebody else's live process.
  started = _start_ticks(pid)
  return started is None or owner.get("start_ticks") in (None, started)


def _me() -> dict:
  return {"host": socket.gethostname(), "pid": os.getpid(), "start_ticks": _start_ticks(os.getpid()),
          "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def _describe(owner: dict) -> str:
  return (f"pid {owner.get('pid')} on host {owner.get('host')} "
          f"(since {owner.get('since', 'an unknown time')})")


def _read(path: str) -> dict | None:
  try:
    with open(path, encoding="utf-8") as f:
      owner = json.load(f)
    return owner if isinstance(owner, dict) else {}
  except FileNotFoundError:
    return None
  except (OSError, ValueError):
    return {}  # Cut off or unreadable: an owner we cannot name (a crash mid-write).


def _create(path: str, me: dict) -> bool:
  try:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
  except FileExistsError:
    return False
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    json.dump(me, f)
  return True


def acquire(workdir: str) -> bool:
  """Takes WORKDIR/run.lock for this process; False when this process already holds it.

  Raises:
    UserError: when another live run holds it (naming its host and pid), or the workdir cannot be
      written.
  """
  path = os.path.join(workdir, LOCK_FILE)
  me = _me()
  for _ in range(3):  # Another run may take over the same stale lock between our steps.
    if _create(path, me):
      return True
    owner = _read(path)
    if owner is None:  # Released in the meantime.
      continue
    if owner.get("host") == me["host"] and owner.get("pid") == me["pid"]:
      return False
    if owner.get("host") == me["host"] and not _alive(owner):
      logging.warning("Taking over the lock %s of %s: that process is gone.", path,
                      _describe(owner) if owner else "a run whose lock file is unreadable")
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
      continue
    if not owner:
      raise UserError(f"workdir {workdir} is locked by {path}, which is unreadable; remove it if "
                      "no run uses this workdir")
    where = "" if owner.get("host") == me["host"] else (
        f"; if that run is gone, remove {path}")
    raise UserError(f"workdir {workdir} is in use by another run: {_describe(owner)}{where}; "
                    "use another --workdir or wait for it to finish")
  raise UserError(f"workdir {workdir}: could not take the lock {path} (other runs keep taking it)")


def release(workdir: str) -> None:
  """Removes WORKDIR/run.lock if this process holds it."""
  path = os.path.join(workdir, LOCK_FILE)
  owner = _read(path)
  if owner and owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)


def _acquire_in_process_0(workdir: str) -> bool:
  """`acquire` by process 0 of a multi-process run; every process raises when it fails."""
  error, taken = None, False
  if jax.process_index() == 0:
    try:
      taken = acquire(workdir)
    except UserError as e:
      error = e
  failed = multihost_utils.broadcast_one_to_all(np.int32(error is not None))
  if error is not None:
    raise error
  if int(failed):
    raise UserError(f"workdir {workdir}: process 0 could not take the lock (see its log)")
  return taken


@contextlib.contextmanager
def held(workdir: str) -> Iterator[None]:
  """Holds WORKDIR/run.lock for the `with` block (the workdir is created if needed).

  In a multi-process run process 0 holds it for all. Does nothing for a bucket workdir.
  Re-entrant within one process.

  Raises:
    UserError: the workdir is in use by another run, or it cannot be created or written.
  """
  if "://" in workdir:
    yield
    return
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create workdir {workdir}: {e.strerror or e}") from e
  try:
    taken = (acquire(workdir) if jax.process_count() == 1 else _acquire_in_process_0(workdir))
  except OSError as e:
    raise UserError(f"cannot write the lock in workdir {workdir}: {e.strerror or e}") from e
  try:
    yield
  finally:
    if taken:
      release(workdir)
