"""Face detection without network: AP@0.5 and recall at 1 false positive per image, per detector.

  python benchmarks/face_detection.py --data_dir=$MLFUN_DATA_DIR
  python benchmarks/face_detection.py --data_dir=$MLFUN_DATA_DIR --hog_detector=/tmp/hog.npz
  python benchmarks/face_detection.py --data_dir=$MLFUN_DATA_DIR --tune_cascade
  python benchmarks/face_detection.py --data_dir=$MLFUN_DATA_DIR --fit_calibration

The benchmark (`mlfun_jax.faces.scenes.benchmark`): --pictures group pictures of 1-6 ORL faces of
the --people (default s16..s30, never a detector's training people) on the benchmark backgrounds
(photos without people shipped in scikit-learn / scikit-image, plus CIFAR-10 test mosaics when the
data folder has cifar10/test.zip), then the real face photos that ship in packages (astronaut,
Grace Hopper), reported apart as well. Detectors:
  cascade  scikit-image's LBP frontal-face cascade (`faces.cascade_detector`), pretrained.
  hog      the series' HOG + linear detector (`faces.hog_detector`), loaded from --hog_detector
           when that file exists, else trained here on the --train_people (default s1..s15) with
           CIFAR-10 training negatives from --data_dir (and saved to --hog_detector if given).
           Run with no score threshold (the whole precision/recall curve); `hog@threshold` keeps
           the detections at or above the detector's own threshold (picked in training).
Each detector sees the same pictures; seconds per picture are the mean wall time of `detect`.

--tune_cascade picks the cascade's settings on pictures of the --train_people on the HOG
detector's negative photos (never the benchmark's people or backgrounds); --fit_calibration fits
its window -> face box calibration on the --train_people's ORL faces. Run on an otherwise idle
machine.
"""

import itertools
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_DATA_DIR = flags.DEFINE_string("data_dir", os.environ.get("MLFUN_DATA_DIR"),
                                "Datasets folder holding faces_orl/ (and cifar10/).")
_PEOPLE = flags.DEFINE_string("people", "16-30", "Benchmark ORL people: s<first>..s<last>.")
_TRAIN_PEOPLE = flags.DEFINE_string("train_people", "1-15",
                                    "ORL people the detectors train and tune on.")
_PICTURES = flags.DEFINE_integer("pictures", 60, "Group pictures.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the benchmark pictures (and HOG training).")
_DETECTORS = flags.DEFINE_list("detectors", ["cascade", "hog"], "Detectors to run.")
_HOG = flags.DEFINE_string("hog_detector", None,
                           "Saved HOG detector (.npz): loaded if it exists, else written.")
_TUNE = flags.DEFINE_bool("tune_cascade", False, "Tune the cascade's settings instead.")
_TUNE_PICTURES = flags.DEFINE_integer("tune_pictures", 30, "Tuning pictures (--tune_cascade).")
_FIT = flags.DEFINE_bool("fit_calibration", False, "Fit the cascade's box calibration instead.")


def person_range(text: str) -> list[int]:
  first, _, last = text.partition("-")
  return list(range(int(first), int(last or first) + 1))


def orl_people(data_dir: str, numbers: list[int]) -> dict[str, np.ndarray]:
  """{'s<N>': uint8 [10, 112, 92]} of the ORL people s<N>."""
  from mlfun_jax.faces import data as face_data  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import face_box  # pylint: disable=g-import-not-at-top
  people = dict(face_data.list_face_folders(os.path.join(data_dir, "faces_orl")))
  shape = (*face_box.ORL_SHAPE, 1)
  return {f"s{n}": np.stack([face_data.load_face(path, shape)[..., 0]
                             for path in people[f"s{n}"]]) for n in numbers}


def run_detector(detect, pictures) -> tuple[list, float]:
  """([(boxes, scores)] per picture, mean seconds per picture)."""
  found, seconds = [], 0.0
  for picture in pictures:
    start = time.perf_counter()
    found.append(detect(picture.image))
    seconds += time.perf_counter() - start
  return found, seconds / max(len(pictures), 1)


def operating_point(found, pictures) -> str:
  """'recall R, precision P, F FP/picture' of detections kept at a detector's own threshold."""
  from mlfun_jax.faces import detection_measures as dm  # pylint: disable=g-import-not-at-top
  hits = [dm.match_image(b, s, p.boxes) for (b, s), p in zip(found, pictures)]
  true = sum(int(h.sum()) for h in hits)
  detections = sum(len(h) for h in hits)
  faces = sum(len(p.boxes) for p in pictures)
  return (f"at its threshold: recall {true / max(faces, 1):.3f}, precision "
          f"{true / max(detections, 1):.3f}, {(detections - true) / max(len(pictures), 1):.2f} "
          "false positives a picture")


def report(name: str, found, pictures, seconds: float) -> None:
  from mlfun_jax.faces import detection_measures as dm  # pylint: disable=g-import-not-at-top
  groups = [i for i, p in enumerate(pictures) if p.source.startswith("group:")]
  photos = [i for i, p in enumerate(pictures) if p.source.startswith("photo:")]
  for part, chosen in (("all", range(len(pictures))), ("group pictures", groups),
                       ("real photos", photos)):
    if not chosen:
      continue
    summary = dm.summarize([found[i] for i in chosen], [pictures[i].boxes for i in chosen])
    print(f"{name:14s} {part:15s} AP@0.5 {summary['average_precision']:.3f}  "
          f"recall@1FP/img {summary['recall_at_fppi']:.3f}  "
          f"pictures {summary['images']:3d}  faces {summary['faces']:3d}  "
          f"detections {summary['detections']:5d}  "
          + (f"{seconds:.3f} s/picture" if part == "all" else ""))
  for i in photos:
    from mlfun_jax.faces import face_box  # pylint: disable=g-import-not-at-top
    boxes, scores = found[i]
    overlap = face_box.iou(boxes, pictures[i].boxes).max(axis=1) if len(boxes) else np.zeros(0)
    hit = np.flatnonzero(overlap >= 0.5)
    where = f"rank {hit[0] + 1}, IoU {overlap[hit[0]]:.2f}" if len(hit) else (
        f"not found (best IoU {overlap.max(initial=0):.2f})")
    print(f"{'':14s}   {pictures[i].source}: face {where} of {len(boxes)} detections")


def hog_detector(train_faces):
  import jax  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import hog_detector as hog  # pylint: disable=g-import-not-at-top
  if _HOG.value and os.path.exists(_HOG.value):
    print(f"HOG detector: loaded {_HOG.value}")
    return hog.HogDetector.load(_HOG.value)
  start = time.perf_counter()
  faces = np.concatenate(list(train_faces.values()))
  detector = hog.train_from_faces(faces, jax.random.key(_SEED.value), data_dir=_DATA_DIR.value)
  print(f"HOG detector: trained on {len(faces)} faces of {len(train_faces)} people in "
        f"{time.perf_counter() - start:.0f} s (threshold {detector.threshold:.3f})")
  if _HOG.value:
    detector.save(_HOG.value)
  return detector


def benchmark(train_faces) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import cascade_detector  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import scenes  # pylint: disable=g-import-not-at-top
  people = orl_people(_DATA_DIR.value, person_range(_PEOPLE.value))
  overlap = set(people) & set(train_faces)
  if overlap:
    raise app.UsageError(f"--people and --train_people share {sorted(overlap)}")
  start = time.perf_counter()
  backgrounds = scenes.benchmark_backgrounds(_DATA_DIR.value)
  pictures = scenes.benchmark(people, jax.random.key(_SEED.value), pictures=_PICTURES.value,
                              backgrounds=backgrounds)
  print(f"benchmark: {len(pictures)} pictures ({_PICTURES.value} group pictures of people "
        f"s{_PEOPLE.value.replace('-', '..s')} on {len(backgrounds)} backgrounds: "
        f"{', '.join(backgrounds)}; then the real photos), "
        f"{sum(len(p.boxes) for p in pictures)} faces, built in "
        f"{time.perf_counter() - start:.1f} s")
  for name in _DETECTORS.value:
    if name == "cascade":
      detector = cascade_detector.CascadeDetector(min_neighbors=1)  # Every score, for AP.
      found, seconds = run_detector(detector.detect, pictures)
      report("cascade", found, pictures, seconds)
      minimum = cascade_detector.MIN_NEIGHBORS
      kept = [(b[s >= minimum], s[s >= minimum]) for b, s in found]
      print(f"cascade (>= {minimum} windows) {operating_point(kept, pictures)}")
    elif name == "hog":
      detector = hog_detector(train_faces)
      found, seconds = run_detector(lambda image: detector.detect(image, threshold=-np.inf),
                                    pictures)
      report("hog", found, pictures, seconds)
      kept = [(b[s >= detector.threshold], s[s >= detector.threshold]) for b, s in found]
      print(f"hog (>= {detector.threshold:.3f}) {operating_point(kept, pictures)}")
    else:
      raise app.UsageError(f"--detectors: unknown detector {name!r} (cascade, hog)")


def tune_cascade(train_faces) -> None:
  """AP@0.5 / recall@1FP of cascade settings on group pictures of the training people on the HOG
  detector's negative photos."""
  import jax  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import cascade_detector as cd  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import detection_measures as dm  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import detector_windows  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import face_box  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import scenes  # pylint: disable=g-import-not-at-top
  backgrounds = {name: scenes.fit_photo(photo) for name, photo in
                 zip(detector_windows.PACKAGE_PHOTOS, detector_windows.package_photos())}
  pictures = scenes.benchmark(train_faces, jax.random.key(_SEED.value + 1000),
                              pictures=_TUNE_PICTURES.value, backgrounds=backgrounds,
                              real_photos=False)
  truths = [p.boxes for p in pictures]
  print(f"tuning on {len(pictures)} pictures, {sum(len(t) for t in truths)} faces of "
        f"{len(train_faces)} training people on {', '.join(backgrounds)}")
  cascade = cd.CascadeDetector()
  for scale_factor, step_ratio, min_window in itertools.product((1.1, 1.2), (1.0, 1.5), (24, 32)):
    start = time.perf_counter()
    raw = [cd.raw_windows(cascade._cascade, p.image, scale_factor, step_ratio, min_window,  # pylint: disable=protected-access
                          min(p.image.shape)) for p in pictures]
    seconds = (time.perf_counter() - start) / len(pictures)
    for group_iou, min_neighbors in itertools.product((0.3, 0.5), (1, 2, 3)):
      found = []
      for windows in raw:
        means, counts = cd.group_windows(windows, group_iou)
        keep = counts >= min_neighbors
        boxes = cd.to_face_boxes(means[keep])
        scores = counts[keep].astype(np.float32)
        kept = face_box.non_max_suppression(boxes, scores, cd.NMS_IOU)
        found.append((boxes[kept], scores[kept]))
      print(f"scale_factor {scale_factor} step_ratio {step_ratio} min_window {min_window} "
            f"group_iou {group_iou} min_neighbors {min_neighbors}: "
            f"AP@0.5 {dm.average_precision(found, truths):.3f} "
            f"recall@1FP/img {dm.recall_at_fppi(found, truths):.3f} {seconds:.3f} s/picture")


def main(argv):
  del argv
  if not _DATA_DIR.value:
    raise app.UsageError("--data_dir (or $MLFUN_DATA_DIR) must name the datasets folder")
  train_faces = orl_people(_DATA_DIR.value, person_range(_TRAIN_PEOPLE.value))
  if _FIT.value:
    from mlfun_jax.faces import cascade_detector  # pylint: disable=g-import-not-at-top
    faces = np.concatenate(list(train_faces.values()))
    print(f"calibration on {len(faces)} faces:", cascade_detector.fit_box_calibration(faces))
  elif _TUNE.value:
    tune_cascade(train_faces)
  else:
    benchmark(train_faces)


if __name__ == "__main__":
  app.run(main)
