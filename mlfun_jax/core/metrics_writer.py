"""Scalar metrics to `metrics.jsonl` (one JSON object per write) and TensorBoard event files.

Only one process (process 0) writes; the others get a writer that does nothing. The workdir may be
a local folder or a bucket URL (gs://..., through etils.epath and gcsfs); buckets cannot append, so
there the whole file is rewritten on each write (metrics files are small).
"""

import json
import math
import os
from typing import Any

from etils import epath

METRICS_FILE = "metrics.jsonl"


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
    self._tensorboard = None
    if enabled:
      epath.Path(workdir).mkdir(parents=True, exist_ok=True)
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tensorboard = SummaryWriter(str(epath.Path(workdir) / "tensorboard"))

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step` (a resumed run re-logs them: history stays single-valued)."""
    if not self.enabled or not self.path.exists():
      return
    lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
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
    for name, value in metrics.items():
      self._tensorboard.add_scalar(name, float(value), int(step))
    self._tensorboard.flush()

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()

  def __enter__(self) -> "MetricWriter":
    return self

  def __exit__(self, *unused) -> None:
    self.close()


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  """All records of DIR/metrics.jsonl, in order."""
  with open(os.path.join(workdir, METRICS_FILE), encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]
