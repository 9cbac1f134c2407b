"""Summarises the unseen-people measures of several face runs (e.g. one per identity-split seed).

  python -m experiments.face_report workdirs/faces_orl_s0 workdirs/faces_orl_s1 ...

Reads each WORKDIR/report.json (written at the end of a faces run) and prints one line per
measure: mean +- standard deviation (over runs), min and max.
"""

import json
import os

from absl import app
import numpy as np

from mlfun_jax import cli
from mlfun_jax.errors import UserError

MEASURES = ("accuracy", "balanced_accuracy", "auc", "tar_at_far_1pct", "nearest_neighbour_top1",
            "linear_top1", "linear_top1_5_enrolled", "threshold", "pooled_accuracy",
            "pooled_balanced_accuracy", "pooled_threshold")


def summarise(reports: list[dict]) -> dict[str, dict[str, float]]:
  """{measure: {'mean', 'std', 'min', 'max'}} of the test measures of `reports`."""
  out = {}
  for name in MEASURES:
    if not all(name in r["test"] for r in reports):  # Reports written before it was measured.
      continue
    values = np.array([r["test"][name] for r in reports], np.float64)
    out[name] = {"mean": float(values.mean()), "std": float(values.std()),
                 "min": float(values.min()), "max": float(values.max())}
  return out


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("give one or more workdirs of faces runs")
  with cli.user_errors():
    reports = []
    for workdir in argv[1:]:
      path = os.path.join(workdir, "report.json")
      if not os.path.isfile(path):
        raise UserError(f"{path} does not exist (is {workdir} a finished faces run?)")
      with open(path, encoding="utf-8") as f:
        reports.append(json.load(f))
    print(f"test people of {len(reports)} runs (split seeds "
          f"{', '.join(str(r.get('split_seed')) for r in reports)}):")
    for name, s in summarise(reports).items():
      print(f"  {name:24s} {s['mean']:.4f} +- {s['std']:.4f}  (min {s['min']:.4f}, "
            f"max {s['max']:.4f})")


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
