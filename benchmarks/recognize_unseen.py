r"""How well `recognize` names people it has never seen: one enrolled image per person, exactly as
the command answers (its library, `faces.recognition.Recognizer`, on the image files).

For each faces workdir (one identity split each), the test people of that split (never trained on,
never used to choose a default): in round r, image r of every test person is the known face
(KNOWN_DIR/<person>/<r>.pgm) and their 9 other images are asked about; a face is named right when
recognize prints its person (unknown_person and no_persons_found are wrong). Prints per split the
share named right over the 10 rounds, then the mean and the worst split:

  python benchmarks/recognize_unseen.py --data_dir=$MLFUN_DATA_DIR workdirs/faces_split_s{0..9}
  python benchmarks/recognize_unseen.py --detect ...   # also find and align each face first

Without --detect each image is taken as one framed face (`mlfun-recognize --no_detect`, as ORL's
faces are); with it the run's detector and eye locator find and align the face in each image.
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
_TOLERANCE = flags.DEFINE_float("tolerance", None, "recognize's tolerance (default: the run's).")


def name_split(workdir: str, data_dir: str, detect: bool, tolerance: float | None) -> dict:
  """{'split_seed', 'people', 'named', 'asked', 'right', 'tolerance', 'seconds'} of one workdir."""
  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import data as face_data
  from mlfun_jax.faces import recognition
  # pylint: enable=g-import-not-at-top
  recognizer = recognition.Recognizer.from_workdir(
      workdir, detector="default" if detect else None, tolerance=tolerance)
  config = recognizer.embedder.config
  people = recognizer.embedder.meta["people"]["test"]
  files = dict(face_data.list_face_folders(os.path.join(data_dir, "faces_orl")))
  right = asked = 0
  start = time.perf_counter()
  for r in range(min(len(files[p]) for p in people)):
    with tempfile.TemporaryDirectory() as known:
      for person in people:
        os.makedirs(os.path.join(known, person))
        path = files[person][r]
        os.symlink(path, os.path.join(known, person, os.path.basename(path)))
      failed = recognizer.enroll_folder(known)
      if failed:
        raise RuntimeError(f"{failed} known images of round {r} could not be enrolled")
    queries = [(person, path) for person in people
               for i, path in enumerate(files[person]) if i != r]
    answers = recognizer.name_photos([path for _, path in queries])
    for (person, _), (_, named, failed) in zip(queries, answers):
      asked += 1
      right += int(not failed and len(named) == 1 and named[0].name == person)
  return {"split_seed": int(config.split_seed), "people": len(people), "asked": asked,
          "right": right, "named": right / asked, "tolerance": recognizer.tolerance,
          "seconds": round(time.perf_counter() - start, 1)}


def main(argv):
  workdirs = argv[1:]
  if not workdirs:
    raise app.UsageError("give one or more workdirs of faces runs")
  results = []
  for workdir in workdirs:
    result = name_split(workdir, _DATA_DIR.value, _DETECT.value, _TOLERANCE.value)
    results.append(result)
    print(json.dumps({"workdir": workdir, **result}), flush=True)
  named = np.array([r["named"] for r in results])
  print(f"recognize{' (detect + align)' if _DETECT.value else ' --no_detect'}: "
        f"{len(results)} splits of {results[0]['people']} unseen people, one enrolled image "
        f"each: named right {named.mean():.2%} on the mean (std {named.std():.2%}), worst split "
        f"{named.min():.2%} (split seed {results[int(named.argmin())]['split_seed']}), best "
        f"{named.max():.2%}")


if __name__ == "__main__":
  app.run(main)
