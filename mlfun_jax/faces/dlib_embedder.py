"""Embeds ORL-frame faces with dlib's pretrained face ResNet (`dlib_resnet`), as `recognize` does
with the `dlib_resnet` embedder: dlib's 5-point landmarks of each face are found inside the
frame's face box (`face_box.FACE_BOX_ORL`, by `dlib_landmarks`), the least-squares similarity
taking dlib's chip template to them warps the face into a 150x150 chip (grey in all three colour
channels), and the network describes it, as dlib's `get_face_chip` + `compute_face_descriptor` do.
"""

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.faces import alignment
from mlfun_jax.faces import dlib_landmarks
from mlfun_jax.faces import dlib_resnet
from mlfun_jax.faces import face_box

ORL_IMAGE_SHAPE = (*face_box.ORL_SHAPE, 1)  # What `DlibEmbedder` takes: ORL-frame faces.


def landmarks_in_frames(faces: np.ndarray) -> np.ndarray:
  """float64 [N, 5, 2]: dlib's 5 landmarks ((x, y), continuous pixels: centres at +0.5) of
  ORL-frame faces uint8 [N, 112, 92], each searched in FACE_BOX_ORL."""
  predictor = dlib_landmarks.pretrained()
  box = np.asarray([face_box.FACE_BOX_ORL], np.float64)
  return np.stack([predictor.predict(face, box)[0] for face in faces]) + 0.5


def chips(faces: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
  """uint8 RGB chips [N, 150, 150, 3] of grey faces uint8 [N, H, W] with their 5 landmarks
  [N, 5, 2] (continuous pixels), warped (bilinear) as dlib's chips are framed."""
  frames = alignment.similarity_frames(dlib_resnet.CHIP_POINTS, landmarks)
  size = (dlib_resnet.CHIP_SIZE, dlib_resnet.CHIP_SIZE)
  grey = (np.stack([alignment.warp(face, frame[None], size)[0]
                    for face, frame in zip(faces, frames)])
          if len(faces) else np.zeros((0, *size), np.uint8))
  return np.repeat(grey[..., None], 3, axis=-1)


class DlibEmbedder:
  """(params, uint8 ORL-frame faces [N, 112, 92, 1]) -> float32 dlib descriptors [N, 128] (not
  unit-length; dlib's tolerance is `dlib_resnet.DLIB_TOLERANCE`). params: the network's
  (`dlib_resnet.pretrained_params()`). Usable wherever an `embedding.Embedder` is."""

  def __call__(self, params, images: np.ndarray) -> np.ndarray:
    checks.check_images(images, name='images', dtype_kind='u', shape=ORL_IMAGE_SHAPE)
    faces = np.asarray(images)[..., 0]
    return dlib_resnet.describe(chips(faces, landmarks_in_frames(faces)), params)
