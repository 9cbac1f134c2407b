"""mlfun_jax.faces: face embeddings (CosFace and/or the semi-hard triplet loss) and their measures.

The public API, loaded on first use (importing the package imports no TensorFlow, parses no flags
and allocates no devices):

  TrainedFaceEmbedder  a trained face-embedding network restored from a workdir (embed, threshold).
  Embedder, embed      uint8 faces -> unit-norm embeddings with given parameters.
  defaults             the family's config defaults; FIELDS_ADDED_LATER for old saved configs.
  measure_unseen, evaluate_people, pick_threshold  verification and identification measures.
  load_faces, load_face  face folders split by identity, and one face file.
"""

import importlib

__all__ = ["TrainedFaceEmbedder", "Embedder", "embed", "defaults", "FIELDS_ADDED_LATER",
           "measure_unseen", "evaluate_people", "pick_threshold", "load_faces", "load_face"]

_HOMES = {"TrainedFaceEmbedder": "inference", "Embedder": "embedding", "embed": "embedding",
          "defaults": "config", "FIELDS_ADDED_LATER": "config", "measure_unseen": "measures",
          "evaluate_people": "measures", "pick_threshold": "measures", "load_faces": "data",
          "load_face": "data"}


def __getattr__(name: str):
  if name in _HOMES:
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
