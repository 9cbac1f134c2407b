"""Image classification: softmax over classes, or a sigmoid one-vs-rest head ("bird or not").

Config fields (see experiments/configs/cnn_mnist.py and cnn_cifar10.py): dataset, data_dir and the
image-folder fields (image_size, validation_fraction, split_seed, bad_images, cache_dir), head
('softmax' or 'sigmoid'), positive_class, label_smoothing, model.name ('cnn' or 'resnet') and its
fields, augment.* (shift, flip, rotate_degrees, blur_probability, blur_max_sigma), optimizer.*,
batch_size, num_epochs / num_steps and the loop's cadence fields; optionally adversarial.* (train on
PGD examples, see mlfun_jax/adversarial_training.py and experiments/configs/cnn_mnist_adversarial.py).
"""

from collections.abc import Callable
from typing import Any

import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlfun_jax.classification import adversarial_training
from mlfun_jax.data import augment
from mlfun_jax.data import image_stats
from mlfun_jax.core import checkpoint
from mlfun_jax import data
from mlfun_jax.data import images as image_files
from mlfun_jax.core import optim
from mlfun_jax.core import parallel
from mlfun_jax.core import roc
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import cnn
from mlfun_jax.models import resnet

HEADS = ("softmax", "sigmoid")
MODELS = ("cnn", "resnet")
# Sigmoid head: logits are histogrammed in bins of this width over [-AUC_LOGIT_RANGE, AUC_LOGIT_RANGE]
# to compute the ROC AUC from sums (pairs in one bin count as ties).
AUC_LOGIT_RANGE = 16.0
AUC_BINS = 3200


class TrainState(train_state.TrainState):
  """flax TrainState plus BatchNorm running averages (an empty dict for models without them)."""
  batch_stats: Any = flax.struct.field(default_factory=dict)


def _as_tuple(value):
  return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def create_model(config: ml_collections.ConfigDict, num_classes: int):
  """The network of `config.model` with one output per class (softmax) or one logit (sigmoid).

  model.name 'cnn' (default): the series' `cnn.CNN`; 'resnet': `resnet.ResNet` with BatchNorm.
  """
  if config.head not in HEADS:
    raise UserError(f"unknown config field head={config.head!r}; choose one of {', '.join(HEADS)}")
  num_outputs = num_classes if config.head == "softmax" else 1
  name = config.model.get("name", "cnn")
  if name == "cnn":
    return cnn.CNN(
        num_outputs=num_outputs,
        conv_features=_as_tuple(config.model.conv_features),
        convs_per_block=config.model.convs_per_block,
        kernel_size=config.model.kernel_size,
        dense_features=tuple(config.model.dense_features),
        dropout_rate=config.model.dropout_rate)
  if name == "resnet":
    return resnet.ResNet(
        num_outputs=num_outputs,
        stem_features=config.model.stem_features,
        stage_features=tuple(config.model.stage_features),
        residual_stages=tuple(bool(r) for r in config.model.residual_stages),
        output_scale=config.model.output_scale,
        bn_momentum=config.model.bn_momentum)
  raise UserError(f"unknown config field model.name={name!r}; choose one of {', '.join(MODELS)}")


def _targets(labels: jax.Array, head: str, positive_class: int) -> jax.Array:
  if head == "sigmoid":
    return (labels == positive_class).astype(jnp.float32)
  return labels


def _losses(logits: jax.Array, targets: jax.Array, head: str,
            label_smoothing: float = 0.0) -> jax.Array:
  """Per-example loss [B] (softmax cross-entropy or sigmoid binary cross-entropy)."""
  if head == "sigmoid":
    return optax.sigmoid_binary_cross_entropy(logits[:, 0], targets)
  if label_smoothing:
    num_classes = logits.shape[-1]
    smoothed = optax.smooth_labels(jax.nn.one_hot(targets, num_classes), label_smoothing)
    return optax.softmax_cross_entropy(logits, smoothed)
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets)


def logit_histogram(logits: jax.Array, weights: jax.Array) -> jax.Array:
  """float32 [AUC_BINS]: `weights` [B] summed into bins of `logits` [B] over +-AUC_LOGIT_RANGE."""
  return roc.score_histogram(logits, weights, -AUC_LOGIT_RANGE, AUC_LOGIT_RANGE, AUC_BINS)


def _predictions(logits: jax.Array, head: str) -> jax.Array:
  """Predicted class [B]: argmax (softmax) or 1.0/0.0 for positive/negative (sigmoid)."""
  if head == "sigmoid":
    return (logits[:, 0] > 0).astype(jnp.float32)
  return jnp.argmax(logits, axis=-1)


def _variables(state: TrainState) -> dict[str, Any]:
  return ({"params": state.params, "batch_stats": state.batch_stats} if state.batch_stats
          else {"params": state.params})


def make_train_step(model, config: ml_collections.ConfigDict, mean: Any, std: Any) -> Callable:
  """(state, batch, rng) -> (state, {'loss', 'accuracy'}); one device's step, pmean over 'batch'.

  Augments on device (`config.augment`), replaces the batch by PGD examples when the config has an
  `adversarial` block, then normalises with the training set's channel stats. BatchNorm statistics
  are averaged over 'batch' inside the model, so batch_stats stay identical on every device.
  """
  head, positive_class, label_smoothing = config.head, config.positive_class, config.label_smoothing
  augment_kwargs = config.augment.to_dict()  # Its fields are `augment.augment`'s keywords.
  adversarial = adversarial_training.settings(config)

  def train_step(state, batch, rng):
    augment_rng, dropout_rng = jax.random.split(parallel.device_key(rng))
    pixels = augment.augment(augment_rng, batch["image"], **augment_kwargs)  # float 0..255
    targets = _targets(batch["label"], head, positive_class)
    if adversarial is not None:
      logits_fn = lambda x: unit_range_logits(model, state, x, mean, std)
      keys = parallel.example_keys(jax.random.fold_in(rng, 1), pixels.shape[0])
      pixels = 255.0 * adversarial_training.training_images(
          adversarial, logits_fn, pixels / 255.0, targets, keys, state.step)
    images = image_stats.normalise(pixels, mean, std)

    def loss_fn(params):
      variables = {**_variables(state), "params": params}
      logits, updates = model.apply(variables, images, train=True, rngs={"dropout": dropout_rng},
                                    mutable=["batch_stats"] if state.batch_stats else [])
      loss = _losses(logits, targets, head, label_smoothing).mean()
      return loss, (logits, updates.get("batch_stats", state.batch_stats))

    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
    accuracy = (_predictions(logits, head) == targets).mean()
    metrics = jax.lax.pmean({"loss": loss, "accuracy": accuracy}, parallel.AXIS)
    return state, metrics

  return train_step


def inference_logits(model, state: TrainState, images: jax.Array, mean: Any, std: Any,
                     test_time_flip: bool = False) -> jax.Array:
  """float32 logits [B, outputs] of uint8 images [B, H, W, C] (eval mode).

  test_time_flip: average the logits of each image and its left-right mirror image.
  """
  logits = model.apply(_variables(state), image_stats.normalise(images, mean, std), train=False)
  return _averaged_with_mirror(model, state, images, mean, std, logits) if test_time_flip else logits


def unit_range_logits(model, state: TrainState, images01: jax.Array, mean: Any, std: Any,
                      test_time_flip: bool = False) -> jax.Array:
  """`inference_logits` of float images [B, H, W, C] in [0, 1] (the attacks' range), differentiable
  in the images."""
  return inference_logits(model, state, 255.0 * images01, mean, std, test_time_flip)


def features_and_logits(model, state: TrainState, images: jax.Array, mean: Any, std: Any
                        ) -> tuple[jax.Array, jax.Array]:
  """(last hidden layer float32 [B, F], logits float32 [B, outputs]) of images [B, H, W, C] with
  values 0..255 (uint8 or float), in eval mode."""
  logits, sown = model.apply(_variables(state), image_stats.normalise(images, mean, std), train=False,
                             mutable=["intermediates"])
  return sown["intermediates"]["features"][0].astype(jnp.float32), logits


def _averaged_with_mirror(model, state: TrainState, images: jax.Array, mean: Any, std: Any,
                          logits: jax.Array) -> jax.Array:
  """The mean of `logits` (of `images`) and the logits of the left-right mirrored images."""
  return 0.5 * (logits + inference_logits(model, state, images[:, :, ::-1], mean, std))


def make_eval_step(model, config: ml_collections.ConfigDict, mean: Any, std: Any) -> Callable:
  """(state, batch) -> sums over the real (mask 1) examples of one device's batch.

  With `config.test_time_flip` the predictions average each image with its mirror image, and
  'single_view_correct' counts the plain predictions too. The sigmoid head adds counts for
  precision/recall and logit histograms for the ROC AUC. With an `adversarial` block whose
  eval_steps > 0, 'adversarial_correct' counts the predictions that survive PGD-eval_steps at
  adversarial.epsilon.
  """
  head, positive_class, test_time_flip = config.head, config.positive_class, config.test_time_flip
  adversarial = adversarial_training.settings(config)

  def eval_step(state, batch):
    single_view = logits = inference_logits(model, state, batch["image"], mean, std)
    if test_time_flip:
      logits = _averaged_with_mirror(model, state, batch["image"], mean, std, single_view)
    targets = _targets(batch["label"], head, positive_class)
    mask = batch["mask"]
    predictions = _predictions(logits, head)
    sums = {"loss": (_losses(logits, targets, head) * mask).sum(),
            "correct": ((predictions == targets) * mask).sum(),
            "count": mask.sum()}
    if adversarial is not None and adversarial.eval_steps:
      logits_fn = lambda x: unit_range_logits(model, state, x, mean, std, test_time_flip)
      attacked = adversarial_training.evaluation_images(
          adversarial, logits_fn, batch["image"].astype(jnp.float32) / 255.0, targets)
      sums["adversarial_correct"] = (
          (_predictions(logits_fn(attacked), head) == targets) * mask).sum()
    if test_time_flip:
      sums["single_view_correct"] = ((_predictions(single_view, head) == targets) * mask).sum()
    if head == "sigmoid":
      sums["true_positives"] = (predictions * targets * mask).sum()
      sums["predicted_positives"] = (predictions * mask).sum()
      sums["actual_positives"] = (targets * mask).sum()
      sums["positive_logits"] = logit_histogram(logits[:, 0], targets * mask)
      sums["negative_logits"] = logit_histogram(logits[:, 0], (1.0 - targets) * mask)
    return sums

  return eval_step


def summarize_eval(totals: dict[str, Any]) -> dict[str, float]:
  """Sums -> {'loss', 'accuracy', 'count'} (+ 'precision', 'recall', 'auc' for the sigmoid head)."""
  metrics = {"loss": totals["loss"] / totals["count"],
             "accuracy": totals["correct"] / totals["count"],
             "count": totals["count"]}
  if "adversarial_correct" in totals:
    metrics["adversarial_accuracy"] = totals["adversarial_correct"] / totals["count"]
  if "single_view_correct" in totals:
    metrics["single_view_accuracy"] = totals["single_view_correct"] / totals["count"]
  if "true_positives" in totals:
    metrics["precision"] = totals["true_positives"] / max(totals["predicted_positives"], 1.0)
    metrics["recall"] = totals["true_positives"] / max(totals["actual_positives"], 1.0)
    metrics["auc"] = roc.auc_from_histograms(totals["positive_logits"], totals["negative_logits"])
  return metrics


def create_state(model, config: ml_collections.ConfigDict, image_shape: tuple[int, ...],
                 num_steps: int, rng: jax.Array) -> TrainState:
  """Fresh train state: parameters (and BatchNorm averages) from `rng`, optimizer from config."""
  variables = model.init({"params": rng}, jnp.zeros((1, *image_shape), jnp.float32), train=False)
  tx = optim.create_optimizer(config.optimizer, num_steps)
  return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                           batch_stats=variables.get("batch_stats", {}))


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The classification Task for `train.run`: data, model, steps and their metadata."""
  dataset = data.load_configured_dataset(config)
  layout = train.batch_layout(config.batch_size)
  if config.head == "sigmoid" and not 0 <= config.positive_class < dataset.num_classes:
    raise UserError(f"config field positive_class={config.positive_class} is not a class of "
                    f"{dataset.name} (0..{dataset.num_classes - 1})")
  model = create_model(config, dataset.num_classes)
  num_steps = train.num_train_steps(config, len(dataset.train))
  mean, std = image_stats.channel_stats(dataset.train.images)
  return train.Task(
      init=lambda rng: create_state(model, config, dataset.image_shape, num_steps, rng),
      train_step=make_train_step(model, config, mean, std),
      eval_step=make_eval_step(model, config, mean, std),
      summarize_eval=summarize_eval,
      train_batches=lambda start: data.train_batches(
          dataset.train, seed=config.seed, start_step=start, **layout),
      eval_batches=lambda: data.eval_batches(dataset.test, **layout),
      num_steps=num_steps,
      examples_per_step=config.batch_size,
      meta={"task": "classification", "dataset": dataset.name,
            "class_names": list(dataset.class_names), "image_shape": list(dataset.image_shape),
            "input_mean": mean, "input_std": std,
            "fit": "crop" if "source" in dataset.info or dataset.image_shape[-1] == 3 else "pad",
            "num_skipped_images": dataset.info.get("num_skipped", 0)})


class Classifier:
  """A trained classifier restored from a workdir, for prediction in research code or the CLI.

  Attributes:
    meta: the checkpoint's meta record (config, class names, image shape, input stats).
    step: the checkpoint's step.
    mean, std: the training set's per-channel input stats.
    test_time_flip: whether the logits average each image with its mirror image (as in training).
  """

  def __init__(self, workdir: str):
    self.meta, self.step, self.config = checkpoint.latest_run(workdir, "classification",
                                                              "a classifier")
    self.image_shape = tuple(self.meta["image_shape"])
    if "channels" not in self.config:  # Checkpoints from before the field (data loading needs it).
      self.config.channels = self.image_shape[-1]
    self.class_names = list(self.meta["class_names"])
    self.fit = self.meta.get("fit", "pad")  # How images.to_model_input fits a photo to the input.
    self.model = create_model(self.config, len(self.class_names))
    self.state = checkpoint.restore_step(workdir, self.step, lambda: create_state(
        self.model, self.config, self.image_shape, 1, jax.random.key(0)))
    self.mean, self.std = self.meta["input_mean"], self.meta["input_std"]
    self.test_time_flip = bool(self.config.get("test_time_flip", False))
    self._logits = jax.jit(lambda state, images: inference_logits(
        self.model, state, images, self.mean, self.std, self.test_time_flip))

  def attack_logits(self, state: TrainState, images01: jax.Array) -> jax.Array:
    """`unit_range_logits` with this model's input stats and test-time flip: differentiable logits
    [B, outputs] of float images [B, H, W, C] in [0, 1], for attacks (state: e.g. `self.state`)."""
    return unit_range_logits(self.model, state, images01, self.mean, self.std, self.test_time_flip)

  def load_image(self, path: str, invert: str = "auto", fit: str = "auto") -> np.ndarray:
    """An image file as uint8 [H, W, C] model input (see `images.load_image`); fit 'auto' is the
    fit recorded with the checkpoint."""
    return image_files.load_image(path, self.image_shape, invert, self.fit if fit == "auto" else fit)

  def logits(self, images: np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, C] images (the model's input shape) -> float32 logits [B, outputs]."""
    return np.asarray(self._logits(self.state, images))

  def predict(self, images: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
    """Per image, [(class name, probability), ...] most probable first.

    The softmax head gives the top k classes; the sigmoid head gives both answers, e.g.
    [('8', 0.97), ('not 8', 0.03)].
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
