"""Scalar metrics to `metrics.jsonl` (one JSON object per write) and TensorBoard event files.

Only one process (process 0) writes; the others get a writer that does nothing. The workdir may be
a local folder or a bucket URL (gs://..., through etils.epath and gcsfs); buckets cannot append, so
there the whole file is rewritten on each write (metrics files are small).
"""

import json
import math
import os
from typing import Any

from absl import logging
from etils import epath

from mlfun_jax.core import event_files
from mlfun_jax.core.errors import UserError

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def _to_json_number(value: Any) -> float | int | None:
  value = float(value)
  if math.isnan(value) or math.isinf(value):
    return None
  return int(value) if value.is_integer() and abs(value) < 2**53 else value


class MetricWriter:
  """Appends `{"step": N, name: value, ...}` lines to DIR/metrics.jsonl and scalars to DIR/tensorboard/."""

  def __init__(self, workdir: str, *, enabled: bool = True):
    self.enabled = enabled
    self.path = epath.Path(workdir) / METRICS_FILE
    self._appendable = "://" not in workdir
    self._lines: list[str] | None = None  # The file's lines, kept where it cannot be appended to.
    self._tensorboard = None  # Opened on the first write (a new event file), after truncate_after.
    if enabled:
      epath.Path(workdir).mkdir(parents=True, exist_ok=True)

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step` (a resumed run re-logs them: history stays single-valued),
    and lines cut off by a crash or a full disk (with a warning); TensorBoard's event files are cut
    back the same way."""
    if not self.enabled:
      return
    event_files.truncate_after(str(self.path.parent / TENSORBOARD_DIR), step)
    if not self.path.exists():
      return
    text = self.path.read_text(encoding="utf-8")
    records, damaged = _parse(text)
    for number in damaged:
      logging.warning("%s line %d is cut off or damaged: dropped.", self.path, number)
    kept = [json.dumps(record) + "\n" for record in records if record["step"] <= step]
    if "".join(kept) == text:
      return
    if self._appendable:
      tmp = self.path.with_name(METRICS_FILE + ".tmp")
      tmp.write_text("".join(kept), encoding="utf-8")
      os.replace(tmp, self.path)
    else:
      self._lines = kept
      self.path.write_text("".join(kept), encoding="utf-8")

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    """Records scalar `metrics` at `step` (NaN/inf are written as null in JSON)."""
    if not self.enabled:
      return
    try:
      self._write(step, metrics)
    except OSError as e:
      raise UserError(f"cannot write the metrics of step {step} to {e.filename or self.path}: "
                      f"{e.strerror or e}; the same command resumes from the last checkpoint "
                      "once the cause is gone") from e

  def _write(self, step: int, metrics: dict[str, Any]) -> None:
    record = {"step": int(step)}
    record.update({name: _to_json_number(value) for name, value in metrics.items()})
    line = json.dumps(record) + "\n"
    if self._appendable:
      with open(self.path, "a", encoding="utf-8") as f:
        f.write(line)
    else:
      if self._lines is None:
        self._lines = (self.path.read_text(encoding="utf-8").splitlines(keepends=True)
                       if self.path.exists() else [])
      self._lines.append(line)
      self.path.write_text("".join(self._lines), encoding="utf-8")
    if self._tensorboard is None:
      self._tensorboard = event_files.EventFile(str(self.path.parent / TENSORBOARD_DIR))
    self._tensorboard.add_scalars(step, metrics)

  def close(self) -> None:
    pass

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *unused) -> None:
    self.close()


def _parse(text: str) -> tuple[list[dict[str, Any]], list[int]]:
  """(The records of a metrics.jsonl text, the 1-based numbers of its damaged lines): a line that
  is not a JSON object with an integer "step" is damaged (e.g. cut off by a crash mid-write)."""
  records, damaged = [], []
  for number, line in enumerate(text.splitlines(), start=1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError:
      record = None
    if isinstance(record, dict) and isinstance(record.get("step"), int):
      records.append(record)
    else:
      damaged.append(number)
  return records, damaged


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All records of DIR/metrics.jsonl, in order (a damaged line, e.g. one cut off by a crash, is
  left out)."""
  with open(os.path.join(workdir, METRICS_FILE), encoding="utf-8") as f:
    return _parse(f.read())[0]


def last_summary(workdir: str) -> dict[str, float]:
  """The latest value of every train_* and eval_* metric in DIR/metrics.jsonl ({} without it):
  what a finished run reported at its end."""
  if not os.path.exists(os.path.join(workdir, METRICS_FILE)):
    return {}
  summary = {}
  for record in read_metrics(workdir):
    summary.update({name: float("nan") if value is None else value
                    for name, value in record.items() if name.startswith(("train_", "eval_"))})
  return summary
