"""Scalar metrics to `metrics.jsonl` (one JSON object per write) and TensorBoard event files.

Only one process (process 0) writes; the others get a writer that does nothing.
"""

import json
import math
import os
from typing import Any

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
    self.path = os.path.join(workdir, METRICS_FILE)
    self._tensorboard = None
    if enabled:
      os.makedirs(workdir, exist_ok=True)
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def truncate_after(self, step: int) -> None:
    """Drops lines logged after `step` (a resumed run re-logs them: history stays single-valued)."""
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path, encoding="utf-8") as f:
      kept = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    tmp = self.path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      f.writelines(kept)
    os.replace(tmp, self.path)

  def write(self, step: int, metrics: dict[str, Any]) -> None:
    """Records scalar `metrics` at `step` (NaN/inf are written as null in JSON)."""
    if not self.enabled:
      return
    record = {"step": int(step)}
    record.update({name: _to_json_number(value) for name, value in metrics.items()})
    with open(self.path, "a", encoding="utf-8") as f:
      f.write(json.dumps(record) + "\n")
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
