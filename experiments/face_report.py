r"""Summarises the unseen-people measures of several face runs (e.g. one per identity-split seed).

  mlfun-face-report workdirs/faces_orl_s0 workdirs/faces_orl_s1 ...

Reads each WORKDIR/report.json (written at the end of a faces run) and prints one line per
measure: mean +- standard deviation (over runs), min and max. With --remeasure the measures are
computed again from each workdir's latest checkpoint instead (nothing is written), with
--test_time_augmentation choosing how faces are embedded, --threshold_impostors how the
threshold is picked and --tolerance the distance recognize names within (defaults: as the run
was configured):

  mlfun-face-report --remeasure --test_time_augmentation \
      --threshold_impostors=validation+train workdirs/faces_orl_s*
"""

import json
import math
import os

from absl import app
from absl import flags
import numpy as np

from mlfun_jax.core import cli
from mlfun_jax.faces import measures as face_measures
from mlfun_jax.core.errors import UserError

_REMEASURE = flags.DEFINE_bool("remeasure", False, "Measure the test people again from each "
                               "workdir's latest checkpoint instead of reading report.json.")
_TTA = flags.DEFINE_bool("test_time_augmentation", None, "With --remeasure: embed each face as the "
                         "mean of 6 views (default: as the run was configured).")
_TOLERANCE = flags.DEFINE_float("tolerance", None, "With --remeasure: recognize's tolerance "
                                "(default: the run's config field tolerance; None there: picked "
                                "on the validation people).")
flags.register_validator("tolerance", lambda value: value is None or value > 0,
                         message="must be a distance > 0")
_EMBEDDER = flags.DEFINE_enum("embedder", None, ("network", "dlib_resnet"), "With --remeasure: "
                              "what embeds the faces (default: the run's config field embedder).")
_IMPOSTORS = flags.DEFINE_enum("threshold_impostors", None, face_measures.THRESHOLD_IMPOSTORS,
                               "With --remeasure: the different-person pairs the threshold is "
                               "picked on (default: as the run was configured).")

MEASURES = ("recognize_top1", "tolerance", "strangers_unknown", "accuracy", "balanced_accuracy",
            "auc", "tar_at_far_1pct", "nearest_neighbour_top1",
            "linear_top1", "linear_top1_5_enrolled", "threshold", "validation_pairs_accuracy",
            "validation_pairs_balanced_accuracy", "validation_pairs_threshold")


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


def read_report(workdir: str) -> dict:
  """The report.json a finished faces run wrote."""
  path = os.path.join(workdir, "report.json")
  if not os.path.isfile(path):
    raise UserError(f"{path} does not exist (is {workdir} a finished faces run?)")
  try:
    with open(path, encoding="utf-8") as f:
      report = json.load(f)
  except (UnicodeDecodeError, json.JSONDecodeError) as e:
    raise UserError(f"{path} is not a readable report (not JSON: {e}); run the faces run again or "
                    "use --remeasure") from e
  test = report.get("test") if isinstance(report, dict) else None
  if not isinstance(test, dict) or not test:
    raise UserError(f"{path} has no 'test' measures; is {workdir} a finished faces run?")
  for name in MEASURES:
    value = test.get(name)
    if name in test and (isinstance(value, bool) or not isinstance(value, (int, float))
                         or not math.isfinite(value)):
      raise UserError(f"{path}: test measure {name!r} is {value!r}, not a finite number")
  return report


def remeasure(workdir: str, test_time_augmentation: bool | None,
              threshold_impostors: str | None = None, tolerance: float | None = None,
              embedder: str | None = None) -> dict:
  """{'split_seed', 'test'}: the unseen-people measures of the workdir's latest checkpoint, faces
  embedded with or without test-time augmentation (by `embedder`, one of
  `inference.EMBEDDERS`; None: the run's) and the threshold picked with `threshold_impostors`
  (None: as the run was configured) and recognize's `tolerance` (None: the embedder's)."""
  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import inference
  from mlfun_jax.faces import task as faces
  # pylint: enable=g-import-not-at-top
  trained = inference.TrainedFaceEmbedder(workdir, test_time_augmentation, embedder)
  impostors = threshold_impostors or trained.config.threshold_impostors
  dataset = faces.load_dataset(trained.config, orl_frame=trained.kind == "dlib_resnet")
  if tolerance is None:  # The network's tolerance may be picked on the validation people.
    tolerance = trained.config.tolerance if trained.kind == "network" else trained.tolerance
  results = face_measures.measure_unseen(trained.embedder, trained.params, dataset, impostors,
                                         tolerance, trained.config.tolerance_keep)
  return {"split_seed": trained.config.split_seed, "test": results["test"]}


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("give one or more workdirs of faces runs")
  if ((_TTA.value is not None or _IMPOSTORS.value or _TOLERANCE.value is not None
       or _EMBEDDER.value) and not _REMEASURE.value):
    raise app.UsageError("--test_time_augmentation, --threshold_impostors, --tolerance and "
                         "--embedder need --remeasure")
  repeated = sorted({w for w in argv[1:] if argv[1:].count(w) > 1})
  if repeated:
    raise app.UsageError(f"workdir {repeated[0]!r} is given more than once (it would count twice "
                         "in the mean)")
  with cli.user_errors():
    reports = [remeasure(w, _TTA.value, _IMPOSTORS.value, _TOLERANCE.value, _EMBEDDER.value)
               if _REMEASURE.value
               else read_report(w)
               for w in argv[1:]]
    print(f"test people of {len(reports)} runs (split seeds "
          f"{', '.join(str(r.get('split_seed')) for r in reports)}):")
    for name, s in summarise(reports).items():
      print(f"  {name:34s} {s['mean']:.4f} +- {s['std']:.4f}  (min {s['min']:.4f}, "
            f"max {s['max']:.4f})")


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
