"""Image classification: softmax over classes, or a sigmoid one-vs-rest head ("bird or not").

The train and eval steps and the Task of the family; the fields are in
mlfun_jax/classification/config.py (see experiments/configs/cnn_mnist.py and cnn_cifar10.py), the
network in model.py, and with `adversarial.enabled` the batches are PGD examples
(adversarial_training.py, experiments/configs/cnn_mnist_adversarial.py).
"""

from collections.abc import Callable
import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mlfun_jax import data
from mlfun_jax.classification import adversarial_training
from mlfun_jax.classification import config as classification_config
from mlfun_jax.classification import model as classifier_model
from mlfun_jax.core import parallel
from mlfun_jax.core import roc
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import augment
from mlfun_jax.data import image_stats

# Sigmoid head: logits are histogrammed in bins of this width over [-AUC_LOGIT_RANGE, AUC_LOGIT_RANGE]
# to compute the ROC AUC from sums (pairs in one bin count as ties).
AUC_LOGIT_RANGE = 16.0
AUC_BINS = 3200


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


def make_train_step(model, config: ml_collections.ConfigDict, mean: Any, std: Any,
                    whiten_bias_steps: int | None = None) -> Callable:
  """(state, batch, rng) -> (state, {'loss', 'accuracy'}); one device's step, pmean over 'batch'.

  Augments on device (`config.augment`; with augment.alternate_flips the batch's 'flip' field
  says which images are mirrored), replaces the batch by PGD examples when
  `config.adversarial.enabled`, then normalises with the training set's channel stats. BatchNorm
  statistics are averaged over 'batch' inside the model, so batch_stats stay identical on every
  device. whiten_bias_steps (the speedrun network): its whitening kernel keeps its value, and its
  bias too after that many steps.
  """
  head, positive_class, label_smoothing = config.head, config.positive_class, config.label_smoothing
  alternate_flips = config.augment.flip and config.augment.alternate_flips
  augment_kwargs = dict(shift=config.augment.shift, shift_fill=config.augment.shift_fill,
                        flip=config.augment.flip and not alternate_flips,
                        rotate_degrees=config.augment.rotate_degrees,
                        blur_probability=config.augment.blur_probability,
                        blur_max_sigma=config.augment.blur_max_sigma)
  adversarial = adversarial_training.settings(config)

  def train_step(state, batch, rng):
    augment_rng, dropout_rng = jax.random.split(parallel.device_key(rng))
    images = batch["image"]
    if alternate_flips:  # The batch says which images to flip (`arrays.train_batches`).
      images = jnp.where(batch["flip"][:, None, None, None], images[:, :, ::-1], images)
    pixels = augment.augment(augment_rng, images, **augment_kwargs)  # float 0..255
    targets = _targets(batch["label"], head, positive_class)
    if adversarial is not None:
      logits_fn = lambda x: classifier_model.unit_range_logits(model, state, x, mean, std)
      keys = parallel.example_keys(jax.random.fold_in(rng, 1), pixels.shape[0])
      pixels = 255.0 * adversarial_training.training_images(
          adversarial, logits_fn, pixels / 255.0, targets, keys, state.step)
    images = image_stats.normalise(pixels, mean, std)

    def loss_fn(params):
      variables = {**classifier_model.variables_of(state), "params": params}
      logits, updates = model.apply(variables, images, train=True, rngs={"dropout": dropout_rng},
                                    mutable=["batch_stats"] if state.batch_stats else [])
      loss = _losses(logits, targets, head, label_smoothing).mean()
      return loss, (logits, updates.get("batch_stats", state.batch_stats))

    (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    old_params = state.params
    state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
    if whiten_bias_steps is not None:
      # The speedrun's whitening kernel never changes (no gradient reaches it, and weight decay
      # must not shrink it); its bias trains for the first whiten_bias_steps steps.
      params = dict(state.params)
      params["whiten_kernel"] = old_params["whiten_kernel"]
      params["whiten_bias"] = jnp.where(state.step > whiten_bias_steps, old_params["whiten_bias"],
                                        state.params["whiten_bias"])
      state = state.replace(params=params)
    accuracy = (_predictions(logits, head) == targets).mean()
    metrics = jax.lax.pmean({"loss": loss, "accuracy": accuracy}, parallel.AXIS)
    return state, metrics

  return train_step


def make_eval_step(model, config: ml_collections.ConfigDict, mean: Any, std: Any) -> Callable:
  """(state, batch) -> sums over the real (mask 1) examples of one device's batch.

  With `config.test_time_flip` the predictions average each image with its mirror image (and with
  test_time_shift > 0 its shifted views, `model.averaged_with_shifts`), and 'single_view_correct'
  counts the plain predictions too. The sigmoid head adds counts for
  precision/recall and logit histograms for the ROC AUC. With `adversarial.enabled` and
  adversarial.eval_steps > 0, 'adversarial_correct' counts the predictions that survive
  PGD-eval_steps at adversarial.epsilon.
  """
  head, positive_class, test_time_flip = config.head, config.positive_class, config.test_time_flip
  test_time_shift = config.test_time_shift if test_time_flip else 0
  adversarial = adversarial_training.settings(config)

  def eval_step(state, batch):
    single_view = logits = classifier_model.inference_logits(model, state, batch["image"], mean,
                                                             std)
    if test_time_flip:
      logits = classifier_model.averaged_with_mirror(model, state, batch["image"], mean, std,
                                                    single_view)
    if test_time_shift:
      logits = classifier_model.averaged_with_shifts(model, state, batch["image"], mean, std,
                                                    logits, test_time_shift)
    targets = _targets(batch["label"], head, positive_class)
    mask = batch["mask"]
    predictions = _predictions(logits, head)
    sums = {"loss": (_losses(logits, targets, head) * mask).sum(),
            "correct": ((predictions == targets) * mask).sum(),
            "count": mask.sum()}
    if adversarial is not None and adversarial.eval_steps:
      logits_fn = lambda x: classifier_model.unit_range_logits(model, state, x, mean, std,
                                                              test_time_flip)
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


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The classification Task for `train.run`: data, model, steps and their metadata."""
  layout = train.batch_layout(config.batch_size)
  dataset = data.load_configured_input(config, layout["process_index"], layout["process_count"])
  if config.head == "sigmoid" and not 0 <= config.positive_class < dataset.num_classes:
    raise UserError(f"config field positive_class={config.positive_class} is not a class of "
                    f"{dataset.name} (0..{dataset.num_classes - 1})")
  model = classifier_model.create_model(config, dataset.num_classes)
  num_steps = train.num_train_steps(config, dataset.num_train)
  mean, std = dataset.mean, dataset.std
  if config.augment.flip and config.augment.alternate_flips and not dataset.alternate_flips:
    raise UserError("config field augment.alternate_flips needs the in-memory input pipeline "
                    f"(input_pipeline='memory'; {dataset.name!r} is read by '{dataset.pipeline}')")
  whiten_bias_steps = whitening = None
  if config.model.name == "speedrun":
    whiten_bias_steps = math.ceil(config.model.whiten_bias_epochs * dataset.num_train
                                  / config.batch_size)
    whitening = lambda: image_stats.normalise(
        dataset.train_images(classifier_model.WHITENING_IMAGES), mean, std)
  return train.Task(
      init=lambda rng: classifier_model.create_state(
          model, config, dataset.image_shape, num_steps, rng,
          whitening() if whitening is not None else None),
      train_step=make_train_step(model, config, mean, std, whiten_bias_steps),
      eval_step=make_eval_step(model, config, mean, std),
      summarize_eval=summarize_eval,
      train_batches=lambda start: dataset.train_batches(start, **layout),
      # Nothing held out (validation_fraction=0 on a folder without a test split): no evaluation.
      eval_batches=((lambda: dataset.eval_batches(**layout)) if len(dataset.test_images(1))
                    else None),
      num_steps=num_steps,
      examples_per_step=config.batch_size,
      fields_added_later=classification_config.FIELDS_ADDED_LATER,
      meta={"task": "classification", "dataset": dataset.name,
            "class_names": list(dataset.class_names), "image_shape": list(dataset.image_shape),
            "input_mean": mean, "input_std": std, "input_pipeline": dataset.pipeline,
            "fit": "crop" if "source" in dataset.info or dataset.image_shape[-1] == 3 else "pad",
            "num_skipped_images": dataset.info.get("num_skipped", 0)})
