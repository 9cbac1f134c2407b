r"""How well `recognize` names people it has never seen: one enrolled image per person, exactly as
the command answers (its library, `faces.recognition.Recognizer`, on the image files).

For each faces workdir (one identity split each), the test people of that split (never trained on,
never used to choose a default): in round r, image r of every test person is the known face
(KNOWN_DIR/<person>/<r>.pgm) and their 9 other images are asked about; a face is named right when
recognize prints its person (unknown_person and no_persons_found are wrong). Prints per split the
share named right over the 10 rounds, then the mean and the worst split:

  python benchmarks/recognize_unseen.py --data_dir=$MLFUN_DATA_DIR workdirs/faces_split_s{0..9}
  python benchmarks/recognize_unseen.py --detect ...   # also find and align each face first
  python benchmarks/recognize_unseen.py --photos ...   # ask about group photos instead

Without --detect each image is taken as one framed face (`mlfun-recognize --no_detect`, as ORL's
faces are); with it the run's detector and eye locator find and align the face in each image.
With --photos the known images are found and aligned as with --detect, and the asked images are
pasted (head ellipse, soft edge, random place, size, turn, contrast) 3 to a 640x480 group picture
on the package photos the detection benchmark uses as backgrounds: a face is named right when a
box recognize prints overlaps its pasted face box (IoU >= 0.5) and carries its person's name.
"""

import json
import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

_DATA_DIR = flags.DEFINE_string("data_dir", os.environ.get("MLFUN_DATA_DIR"),
                                "The data folder holding faces_orl/.")
_DETECT = flags.DEFINE_bool("detect", False, "Find and align each face (the run's detector and "
                            "eye locator) instead of --no_detect.")
_PHOTOS = flags.DEFINE_bool("photos", False, "Ask about group photos of the asked faces (pasted "
                            "3 to a picture on real backgrounds) instead of the image files.")
_ROUNDS = flags.DEFINE_integer("rounds", None, "Rounds (enrolled image index) to run, from the "
                               "first (default: every image index).")
_SPLIT = flags.DEFINE_enum("split", "test", ["test", "validation"], "Whose faces are asked about: "
                           "the split's test people, or its validation people (to choose by).")
_TOLERANCE = flags.DEFINE_float("tolerance", None, "recognize's tolerance (default: the run's).")
_EMBEDDER = flags.DEFINE_enum("embedder", None, ("network", "dlib_resnet"), "recognize's "
                              "--embedder (default: the run's).")
FACES_PER_PHOTO = 3
PHOTO_SIDES = (70.0, 150.0)  # Face box side in a group photo, pixels (log-uniform).
PHOTO_DEGREES = 10.0


def background_photos() -> list[np.ndarray]:
  """The detection benchmark's background photos, grey at its picture size."""
  from mlfun_jax.faces import scenes  # pylint: disable=g-import-not-at-top
  return [scenes.fit_photo(scenes.background_photo(n)) for n in scenes.BACKGROUND_PHOTOS]


def ask_in_photos(recognizer, queries: list[tuple[str, str]], backgrounds: list[np.ndarray],
                  folder: str, seed: int) -> list[bool]:
  """Whether each (person, ORL file) query is named right in group photos on `backgrounds`
  (`background_photos`) written to `folder`."""
  # pylint: disable=g-import-not-at-top
  import jax
  from PIL import Image
  from mlfun_jax.faces import face_box
  from mlfun_jax.faces import scenes
  # pylint: enable=g-import-not-at-top
  order = np.random.default_rng(seed).permutation(len(queries))
  pictures = []
  for k, start in enumerate(range(0, len(order), FACES_PER_PHOTO)):
    chosen = [queries[i] for i in order[start:start + FACES_PER_PHOTO]]
    faces = np.stack([np.asarray(Image.open(path).convert("L"), np.uint8) for _, path in chosen])
    picture, boxes = scenes.group_picture(
        backgrounds[k % len(backgrounds)], faces, jax.random.key(seed * 1000 + k),
        min_side=PHOTO_SIDES[0], max_side=PHOTO_SIDES[1], max_degrees=PHOTO_DEGREES)
    path = os.path.join(folder, f"group_{k}.png")
    Image.fromarray(picture).save(path)
    pictures.append((path, [person for person, _ in chosen], boxes))
  right = []
  answers = recognizer.name_photos([path for path, _, _ in pictures])
  for (_, people, truth), (_, named, failed) in zip(pictures, answers):
    found = np.array([f.box for f in named], np.float32).reshape(-1, 4)
    overlaps = face_box.iou(truth, found) if len(found) else np.zeros((len(truth), 0))
    for person, row in zip(people, overlaps):
      right.append(not failed and any(named[j].name == person for j in np.flatnonzero(row >= 0.5)))
  return right


def name_split(workdir: str, data_dir: str, detect: bool, tolerance: float | None,
               in_photos: bool = False, rounds: int | None = None, split: str = "test",
               embedder: str | None = None) -> dict:
  """{'split_seed', 'people', 'asked', 'right', 'not_enrolled', 'named', 'tolerance', 'seconds'}
  of one workdir."""
  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import data as face_data
  from mlfun_jax.faces import recognition
  # pylint: enable=g-import-not-at-top
  recognizer = recognition.Recognizer.from_workdir(
      workdir, detector="default" if detect or in_photos else None, tolerance=tolerance,
      embedder=embedder)
  config = recognizer.embedder.config
  people = recognizer.embedder.meta["people"][split]
  files = dict(face_data.list_face_folders(os.path.join(data_dir, "faces_orl")))
  right = asked = not_enrolled = 0
  backgrounds = background_photos() if in_photos else []
  start = time.perf_counter()
  for r in range(min(len(files[p]) for p in people)):
    if rounds is not None and r >= rounds:
      break
    with tempfile.TemporaryDirectory() as known:
      for person in people:
        os.makedirs(os.path.join(known, person))
        path = files[person][r]
        os.symlink(path, os.path.join(known, person, os.path.basename(path)))
      # A known image without a face found is not enrolled (recognize prints an error line and
      # goes on): that person's faces then count as wrong answers.
      not_enrolled += recognizer.enroll_folder(known)
    queries = [(person, path) for person in people
               for i, path in enumerate(files[person]) if i != r]
    if in_photos:
      with tempfile.TemporaryDirectory() as folder:
        named_right = ask_in_photos(recognizer, queries, backgrounds, folder, seed=r)
      asked += len(named_right)
      right += sum(named_right)
      continue
    answers = recognizer.name_photos([path for _, path in queries])
    for (person, _), (_, named, failed) in zip(queries, answers):
      asked += 1
      right += int(not failed and len(named) == 1 and named[0].name == person)
  return {"split_seed": int(config.split_seed), "people": len(people), "asked": asked,
          "right": right, "not_enrolled": not_enrolled, "named": right / asked,
          "tolerance": recognizer.tolerance, "seconds": round(time.perf_counter() - start, 1)}


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    raise app.UsageError("give one or more workdirs of faces runs")
  results = []
  for workdir in workdirs:
    result = name_split(workdir, _DATA_DIR.value, _DETECT.value, _TOLERANCE.value, _PHOTOS.value,
                        _ROUNDS.value, _SPLIT.value, _EMBEDDER.value)
    results.append(result)
    print(json.dumps({"workdir": workdir, **result}), flush=True)
  named = np.array([r["named"] for r in results])
  mode = (" in group photos" if _PHOTOS.value else
          " (detect + align)" if _DETECT.value else " --no_detect")
  worst_seed = results[int(named.argmin())]["split_seed"]
  print(f"recognize{mode}: {len(results)} splits of {results[0]['people']} unseen {_SPLIT.value} "
        f"people, one enrolled image each: named right {named.mean():.2%} on the mean (std "
        f"{named.std():.2%}), worst split {named.min():.2%} (split seed {worst_seed}), best "
        f"{named.max():.2%}")


if __name__ == "__main__":
  app.run(main)
