"""Image classification with the series' CNN: softmax over classes, or sigmoid one-vs-rest.

Config fields (see experiments/configs/cnn_mnist.py): dataset, data_dir, head ('softmax' or
'sigmoid'), positive_class (sigmoid head: "8 or not"), model.*, optimizer.*, random_shift, batch_size,
num_epochs / num_steps and the loop's cadence fields.
"""

import math
import os
from collections.abc import Callable
from typing import Any

from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlfun_jax import augment
from mlfun_jax import checkpoint
from mlfun_jax import data
from mlfun_jax import optim
from mlfun_jax import parallel
from mlfun_jax import train
from mlfun_jax.errors import UserError
from mlfun_jax.models import cnn

HEADS = ("softmax", "sigmoid")


def create_model(config: ml_collections.ConfigDict, num_classes: int) -> cnn.CNN:
  """The CNN of `config.model` with one output per class (softmax) or one logit (sigmoid)."""
  if config.head not in HEADS:
    raise UserError(f"unknown config field head={config.head!r}; choose one of {', '.join(HEADS)}")
  return cnn.CNN(
      num_outputs=num_classes if config.head == "softmax" else 1,
      conv_features=tuple(config.model.conv_features),
      convs_per_block=config.model.convs_per_block,
      kernel_size=config.model.kernel_size,
      dense_features=tuple(config.model.dense_features),
      dropout_rate=config.model.dropout_rate)


def normalise(images: jax.Array, mean: Any, std: Any) -> jax.Array:
  """uint8 [B, H, W, C] images -> float32, standardised with the training set's per-channel stats."""
  return (images.astype(jnp.float32) / 255.0 - jnp.asarray(mean)) / jnp.asarray(std)


def _targets(labels: jax.Array, head: str, positive_class: int) -> jax.Array:
  if head == "sigmoid":
    return (labels == positive_class).astype(jnp.float32)
  return labels


def _losses(logits: jax.Array, targets: jax.Array, head: str) -> jax.Array:
  """Per-example loss [B] (softmax cross-entropy or sigmoid binary cross-entropy)."""
  if head == "sigmoid":
    return optax.sigmoid_binary_cross_entropy(logits[:, 0], targets)
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets)


def _predictions(logits: jax.Array, head: str) -> jax.Array:
  """Predicted class [B]: argmax (softmax) or 1.0/0.0 for positive/negative (sigmoid)."""
  if head == "sigmoid":
    return (logits[:, 0] > 0).astype(jnp.float32)
  return jnp.argmax(logits, axis=-1)


def make_train_step(model: cnn.CNN, config: ml_collections.ConfigDict,
                    mean: Any, std: Any) -> Callable:
  """(state, batch, rng) -> (state, {'loss', 'accuracy'}); one device's step, pmean over 'batch'."""
  head, positive_class, shift = config.head, config.positive_class, config.random_shift

  def train_step(state, batch, rng):
    shift_rng, dropout_rng = jax.random.split(rng)
    images = normalise(augment.random_shift(shift_rng, batch["image"], shift), mean, std)
    targets = _targets(batch["label"], head, positive_class)

    def loss_fn(params):
      logits = model.apply({"params": params}, images, train=True, rngs={"dropout": dropout_rng})
      return _losses(logits, targets, head).mean(), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    state = state.apply_gradients(grads=grads)
    accuracy = (_predictions(logits, head) == targets).mean()
    metrics = jax.lax.pmean({"loss": loss, "accuracy": accuracy}, parallel.AXIS)
    return state, metrics

  return train_step


def make_eval_step(model: cnn.CNN, config: ml_collections.ConfigDict,
                   mean: Any, std: Any) -> Callable:
  """(state, batch) -> sums over the real (mask 1) examples of one device's batch."""
  head, positive_class = config.head, config.positive_class

  def eval_step(state, batch):
    logits = model.apply({"params": state.params}, normalise(batch["image"], mean, std),
                         train=False)
    targets = _targets(batch["label"], head, positive_class)
    mask = batch["mask"]
    predictions = _predictions(logits, head)
    sums = {"loss": (_losses(logits, targets, head) * mask).sum(),
            "correct": ((predictions == targets) * mask).sum(),
            "count": mask.sum()}
    if head == "sigmoid":
      sums["true_positives"] = (predictions * targets * mask).sum()
      sums["predicted_positives"] = (predictions * mask).sum()
      sums["actual_positives"] = (targets * mask).sum()
    return sums

  return eval_step


def summarize_eval(totals: dict[str, float]) -> dict[str, float]:
  """Sums -> {'loss', 'accuracy'} (+ 'precision', 'recall' for the sigmoid head)."""
  metrics = {"loss": totals["loss"] / totals["count"],
             "accuracy": totals["correct"] / totals["count"],
             "count": totals["count"]}
  if "true_positives" in totals:
    metrics["precision"] = totals["true_positives"] / max(totals["predicted_positives"], 1.0)
    metrics["recall"] = totals["true_positives"] / max(totals["actual_positives"], 1.0)
  return metrics


def create_state(model: cnn.CNN, config: ml_collections.ConfigDict, image_shape: tuple[int, ...],
                 num_steps: int, rng: jax.Array) -> train_state.TrainState:
  """Fresh train state: parameters from `rng`, optimizer from `config.optimizer`."""
  params = model.init({"params": rng}, jnp.zeros((1, *image_shape), jnp.float32),
                      train=False)["params"]
  tx = optim.create_optimizer(config.optimizer, num_steps)
  return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)


def num_train_steps(config: ml_collections.ConfigDict, num_train_examples: int) -> int:
  """`config.num_steps` if set, else enough steps for `config.num_epochs` epochs."""
  if config.get("num_steps"):
    return int(config.num_steps)
  return max(1, math.ceil(config.num_epochs * num_train_examples / config.batch_size))


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
  """Per-channel mean and std of uint8 [N, H, W, C] images scaled to [0, 1].

  Reads `chunk` images at a time, so memory stays small however large the split.
  """
  channels = images.shape[-1]
  total, total_squares = np.zeros(channels), np.zeros(channels)
  for start in range(0, len(images), chunk):
    scaled = images[start:start + chunk].reshape(-1, channels).astype(np.float64) / 255.0
    total += scaled.sum(axis=0)
    total_squares += np.square(scaled).sum(axis=0)
  count = images.size // channels
  mean = total / count
  std = np.sqrt(np.maximum(total_squares / count - mean**2, 0.0))
  return mean.tolist(), np.maximum(std, 1e-3).tolist()


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The classification Task for `train.run`: data, model, steps and their metadata."""
  dataset = data.load_image_dataset(config.dataset, config.data_dir)
  process_index, process_count = jax.process_index(), jax.process_count()
  local_devices = jax.local_device_count()
  data.check_batch_size(config.batch_size, process_count=process_count,
                        local_device_count=local_devices)
  if config.head == "sigmoid" and not 0 <= config.positive_class < dataset.num_classes:
    raise UserError(f"config field positive_class={config.positive_class} is not a class of "
                    f"{dataset.name} (0..{dataset.num_classes - 1})")
  model = create_model(config, dataset.num_classes)
  num_steps = num_train_steps(config, len(dataset.train))
  mean, std = channel_stats(dataset.train.images)
  layout = dict(global_batch_size=config.batch_size, process_index=process_index,
                process_count=process_count, local_device_count=local_devices)
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
            "input_mean": mean, "input_std": std})


class Classifier:
  """A trained classifier restored from a workdir, for prediction in research code or the CLI.

  Attributes:
    meta: the checkpoint's meta record (config, class names, image shape, input stats).
    step: the checkpoint's step.
  """

  def __init__(self, workdir: str):
    directory = os.path.join(workdir, "checkpoints")
    self.meta, self.step = checkpoint.latest_meta(directory)
    if self.meta.get("task") != "classification":
      raise UserError(f"checkpoint in {directory} is not a classifier (task {self.meta.get('task')!r})")
    self.config = ml_collections.ConfigDict(self.meta["config"])
    self.class_names = list(self.meta["class_names"])
    self.image_shape = tuple(self.meta["image_shape"])
    self.model = create_model(self.config, len(self.class_names))
    shapes = jax.eval_shape(
        lambda: create_state(self.model, self.config, self.image_shape, 1, jax.random.key(0)))
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    with checkpoint.Checkpointer(directory, create=False) as checkpointer:
      state, _ = checkpointer.restore(template, self.step)
    self.params = state.params
    mean, std = self.meta["input_mean"], self.meta["input_std"]
    self._logits = jax.jit(lambda params, images: self.model.apply(
        {"params": params}, normalise(images, mean, std), train=False))

  def logits(self, images: np.ndarray) -> np.ndarray:
    """uint8 [B, H, W, C] images (the model's input shape) -> float32 logits [B, outputs]."""
    return np.asarray(self._logits(self.params, images))

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
