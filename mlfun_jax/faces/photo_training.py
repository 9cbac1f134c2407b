"""The tools `recognize` needs for photos, trained at the end of a faces run on its training people
only: the series' HOG + linear face detector and the eye locator that aligns faces.

Both are saved in the workdir (`recognition.HOG_DETECTOR_FILE`, `recognition.LOCATOR_FILE`: atomic,
checksummed .npz files); the test people stay unseen by them too.
"""

import os

from absl import logging
import jax
import ml_collections
import numpy as np

from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import face_box
from mlfun_jax.faces import recognition


def training_faces_in_orl_frame(config: ml_collections.ConfigDict) -> np.ndarray:
  """uint8 [N, 112, 92]: the faces of the run's training people, read at the ORL frame's size
  (other sizes scaled and centre-cropped as `load_face` does)."""
  dataset = face_data.load_faces(config.data_dir, sizes=tuple(config.people),
                                 seed=config.split_seed, image_shape=(*face_box.ORL_SHAPE, 1))
  return dataset.splits["train"].images[..., 0]


def train_photo_tools(config: ml_collections.ConfigDict, workdir: str) -> dict[str, str]:
  """Trains what `config.photos` asks for (the HOG detector, the eye locator) from the training
  people's faces, seeded by `config.seed`; returns {what: saved path}."""
  photos = config.photos
  if not photos.hog_detector and not photos.locator_steps:
    return {}
  faces = training_faces_in_orl_frame(config)
  detector_key, locator_key = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 7))
  saved = {}
  if photos.hog_detector:
    from mlfun_jax.faces import hog_detector  # pylint: disable=g-import-not-at-top
    detector = hog_detector.train_from_faces(faces, detector_key, photos.negatives_data_dir)
    saved["hog_detector"] = detector.save(os.path.join(workdir, recognition.HOG_DETECTOR_FILE))
    logging.info("HOG face detector trained on %d faces: %s", len(faces), detector.meta)
  if photos.locator_steps:
    from mlfun_jax.faces import locator  # pylint: disable=g-import-not-at-top
    eyes = locator.train_locator(faces, locator_key, steps=photos.locator_steps)
    saved["locator"] = eyes.save(os.path.join(workdir, recognition.LOCATOR_FILE))
    logging.info("eye locator trained on %d faces: %s", len(faces), eyes.meta["training"])
  return saved
