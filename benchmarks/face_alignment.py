"""What aligning faces before embedding gains on moved faces: eye error and identification.

  python benchmarks/face_alignment.py --workdir=/tmp/faces_runs/base_s0 --data_dir=$MLFUN_DATA_DIR
  python benchmarks/face_alignment.py --workdir=... --rotate=10 --scale=1.1 --shift=0.05

Trains an eye locator (`locator.train_locator`, --steps) on the ORL faces of the run's TRAINING
people, then moves every face of the run's TEST people (--copies times) into a 176 x 176 photo:
rotation uniform in +-rotate degrees, scale log-uniform in [1/scale, scale], shift uniform in
+-shift x face side, the detector box the moved FACE_BOX square with --box_noise (`place_faces`).
Reports:
(a) the eye error in pixels of the ORL frame (where the true eyes land against ORL_EYES), without
    alignment (`crop_to_orl_frame`: the box frame's implicit eyes) and with it (`align_many`);
(b) one-image identification top-1 with the run's embedder (nearest neighbour): in round r, image
    r of every test person is enrolled unaltered and every other image is a probe, averaged over
    rounds; probes untransformed (the files), untransformed but aligned (the locator run on each
    ORL image's own FACE_BOX), moved and cropped by the box, moved and aligned.
ORL-framed faces go to the embedder as the files do (`images.to_model_input`, fit='crop': the
LANCZOS resize of `load_face`). Prints one JSON line at the end.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import sources
from mlfun_jax.faces import alignment
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import face_box
from mlfun_jax.faces import locator as face_locator
from mlfun_jax.faces.inference import TrainedFaceEmbedder
# pylint: enable=g-import-not-at-top,wrong-import-position

_WORKDIR = flags.DEFINE_string("workdir", None, "A finished faces run (its embedder and split).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "The data folder holding faces_orl/ "
                                "(default $MLFUN_DATA_DIR).")
_ROTATE = flags.DEFINE_float("rotate", 25.0, "Rotation range, +- degrees.")
_SCALE = flags.DEFINE_float("scale", 1.25, "Scale range [1/scale, scale] (log-uniform).")
_SHIFT = flags.DEFINE_float("shift", 0.12, "Shift range, +- this fraction of the face side.")
_BOX_NOISE = flags.DEFINE_float("box_noise", 0.03, "Detector box noise, fraction of its side.")
_COPIES = flags.DEFINE_integer("copies", 3, "Moved versions of each test face.")
_STEPS = flags.DEFINE_integer("steps", 1000, "Locator training steps.")
_SEED = flags.DEFINE_integer("seed", 0, "Seeds the locator's training and the moves.")
_LOCATOR = flags.DEFINE_string("locator", None, "Use this saved locator instead of training one.")
_EMBEDDER = flags.DEFINE_enum("embedder", None, ("network", "dlib_resnet"), "What embeds the "
                              "faces (default: the run's config field embedder).")
_SAVE_LOCATOR = flags.DEFINE_string("save_locator", None, "Save the trained locator here (.npz).")


def load_people(folder: str, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
  """(ORL-framed faces uint8 [N, 112, 92], person index [N]) of the named people of `folder`."""
  by_name = dict(face_data.list_face_folders(folder))
  missing = [n for n in names if n not in by_name]
  if missing:
    raise UserError(f"--data_dir: {folder!r} lacks the run's people {missing[:3]}")
  faces, labels = [], []
  for i, name in enumerate(names):
    for path in by_name[name]:
      faces.append(face_data.load_face(path, (*face_box.ORL_SHAPE, 1))[..., 0])
      labels.append(i)
  return np.stack(faces), np.asarray(labels)


def to_embedder(faces: np.ndarray, shape, box=None) -> np.ndarray:
  """ORL-framed faces uint8 [N, 112, 92] -> the embedder's input uint8 [N, H, W, 1], resized as
  `load_face` resizes the files (recognize's `photos.to_network_input`)."""
  from mlfun_jax.faces import photos  # pylint: disable=g-import-not-at-top
  return photos.to_network_input(faces, tuple(shape), box)


def top1_against_unaltered(gallery: np.ndarray, probes: np.ndarray, labels: np.ndarray,
                           copies: int) -> float:
  """Round r enrols gallery embedding r of every person ([N, E], unaltered) and probes every other
  image's `copies` probe embeddings ([copies * N, E], copy-major); nearest neighbour top-1 over
  all rounds."""
  index = np.concatenate([np.flatnonzero(labels == p) for p in np.unique(labels)])
  per_person = np.bincount(labels)
  correct = total = 0
  for r in range(per_person.max()):
    enrolled = np.asarray([np.flatnonzero(labels == p)[r % per_person[p]]
                           for p in np.unique(labels)])
    query = np.setdiff1d(index, enrolled)
    query_all = np.concatenate([query + c * len(labels) for c in range(copies)])
    d = ((probes[query_all, None] - gallery[None, enrolled]) ** 2).sum(-1)
    predicted = labels[enrolled][np.argmin(d, axis=1)]
    correct += int((predicted == np.tile(labels[query], copies)).sum())
    total += len(query_all)
  return correct / total


def main(argv):
  del argv
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required (a finished faces run)")
  folder = os.path.join(_DATA_DIR.value or sources.default_data_dir(), "faces_orl")
  embedder = TrainedFaceEmbedder(_WORKDIR.value, embedder=_EMBEDDER.value)
  people = embedder.meta["people"]
  train_faces, _ = load_people(folder, people["train"])
  test_faces, labels = load_people(folder, people["test"])
  print(f"run {_WORKDIR.value}: {len(people['train'])} training people ({len(train_faces)} faces) "
        f"for the locator, {len(people['test'])} test people ({len(test_faces)} faces); embedder "
        f"input {embedder.image_shape}")

  if _LOCATOR.value:
    locator = face_locator.Locator.load(_LOCATOR.value)
  else:
    start = time.perf_counter()
    locator = face_locator.train_locator(train_faces, jax.random.key(_SEED.value),
                                         steps=_STEPS.value)
    print(f"locator trained: {_STEPS.value} steps in {time.perf_counter() - start:.1f} s, final "
          f"training eye error {locator.meta['training']['final_eye_error_box_pixels']:.2f} px")
    if _SAVE_LOCATOR.value:
      locator.save(_SAVE_LOCATOR.value)

  rng = np.random.default_rng(_SEED.value)
  moved = [face_locator.place_faces(test_faces, rng, rotate_degrees=_ROTATE.value,
                                    scale=_SCALE.value, shift=_SHIFT.value,
                                    box_noise=_BOX_NOISE.value) for _ in range(_COPIES.value)]
  photos = np.concatenate([m[0] for m in moved])
  boxes = np.concatenate([m[1] for m in moved])
  eyes = np.concatenate([m[2] for m in moved])
  start = time.perf_counter()
  by_box = alignment.box_frames(boxes)
  by_eyes, used = zip(*(alignment.alignment_frames(p, b[None], locator)
                        for p, b in zip(photos, boxes)))
  by_eyes, used = np.concatenate(by_eyes), np.concatenate(used)
  cropped = np.concatenate([alignment.warp(p, f[None]) for p, f in zip(photos, by_box)])
  aligned = np.concatenate([alignment.warp(p, f[None]) for p, f in zip(photos, by_eyes)])
  seconds = time.perf_counter() - start
  own_box = np.asarray(face_box.FACE_BOX_ORL, np.float32)[None]
  still_aligned = np.concatenate([alignment.align_many(f, own_box, locator) for f in test_faces])

  error_box = face_locator.orl_eye_errors(by_box, eyes)
  error_eyes = face_locator.orl_eye_errors(by_eyes, eyes)
  shape, crop = embedder.image_shape, embedder.input_box
  gallery = embedder.embed(to_embedder(test_faces, shape, crop))
  copies = _COPIES.value
  results = {
      "settings": {"rotate": _ROTATE.value, "scale": _SCALE.value, "shift": _SHIFT.value,
                   "box_noise": _BOX_NOISE.value, "copies": copies, "seed": _SEED.value,
                   "locator_steps": locator.meta["training"]["steps"],
                   "workdir": _WORKDIR.value, "test_people": len(people["test"]),
                   "moved_faces": len(photos)},
      "eye_error_px": {"without_alignment": float(error_box.mean()),
                       "with_alignment": float(error_eyes.mean()),
                       "without_median": float(np.median(error_box)),
                       "with_median": float(np.median(error_eyes)),
                       "eyes_used_fraction": float(used.mean())},
      "top1": {
          "untransformed": top1_against_unaltered(gallery, gallery, labels, 1),
          "untransformed_aligned": top1_against_unaltered(
              gallery, embedder.embed(to_embedder(still_aligned, shape, crop)), labels, 1),
          "moved_cropped": top1_against_unaltered(
              gallery, embedder.embed(to_embedder(cropped, shape, crop)), labels, copies),
          "moved_aligned": top1_against_unaltered(
              gallery, embedder.embed(to_embedder(aligned, shape, crop)), labels, copies)},
      "align_ms_per_face": 1000 * seconds / len(photos),
  }
  e, t = results["eye_error_px"], results["top1"]
  print(f"eye error (ORL-frame px, mean / median over {len(photos)} moved faces): without "
        f"alignment {e['without_alignment']:.2f} / {e['without_median']:.2f}, with "
        f"{e['with_alignment']:.2f} / {e['with_median']:.2f} (eyes used for "
        f"{100 * e['eyes_used_fraction']:.1f}%)")
  print(f"identification top-1 (1 unaltered image enrolled): untransformed "
        f"{100 * t['untransformed']:.1f}%, untransformed aligned "
        f"{100 * t['untransformed_aligned']:.1f}%, moved cropped {100 * t['moved_cropped']:.1f}%, "
        f"moved aligned {100 * t['moved_aligned']:.1f}%")
  print(json.dumps(results))


if __name__ == "__main__":
  app.run(main)
