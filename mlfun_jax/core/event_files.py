"""TensorBoard event files, written in the caller's thread and cut back to a step on resume.

An event file is a sequence of TFRecords: length (uint64), its masked CRC-32C, the serialized
`Event`, the data's masked CRC-32C. `EventFile` appends one record per call and flushes it, so a
failed write (a full disk) raises where it happens instead of in a background thread. A resumed
run re-logs the steps after its checkpoint, so `truncate_after` keeps each file's records up to
that step (and its header record); a record cut off by a crash, or one whose checksums do not
match, ends the file there. Files are rewritten atomically.
"""

import os
import socket
import struct
import time

from absl import logging
from etils import epath
from tensorboardX.proto import event_pb2
from tensorboardX.record_writer import masked_crc32c

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")


def read_records(data: bytes) -> tuple[list[bytes], bool]:
  """(The whole records of an event file's bytes, in order; whether anything after them was cut
  off or damaged)."""
  records, offset = [], 0
  while offset < len(data):
    header = data[offset:offset + _LENGTH.size]
    end = offset + _LENGTH.size + _CRC.size
    if len(header) < _LENGTH.size or end > len(data):
      return records, True
    if _CRC.unpack_from(data, offset + _LENGTH.size)[0] != masked_crc32c(header):
      return records, True
    (length,) = _LENGTH.unpack(header)
    record = data[end:end + length]
    if len(record) < length or end + length + _CRC.size > len(data):
      return records, True
    if _CRC.unpack_from(data, end + length)[0] != masked_crc32c(record):
      return records, True
    records.append(record)
    offset = end + length + _CRC.size
  return records, False


def encode_record(record: bytes) -> bytes:
  header = _LENGTH.pack(len(record))
  return (header + _CRC.pack(masked_crc32c(header)) + record + _CRC.pack(masked_crc32c(record)))


def _kept(record: bytes, step: int) -> bool:
  event = event_pb2.Event()
  try:
    event.ParseFromString(record)
  except Exception:  # pylint: disable=broad-except  # protobuf's DecodeError
    return False
  return event.HasField("file_version") or event.step <= step


def truncate_after(folder: str, step: int) -> None:
  """Drops the events after `step` (and cut-off or damaged tails) from every event file in
  `folder`; files with nothing to drop stay untouched."""
  if not os.path.isdir(folder):
    return
  for name in sorted(os.listdir(folder)):
    if "tfevents" not in name or name.endswith(".tmp"):
      continue
    path = os.path.join(folder, name)
    with open(path, "rb") as f:
      data = f.read()
    records, damaged = read_records(data)
    kept = [record for record in records if _kept(record, step)]
    if not damaged and len(kept) == len(records):
      continue
    if damaged:
      logging.warning("TensorBoard file %s ends in a cut-off or damaged record: dropped.", path)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
      f.write(b"".join(encode_record(record) for record in kept))
    os.replace(tmp, path)


class EventFile:
  """A new event file in `folder` (a local folder, created if needed, or a bucket URL) that
  scalars are appended to. A bucket cannot append: there the whole file is rewritten each time."""

  def __init__(self, folder: str):
    now = time.time()
    name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}"
    self._appendable = "://" not in folder
    self._written = b""  # Kept where the file cannot be appended to.
    if self._appendable:
      os.makedirs(folder, exist_ok=True)
      self.path = os.path.join(folder, name)
    else:
      epath.Path(folder).mkdir(parents=True, exist_ok=True)
      self.path = epath.Path(folder) / name
    self._append(event_pb2.Event(wall_time=now, file_version="brain.Event:2"))

  def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
    """Appends one event holding `scalars` (name -> value) at `step`, written before returning."""
    event = event_pb2.Event(wall_time=time.time(), step=int(step))
    for name, value in scalars.items():
      event.summary.value.add(tag=name, simple_value=float(value))
    self._append(event)

  def _append(self, event: event_pb2.Event) -> None:
    record = encode_record(event.SerializeToString())
    if self._appendable:
      with open(self.path, "ab") as f:
        f.write(record)
    else:
      self._written += record
      self.path.write_bytes(self._written)
