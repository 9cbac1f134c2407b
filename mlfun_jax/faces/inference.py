"""A face-embedding network restored from a workdir (for recognize, face_report, research code):
the run's own trained network, or dlib's pretrained face ResNet (`EMBEDDERS`)."""

import jax
import numpy as np

from mlfun_jax.core import checkpoint
from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import config as faces_config
from mlfun_jax.faces import data as face_data
from mlfun_jax.faces import task as faces_task
from mlfun_jax.faces import texture
from mlfun_jax.faces.embedding import Embedder

# 'network': the run's trained network (its input size, texture descriptor, tolerance);
# 'dlib_resnet': dlib's pretrained face ResNet on ORL-frame faces (`dlib_embedder`; tolerance
# dlib's 0.6).
EMBEDDERS = ("network", "dlib_resnet")


class TrainedFaceEmbedder:
  """A run's face embedder restored from a workdir (for recognize and research code).

  Attributes:
    image_shape: (H, W, 1) the network takes.
    input_box: the part of each face frame it sees (`face_data.input_box`; None: the whole frame).
    threshold: the verification threshold picked on the validation people, or None.
    tolerance: the naming tolerance `recognize` uses: with the 'network' embedder the config's
      `tolerance`, else the one picked on the run's validation people (runs saved before either:
      their threshold), or None; with 'dlib_resnet' dlib's 0.6.
    kind: which of EMBEDDERS embeds.
    embedder: its `Embedder` or `dlib_embedder.DlibEmbedder` (for `measures.measure_unseen`),
      called with `params`.
  """

  def __init__(self, workdir: str, test_time_augmentation: bool | None = None,
               embedder: str | None = None):
    """test_time_augmentation: embed with or without it (None: as the run was configured);
    embedder: one of EMBEDDERS (None: the run's config field `embedder`)."""
    run = checkpoint.restore_run(
        workdir, task="faces", noun="a face-embedding network",
        make_state=lambda config, meta: faces_task.create_state(
            faces_task.create_model(config), config, tuple(meta["image_shape"]), 1,
            jax.random.key(0)),
        fields_added_later=faces_config.FIELDS_ADDED_LATER)
    self.meta, self.step, self.config, self.state = run.meta, run.step, run.config, run.state
    self.image_shape = tuple(self.meta["image_shape"])
    self.input_box = face_data.input_box(self.config)
    self.threshold = self.meta.get("validation", {}).get("threshold")
    self.tolerance = self.config.tolerance
    if self.tolerance is None:
      self.tolerance = self.meta.get("validation", {}).get("tolerance", self.threshold)
    self.model = faces_task.create_model(self.config)
    if test_time_augmentation is None:
      test_time_augmentation = self.config.test_time_augmentation
    self.kind = self.config.embedder if embedder is None else embedder
    if self.kind not in EMBEDDERS:
      raise UserError(f"unknown embedder {self.kind!r}; choose one of {', '.join(EMBEDDERS)}")
    if self.kind == "dlib_resnet":
      from mlfun_jax.faces import dlib_embedder  # pylint: disable=g-import-not-at-top
      from mlfun_jax.faces import dlib_resnet  # pylint: disable=g-import-not-at-top
      self.image_shape, self.input_box = dlib_embedder.ORL_IMAGE_SHAPE, None
      self.tolerance = dlib_resnet.DLIB_TOLERANCE
      self.embedder, self.params = dlib_embedder.DlibEmbedder(), dlib_resnet.pretrained_params()
      return
    self.embedder = Embedder(self.model, self.meta["input_mean"], self.meta["input_std"],
                             test_time_augmentation,
                             texture.Texture.from_config(self.config))
    self.params = self.state.params

  def embed(self, images: np.ndarray) -> np.ndarray:
    """uint8 faces [N, H, W, 1] (0..255, H, W, 1 = image_shape) -> float32 embeddings [N, E]
    (unit-norm from the run's network).

    Raises:
      InputConventionError: images of another dtype, rank or shape (e.g. one face [H, W, 1]).
    """
    checks.check_images(images, name="images", dtype_kind="u", shape=self.image_shape)
    return self.embedder(self.params, images)

  def embed_files(self, paths: list[str]) -> np.ndarray:
    """Embeddings [N, E] of image files (grey, resized/cropped to the network's input; with the
    run's face_crop only each file's face box and margin, as training read them)."""
    return self.embed(np.stack([face_data.load_face(p, self.image_shape, self.input_box)
                                for p in paths]))
