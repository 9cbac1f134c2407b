r"""Names the people in face images with a trained face-embedding network, as `face_recognition` does.

  mlfun-recognize --workdir=workdirs/faces_orl KNOWN_DIR IMAGE_OR_DIR \
      [--tolerance=T] [--show_distance]

KNOWN_DIR holds the known people: `<person>/<image>` files (any number per person) or
`<person>.<ext>` files (one image each). IMAGE_OR_DIR is an image file or a folder of them (not
searched recursively). Prints one line per image, in name order:

  path,name            the known person with the nearest embedding (Euclidean distance)
  path,unknown_person  when no known face lies within the tolerance
  ...,distance         with --show_distance: the distance to the nearest known face

The default tolerance is the distance threshold picked on the validation people, saved with the
checkpoint. A file that is not a readable image (or has more than 8192 x 8192 pixels), known or
asked about, gets one `error:` line on stderr and is left out; the others are still answered, and
the exit status is then 2. There is no face detector: each image is taken as one aligned face (as
the ORL images are), made grey and scaled/cropped to the network's input.
"""

import os

from absl import app
from absl import flags
import numpy as np

from mlfun_jax.core import cli
from mlfun_jax.faces import measures as face_measures
from mlfun_jax.faces import data as face_data
from mlfun_jax.core.errors import UserError

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained face-embedding network.")
_TOLERANCE = flags.DEFINE_float(
    "tolerance", None, "Largest distance that still names a known person (default: the "
    "threshold picked on the validation people, saved with the checkpoint).")
_SHOW_DISTANCE = flags.DEFINE_boolean("show_distance", False,
                                      "Print the distance to the nearest known face too.")
flags.register_validator("tolerance", lambda value: value is None or value >= 0,
                         message="must be a distance >= 0")
flags.mark_flag_as_required("workdir")

UNKNOWN = "unknown_person"


def known_faces(known_dir: str) -> tuple[list[str], list[str]]:
  """(names, image paths) of `<person>/<image>` and `<person>.<ext>` files in `known_dir`."""
  if not os.path.isdir(known_dir):
    raise UserError(f"known people folder {known_dir!r} does not exist")
  names, paths = [], []
  for entry in sorted(os.listdir(known_dir), key=face_data.natural_key):
    full = os.path.join(known_dir, entry)
    if entry.startswith("."):
      continue
    if os.path.isdir(full):
      for f in face_data.face_files(full):
        names.append(entry)
        paths.append(os.path.join(full, f))
    elif face_data.is_face_file(entry):
      names.append(os.path.splitext(entry)[0])
      paths.append(full)
  if not paths:
    raise UserError(f"known people folder {known_dir!r} holds no <person>/<image> or "
                    f"<person>.<ext> image files ({', '.join(face_data.FACE_EXTENSIONS)})")
  return names, paths


def unknown_images(path: str) -> list[str]:
  """The image file `path`, or the image files directly inside the folder `path`."""
  if os.path.isdir(path):
    found = [os.path.join(path, f) for f in face_data.face_files(path)
             if os.path.isfile(os.path.join(path, f))]
    if not found:
      raise UserError(f"folder {path!r} holds no image files "
                      f"({', '.join(face_data.FACE_EXTENSIONS)})")
    return found
  if not os.path.exists(path):
    raise UserError(f"image or folder {path!r} does not exist")
  return [path]


def name_faces(known: np.ndarray, names: list[str], queries: np.ndarray,
               tolerance: float) -> list[tuple[str, float]]:
  """(name, distance) per query embedding [Q, E]: the name of the nearest known embedding
  [K, E], or UNKNOWN when its Euclidean distance exceeds `tolerance`."""
  d = face_measures.distance_matrix(queries, known)
  nearest = np.argmin(d, axis=1)
  return [(names[k] if d[i, k] <= tolerance else UNKNOWN, float(d[i, k]))
          for i, k in enumerate(nearest)]


def format_line(path: str, name: str, distance: float, show_distance: bool) -> str:
  return f"{path},{name},{distance:.4f}" if show_distance else f"{path},{name}"


def main(argv):
  if len(argv) != 3:
    raise app.UsageError("give KNOWN_DIR and IMAGE_OR_DIR")
  known_dir, target = argv[1], argv[2]
  from mlfun_jax.faces import inference  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    embedder = inference.TrainedFaceEmbedder(_WORKDIR.value)
    tolerance = _TOLERANCE.value if _TOLERANCE.value is not None else embedder.threshold
    if tolerance is None:
      raise UserError(f"the checkpoint in {_WORKDIR.value} has no validation threshold; give "
                      "--tolerance")
    names, paths = known_faces(known_dir)
    load = lambda path: face_data.load_face(path, embedder.image_shape)
    name_of = dict(zip(paths, names))
    known_loaded, failures = cli.load_each(paths, load)
    if not known_loaded:
      raise UserError(f"no readable face image in the known people folder {known_dir!r}")
    known = embedder.embed(np.stack([face for _, face in known_loaded]))
    names = [name_of[path] for path, _ in known_loaded]
    queries = unknown_images(target)
    for start in range(0, len(queries), 256):
      chunk, failed = cli.load_each(queries[start:start + 256], load)
      failures += failed
      if not chunk:
        continue
      faces = embedder.embed(np.stack([face for _, face in chunk]))
      for (path, _), (name, distance) in zip(chunk, name_faces(known, names, faces, tolerance)):
        print(format_line(path, name, distance, _SHOW_DISTANCE.value), flush=True)
  cli.exit_if_failed(failures)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
