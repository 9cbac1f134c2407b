"""A trained classifier restored from a workdir: predictions, logits, attack logits and features.

The classification family's API for researchers, entry points (experiments/predict.py, attack.py)
and other families (the GAN's quality classifier, the attacks of mlfun_jax.adversarial).
"""

from typing import Any

import jax
import numpy as np

from mlfun_jax.classification import config as classification_config
from mlfun_jax.classification import model as classifier_model
from mlfun_jax.core import checkpoint
from mlfun_jax.core import checks
from mlfun_jax.data import images as image_files
from mlfun_jax.models import cnn


class Classifier:
  """A trained classifier restored from a workdir, for prediction in research code or the CLI.

  Attributes:
    meta: the checkpoint's meta record (config, class names, image shape, input stats).
    step: the checkpoint's step.
    config: the run's config (fields added later filled in).
    image_shape: (H, W, C) of the model's input.
    class_names: names indexed by class.
    state: the train state (numpy arrays).
    mean, std: the training set's per-channel input stats.
    test_time_flip: whether the logits average each image with its mirror image (as in training).
    test_time_shift: with it, the shift of the speedrun's shifted views (0: none); `predict` and
      `logits` answer as the run's evaluation did.
  """

  def __init__(self, workdir: str):
    run = checkpoint.restore_run(
        workdir, task="classification", noun="a classifier",
        make_state=lambda config, meta: classifier_model.create_state(
            classifier_model.create_model(config, len(meta["class_names"])), config,
            tuple(meta["image_shape"]), 1, jax.random.key(0)),
        fields_added_later=classification_config.FIELDS_ADDED_LATER)
    self.meta, self.step, self.config, self.state = run.meta, run.step, run.config, run.state
    self.image_shape = tuple(self.meta["image_shape"])
    self.class_names = list(self.meta["class_names"])
    self.fit = self.meta.get("fit", "pad")  # How images.to_model_input fits a photo to the input.
    self.model = classifier_model.create_model(self.config, len(self.class_names))
    self.mean, self.std = self.meta["input_mean"], self.meta["input_std"]
    self.test_time_flip = bool(self.config.test_time_flip)
    self.test_time_shift = int(self.config.test_time_shift) if self.test_time_flip else 0
    self._logits = jax.jit(lambda state, images: classifier_model.inference_logits(
        self.model, state, images, self.mean, self.std, self.test_time_flip,
        self.test_time_shift))

  def _check_shape(self, images: Any, name: str, dtype_kind: str,
                   value_range: tuple[float, float] | None = None) -> None:
    checks.check_images(images, name=name, dtype_kind=dtype_kind, value_range=value_range,
                        shape=self.image_shape)

  def attack_logits(self, state: classifier_model.TrainState, images01: jax.Array) -> jax.Array:
    """`model.unit_range_logits` with this model's input stats and test-time flip: differentiable
    logits [B, outputs] of float images [B, H, W, C] in [0, 1] of the model's input shape, for
    attacks (state: e.g. `self.state`).

    Raises:
      checks.InputConventionError: `images01` are not float [B, H, W, C] of the input shape (or,
        concrete, not in [0, 1]).
    """
    self._check_shape(images01, "images01", "f", (0.0, 1.0))
    return classifier_model.unit_range_logits(self.model, state, images01, self.mean, self.std,
                                              self.test_time_flip)

  def features_and_logits(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(last hidden layer float32 [B, F], logits float32 [B, outputs]) of float images
    [B, H, W, C] of the model's input shape with pixel values in [0, 255] (not rounded, e.g. a
    generator's samples rescaled); usable under jit. No test-time flip.

    Raises:
      checks.InputConventionError: `images` are not float [B, H, W, C] of the input shape (or,
        concrete, not in [0, 255]).
    """
    self._check_shape(images, "images", "f", (0.0, 255.0))
    return classifier_model.features_and_logits(self.model, self.state, images, self.mean,
                                                self.std)

  def load_image(self, path: str, invert: str = "auto", fit: str = "auto") -> np.ndarray:
    """An image file as uint8 [H, W, C] model input (see `images.load_image`); fit 'auto' is the
    fit recorded with the checkpoint."""
    return image_files.load_image(path, self.image_shape, invert, self.fit if fit == "auto" else fit)

  def logits(self, images: np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, C] images 0..255 of the model's input shape -> float32 logits [B, outputs].

    Raises:
      checks.InputConventionError: `images` are not uint8 [B, H, W, C] of the input shape (e.g.
        floats in [0, 1], or a single image [H, W, C]: add a batch axis with images[None]).
    """
    self._check_shape(images, "images", "u")
    return np.asarray(self._logits(self.state, images))

  def predict(self, images: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
    """Per image of uint8 `images` [B, H, W, C] 0..255 of the model's input shape, [(class name,
    probability), ...] most probable first.

    The softmax head gives the top k classes; the sigmoid head gives both answers, e.g.
    [('8', 0.97), ('not 8', 0.03)].

    Raises:
      checks.InputConventionError: as `logits`.
    """
    logits = self.logits(images)
    if self.config.head == "sigmoid":
      positive = self.class_names[self.config.positive_class]
      answers = []
      for p in np.asarray(cnn.one_vs_rest(logits)).tolist():
        pair = [(positive, p), (f"not {positive}", 1.0 - p)]
        answers.append(sorted(pair, key=lambda t: -t[1]))
      return answers
    probabilities, classes = (np.asarray(a) for a in cnn.top_k(logits, k))
    return [[(self.class_names[c], float(p)) for c, p in zip(cs, ps)]
            for cs, ps in zip(classes.tolist(), probabilities.tolist())]
