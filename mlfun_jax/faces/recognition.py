"""Naming the faces of photos, as `face_recognition` does: known people enrolled from a folder,
every face of each photo found, aligned, embedded and given the name of the nearest known face,
or unknown_person beyond the tolerance (`experiments.recognize` prints what this answers).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from collections.abc import Iterator

import numpy as np

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import measures as face_measures
from mlfun_jax.faces import photos

UNKNOWN = "unknown_person"
NO_PERSONS = "no_persons_found"
DETECTORS = ("hog", "cascade")
HOG_DETECTOR_FILE = "face_detector_hog.npz"  # In a faces run's workdir.
LOCATOR_FILE = "face_locator.npz"  # In a faces run's workdir.


@dataclasses.dataclass(frozen=True)
class NamedFace:
  """One face of a photo: box float [4] (left, top, right, bottom) in pixels, name, distance."""
  box: np.ndarray
  name: str
  distance: float


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


def photo_paths(path: str) -> list[str]:
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


def name_embeddings(known: np.ndarray, names: list[str], queries: np.ndarray,
                    tolerance: float) -> list[tuple[str, float]]:
  """(name, distance) per query embedding [Q, E]: the name of the nearest known embedding
  [K, E], or UNKNOWN when its Euclidean distance exceeds `tolerance`."""
  d = face_measures.distance_matrix(queries, known)
  nearest = np.argmin(d, axis=1)
  return [(names[k] if d[i, k] <= tolerance else UNKNOWN, float(d[i, k]))
          for i, k in enumerate(nearest)]


def load_detector(workdir: str, kind: str):
  """The face detector `kind` ('hog': the run's, trained on its training people; 'cascade':
  scikit-image's LBP frontal-face cascade)."""
  if kind == "cascade":
    from mlfun_jax.faces import cascade_detector  # pylint: disable=g-import-not-at-top
    return cascade_detector.CascadeDetector()
  if kind == "hog":
    from mlfun_jax.faces import hog_detector  # pylint: disable=g-import-not-at-top
    path = os.path.join(workdir, HOG_DETECTOR_FILE)
    if not os.path.exists(path):
      raise UserError(f"{workdir} has no HOG face detector ({HOG_DETECTOR_FILE}; runs with "
                      "photos.hog_detector=True train one); use --detector=cascade")
    return hog_detector.HogDetector.load(path)
  raise UserError(f"unknown detector {kind!r}; choose one of {', '.join(DETECTORS)}")


def load_locator(workdir: str):
  """The run's eye locator, or None (with a warning) when the run trained none: faces are then
  framed by their boxes alone."""
  from mlfun_jax.faces import locator  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, LOCATOR_FILE)
  if not os.path.exists(path):
    logging.warning("%s has no eye locator (%s): faces are framed by their boxes, not aligned",
                    workdir, LOCATOR_FILE)
    return None
  return locator.Locator.load(path)


class Recognizer:
  """Enrolled people and the tools to find, align, embed and name faces.

  Attributes:
    embedder: the run's `inference.TrainedFaceEmbedder`.
    detector: an object with `detect(grey uint8 [H, W]) -> (boxes [N, 4], scores [N])`, or None
      (each image is one face framed as the training faces are).
    locator: a `locator.Locator` or None (faces framed by their boxes).
    tolerance: the largest distance that still names a known person.
  """

  def __init__(self, embedder, detector, locator, tolerance: float):
    self.embedder, self.detector, self.locator = embedder, detector, locator
    self.tolerance = float(tolerance)
    self.names: list[str] = []
    self.known = np.zeros((0, 0), np.float32)

  @classmethod
  def from_workdir(cls, workdir: str, detector: str | None = "default",
                   tolerance: float | None = None, embedder: str | None = None) -> Recognizer:
    """detector: 'hog', 'cascade', 'default' (the run's `photos.detector`) or None (no
    detection); tolerance None: the embedder's; embedder: one of `inference.EMBEDDERS` (None:
    the run's config field `embedder`)."""
    from mlfun_jax.faces import inference  # pylint: disable=g-import-not-at-top
    embedder = inference.TrainedFaceEmbedder(workdir, embedder=embedder)
    if tolerance is None:
      tolerance = embedder.tolerance
      if tolerance is None:
        raise UserError(f"the checkpoint in {workdir} has no validation tolerance; give "
                        "--tolerance")
    if detector is None:
      return cls(embedder, None, None, tolerance)
    if detector == "default":
      detector = embedder.config.photos.detector
    return cls(embedder, load_detector(workdir, detector), load_locator(workdir), tolerance)

  def find(self, photo: photos.Photo) -> tuple[np.ndarray, np.ndarray]:
    """(boxes float32 [N, 4], faces uint8 [N, H, W, 1] at the network's input) of the photo's
    faces, left to right; without a detector the whole image is one face, scaled as `load_face`
    scales a face file."""
    if self.detector is None:
      height, width = photo.grey.shape
      return (np.array([[0, 0, width, height]], np.float32),
              photos.whole_image_input(photo, self.embedder.image_shape,
                                       self.embedder.input_box)[None])
    found = photos.find_faces(photo.grey, self.detector, self.locator)
    order = np.argsort(found.boxes[:, 0], kind="stable")
    return (found.boxes[order],
            photos.to_network_input(found.faces[order], self.embedder.image_shape,
                                    self.embedder.input_box))

  def enroll_folder(self, known_dir: str) -> int:
    """Enrolls the largest face of every known image (`known_faces`); returns how many images
    failed (each reported as one `error:` line on stderr).

    Raises:
      UserError: no known image could be enrolled (one line, naming the folder and the first
        image's reason).
    """
    names, paths = known_faces(known_dir)
    faces, kept, errors = [], [], []
    for name, path in zip(names, paths):
      try:
        boxes, found = self.find(photos.load_photo(path))
        if not len(found):
          raise UserError(f"no face found in known image {path!r}")
      except UserError as e:
        errors.append(str(e))
        continue
      sides = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
      if len(found) > 1:
        logging.warning("%d faces in known image %s: the largest is %s's", len(found), path, name)
      faces.append(found[int(np.argmax(sides))])
      kept.append(name)
    if not faces:
      raise UserError(f"no known person could be enrolled from {known_dir!r}: {errors[0]}"
                      + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    for error in errors:
      print(f"error: {error}", file=sys.stderr, flush=True)
    self.known, self.names = self.embedder.embed(np.stack(faces)), kept
    return len(errors)

  def name_photo(self, photo: photos.Photo) -> list[NamedFace]:
    """Every face of the photo named (empty: no face found)."""
    if not self.names:
      raise UserError("no known people enrolled")
    boxes, faces = self.find(photo)
    if not len(faces):
      return []
    named = name_embeddings(self.known, self.names, self.embedder.embed(faces), self.tolerance)
    return [NamedFace(box, name, distance) for box, (name, distance) in zip(boxes, named)]

  def name_photos(self, paths: list[str], draw_dir: str | None = None
                  ) -> Iterator[tuple[str, list[NamedFace], int]]:
    """Yields (path, named faces, failed 0/1) per photo; an unreadable photo is one `error:`
    line on stderr (failed 1). draw_dir: also write each photo with boxes and names there."""
    for path in paths:
      try:
        photo = photos.load_photo(path)
      except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        yield path, [], 1
        continue
      named = self.name_photo(photo)
      if draw_dir:
        photos.draw_names(photo, np.array([f.box for f in named]).reshape(-1, 4),
                          [f.name for f in named], photos.drawing_path(draw_dir, path))
      yield path, named, 0
