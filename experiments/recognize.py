r"""Finds and names every face in photos with a trained face-embedding network, as `face_recognition`
does.

  mlfun-recognize --workdir=workdirs/faces_orl KNOWN_DIR IMAGE_OR_DIR \
      [--tolerance=T] [--show_distance] [--json] [--draw=DIR] [--detector=hog|cascade] \
      [--no_detect] [--embedder=network|dlib_resnet]

KNOWN_DIR holds the known people: `<person>/<image>` files (any number per person) or
`<person>.<ext>` files (one image each); the largest face found in each is that person's.
IMAGE_OR_DIR is an image file or a folder of them (not searched recursively). Every face found in
a photo is brought into the network's framing (its eyes located and aligned, by the run's eye
locator) and gets one line, faces left to right, photos in name order:

  path,name            the known person with the nearest embedding (Euclidean distance)
  path,unknown_person  when no known face lies within the tolerance
  path,no_persons_found  a photo in which no face was found
  ...,distance         with --show_distance: the distance to the nearest known face

--json prints one JSON object per face instead: {"path", "box": [left, top, right, bottom] in
pixels, "name", "distance"} (box and distance null for no_persons_found). --draw=DIR writes each
photo with its boxes and names to DIR/<name>.png. --no_detect takes each image as one face
already framed as the training faces are (as the ORL images are), known and asked about alike.

Faces are embedded as the run's config field `embedder` says (`--embedder` overrides it): dlib's
pretrained face ResNet (the default for new runs: each face's 5 landmarks found in its frame, a
150x150 chip, tolerance 0.6) or the run's own network (tolerance: the one picked on the run's
validation people for naming, saved with the checkpoint). The default detector is the run's
`photos.detector`. A file that is not a readable
image (or has more than 8192 x 8192 pixels), or a known image without a face, gets one `error:`
line on stderr and is left out; the others are still answered, and the exit status is then 2.
"""

import json

from absl import app
from absl import flags

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained face-embedding network.")
_TOLERANCE = flags.DEFINE_float(
    "tolerance", None, "Largest distance that still names a known person (default: the "
    "tolerance picked on the validation people, saved with the checkpoint).")
_SHOW_DISTANCE = flags.DEFINE_boolean("show_distance", False,
                                      "Print the distance to the nearest known face too.")
_JSON = flags.DEFINE_boolean("json", False, "Print one JSON object per face: path, box [left, "
                             "top, right, bottom] in pixels, name, distance.")
_DRAW = flags.DEFINE_string("draw", None, "Write each photo with its face boxes and names to "
                            "this folder (DIR/<name>.png).")
_DETECTOR = flags.DEFINE_enum("detector", None, ("hog", "cascade"),
                              "Face detector (default: the run's config field photos.detector).")
_EMBEDDER = flags.DEFINE_enum("embedder", None, ("network", "dlib_resnet"),
                              "What embeds the faces (default: the run's config field embedder): "
                              "the run's network, or dlib's pretrained face ResNet.")
_NO_DETECT = flags.DEFINE_boolean("no_detect", False, "Take each image as one face framed as the "
                                  "training faces are (no detection, no alignment).")
flags.register_validator("tolerance", lambda value: value is None or value >= 0,
                         message="must be a distance >= 0")
flags.mark_flag_as_required("workdir")


def format_face(path: str, face, show_distance: bool, as_json: bool) -> str:
  """One output line for a `recognition.NamedFace` (or no face: `face` None)."""
  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import recognition
  if as_json:
    if face is None:
      return json.dumps({"path": path, "box": None, "name": recognition.NO_PERSONS,
                         "distance": None})
    return json.dumps({"path": path, "box": [round(float(v)) for v in face.box],
                       "name": face.name, "distance": round(face.distance, 4)})
  if face is None:
    return f"{path},{recognition.NO_PERSONS}"
  if show_distance:
    return f"{path},{face.name},{face.distance:.4f}"
  return f"{path},{face.name}"


def main(argv):
  if len(argv) != 3:
    raise app.UsageError("give KNOWN_DIR and IMAGE_OR_DIR")
  known_dir, target = argv[1], argv[2]
  from mlfun_jax.faces import recognition  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    recognizer = recognition.Recognizer.from_workdir(
        _WORKDIR.value, detector=None if _NO_DETECT.value else (_DETECTOR.value or "default"),
        tolerance=_TOLERANCE.value, embedder=_EMBEDDER.value)
    failures = recognizer.enroll_folder(known_dir)
    if _DRAW.value:
      cli.make_output_dir(_DRAW.value, "draw")
    for path, named, failed in recognizer.name_photos(recognition.photo_paths(target),
                                                       draw_dir=_DRAW.value):
      failures += failed
      for face in named or [None]:
        if failed:
          break
        print(format_face(path, face, _SHOW_DISTANCE.value, _JSON.value), flush=True)
  cli.exit_if_failed(failures)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
