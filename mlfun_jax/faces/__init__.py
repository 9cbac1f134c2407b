"""mlfun_jax.faces: face embeddings (CosFace and/or the semi-hard triplet loss) and their measures.

The public API:

  TrainedFaceEmbedder  a run's face embedder restored from a workdir (embed, tolerance): its own
                       network or dlib's pretrained one (config field embedder).
  Embedder, embed      uint8 faces -> unit-norm embeddings with given parameters.
  DlibEmbedder, DlibFaceResNet, pretrained_params  dlib's pretrained face ResNet (in Flax, its
                       weights from the face_recognition_models package) on ORL-frame faces.
  defaults             the family's config defaults; FIELDS_ADDED_LATER for old saved configs.
  measure_unseen, evaluate_people, pick_threshold  verification and identification measures.
  load_faces, load_face  face folders split by identity, and one face file.
  Recognizer           find, align, embed and name every face of photos (what mlfun-recognize runs).
  load_photo, find_faces  a photo file read once; its faces found and brought into the ORL frame.
  CascadeDetector, HogDetector, Locator  the face detectors and the eye locator.
"""

from mlfun_jax.faces.cascade_detector import CascadeDetector
from mlfun_jax.faces.config import FIELDS_ADDED_LATER
from mlfun_jax.faces.config import defaults
from mlfun_jax.faces.data import load_face
from mlfun_jax.faces.data import load_faces
from mlfun_jax.faces.dlib_embedder import DlibEmbedder
from mlfun_jax.faces.dlib_resnet import DlibFaceResNet
from mlfun_jax.faces.dlib_resnet import pretrained_params
from mlfun_jax.faces.embedding import Embedder
from mlfun_jax.faces.embedding import embed
from mlfun_jax.faces.inference import TrainedFaceEmbedder
from mlfun_jax.faces.measures import evaluate_people
from mlfun_jax.faces.measures import measure_unseen
from mlfun_jax.faces.hog_detector import HogDetector
from mlfun_jax.faces.locator import Locator
from mlfun_jax.faces.measures import pick_threshold
from mlfun_jax.faces.photos import find_faces
from mlfun_jax.faces.photos import load_photo
from mlfun_jax.faces.recognition import Recognizer

__all__ = [
    "TrainedFaceEmbedder", "Embedder", "embed", "DlibEmbedder", "DlibFaceResNet",
    "pretrained_params", "defaults", "FIELDS_ADDED_LATER",
    "measure_unseen", "evaluate_people", "pick_threshold", "load_faces", "load_face",
    "Recognizer", "load_photo", "find_faces", "CascadeDetector", "HogDetector", "Locator"
]
