"""Autoencoders on the shared loop: the 2-neuron bottleneck, conv autoencoders, VAEs, denoising.

Config fields (`mlfun_jax.autoencoder.config.defaults()`, each with a comment there): the image data
fields; model.name ('autoencoder' or 'vae'), model.architecture ('dense' or 'conv'), model.widths,
model.bottleneck (autoencoder) or model.latent (VAE); likelihood ('bernoulli' or 'gaussian', with
gaussian_scale); binarize ('none' or 'dynamic': training pixels are drawn as Bernoulli(grey level)
afresh each step, the test split is binarized once with a fixed seed); noise ('none', 'gaussian',
'masking', 'salt_and_pepper') with noise_level, for a denoising autoencoder (corrupted input, clean
target); exclude_class (>= 0: train without that class and report the ROC AUC of the reconstruction
error for spotting it).

Losses are in nats per image (summed over pixels); for the VAE `loss` is the negative ELBO.
Randomness (binarization, corruption, the VAE's noise) is keyed by each example's index in the
global batch, so any number of devices and processes computes the same step.
"""

from typing import Any

from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlfun_jax import data
from mlfun_jax.autoencoder import config as autoencoder_config
from mlfun_jax.autoencoder import model as models
from mlfun_jax.autoencoder import pictures as autoencoder_pictures
from mlfun_jax.core import checks
from mlfun_jax.core import optim
from mlfun_jax.core import parallel
from mlfun_jax.core import roc
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import augment
from mlfun_jax.models.init import init_variables

MODELS = ("autoencoder", "vae")
LIKELIHOODS = ("bernoulli", "gaussian")
BINARIZE = ("none", "dynamic")
TEST_BINARIZE_SEED = 20240101  # The test split's one binarization: fixed, so runs compare.
EVAL_SEED = 7  # Keys of the eval's corruption and VAE noise (the same every evaluation).
# Anomaly scores (per-pixel MSE of the reconstruction) are histogrammed over log10 in this range.
SCORE_LOG10_RANGE = (-6.0, 0.0)
SCORE_BINS = 3000


class TrainState(train_state.TrainState):
  pass


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises UserError naming the first bad autoencoder config field."""
  for field, value, choices in (("model.name", config.model.name, MODELS),
                                ("model.architecture", config.model.architecture,
                                 models.ARCHITECTURES),
                                ("likelihood", config.likelihood, LIKELIHOODS),
                                ("noise", config.noise, augment.NOISES),
                                ("binarize", config.binarize, BINARIZE)):
    if value not in choices:
      raise UserError(f"config field {field}={value!r} must be one of {', '.join(choices)}")
  size_field = "bottleneck" if config.model.name == "autoencoder" else "latent"
  if config.model[size_field] < 1:
    raise UserError(f"config field model.{size_field}={config.model[size_field]} must be >= 1")
  if config.likelihood == "gaussian" and not config.gaussian_scale > 0:
    raise UserError(f"config field gaussian_scale={config.gaussian_scale} must be > 0")
  if not 0.0 <= config.noise_level <= (10.0 if config.noise == "gaussian" else 1.0):
    raise UserError(f"config field noise_level={config.noise_level} is out of range for "
                    f"noise={config.noise!r}")


def create_model(config: ml_collections.ConfigDict, image_shape: tuple[int, int, int]):
  """The flax module named by config.model (see mlfun_jax/autoencoder/model.py), computing in
  config.dtype (its codes, logits and so every loss stay float32)."""
  m = config.model
  dtype = jnp.dtype(config.dtype)
  image_shape = tuple(int(d) for d in image_shape)
  try:
    models.check_architecture(m.architecture, tuple(m.widths), image_shape)
  except ValueError as e:
    raise UserError(f"config field model.widths={tuple(m.widths)}: {e}") from e
  if m.name == "vae":
    return models.VariationalAutoencoder(image_shape, m.architecture, tuple(m.widths), m.latent,
                                         dtype)
  return models.Autoencoder(image_shape, m.architecture, tuple(m.widths), m.bottleneck, dtype)


def create_state(model, config: ml_collections.ConfigDict, num_steps: int,
                 rng: jax.Array) -> TrainState:
  """Fresh parameters from `rng` and the optimizer from config."""
  images = jnp.zeros((1, *model.image_shape), jnp.float32)
  if models.is_vae(model):
    variables = init_variables(model, rng, images, jnp.zeros((1, model.latent)))
  else:
    variables = init_variables(model, rng, images)
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=optim.create_optimizer(config.optimizer, num_steps,
                                                     config.grad_accum_steps))


def negative_log_likelihood(logits, targets, config) -> jax.Array:
  """Per image, nats [B]: -log p(targets | decoder output) under config.likelihood."""
  if config.likelihood == "gaussian":
    return models.gaussian_nll(logits, targets, config.gaussian_scale)
  return models.bernoulli_nll(logits, targets)


def _losses(model, params, config, inputs, targets, noise_keys):
  """Per-image (objective, reconstruction nll, kl, per-pixel mse), each float32 [B]."""
  if models.is_vae(model):
    noise = jax.vmap(lambda k: jax.random.normal(k, (model.latent,)))(noise_keys)
    logits, mean, logvar = model.apply({"params": params}, inputs, noise)
    kl = models.gaussian_kl(mean, logvar)
  else:
    logits = model.apply({"params": params}, inputs)
    kl = jnp.zeros(inputs.shape[0])
  nll = negative_log_likelihood(logits, targets, config)
  error = jnp.square(jax.nn.sigmoid(logits) - targets)
  mse = error.reshape(error.shape[0], -1).mean(axis=-1)
  return nll + kl, nll, kl, mse


def _example_inputs(keys, images, config, binarize: bool):
  """(corrupted input, clean target) for one batch; `keys` [B] one per example."""
  binarize_keys, noise_keys, sample_keys = jnp.moveaxis(
      jax.vmap(lambda k: jax.random.split(k, 3))(keys), 1, 0)
  if binarize:
    images = jax.vmap(lambda k, x: jax.random.bernoulli(k, x).astype(jnp.float32))(
        binarize_keys, images)
  return augment.corrupt(noise_keys, images, config.noise, config.noise_level), images, sample_keys


def make_train_step(model, config: ml_collections.ConfigDict):
  """(state, batch, rng) -> (state, metrics); one device's step, gradients pmean'd over 'batch'.

  batch['image']: uint8 [B, H, W, C] (0..255).
  """

  def train_step(state, batch, rng):
    checks.check_images(batch["image"], name="batch['image']", dtype_kind="u")
    images = batch["image"].astype(jnp.float32) / 255.0
    keys = parallel.example_keys(rng, images.shape[0])
    inputs, targets, sample_keys = _example_inputs(keys, images, config,
                                                   config.binarize == "dynamic")

    def loss_fn(params):
      objective, nll, kl, mse = _losses(model, params, config, inputs, targets, sample_keys)
      return objective.mean(), {"reconstruction": nll.mean(), "kl": kl.mean(), "mse": mse.mean()}

    (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    metrics = {"loss": loss, **parts}
    if not models.is_vae(model):
      del metrics["kl"]
    return state.apply_gradients(grads=grads), jax.lax.pmean(metrics, parallel.AXIS)

  return train_step


def anomaly_score_histogram(mse: jax.Array, weights: jax.Array) -> jax.Array:
  """float32 [SCORE_BINS]: `weights` [B] binned by log10 of the per-pixel MSE [B]."""
  return roc.score_histogram(jnp.log10(mse + 1e-12), weights, *SCORE_LOG10_RANGE, SCORE_BINS)


def make_eval_step(model, config: ml_collections.ConfigDict):
  """(state, batch) -> per-device sums: count, loss, reconstruction, kl, mse (+ anomaly histograms).

  The test split is already binarized (when config.binarize is 'dynamic'); corruption and the VAE's
  noise use fixed keys, so every evaluation of the same parameters gives the same numbers.
  """

  def eval_step(state, batch):
    checks.check_images(batch["image"], name="batch['image']", dtype_kind="u")
    images = batch["image"].astype(jnp.float32) / 255.0
    mask = batch["mask"]
    keys = parallel.example_keys(jax.random.key(EVAL_SEED), images.shape[0])
    inputs, targets, sample_keys = _example_inputs(keys, images, config, binarize=False)
    objective, nll, kl, mse = _losses(model, state.params, config, inputs, targets, sample_keys)
    sums = {"count": mask.sum(), "loss": (objective * mask).sum(),
            "reconstruction": (nll * mask).sum(), "mse": (mse * mask).sum()}
    if models.is_vae(model):
      sums["kl"] = (kl * mask).sum()
    if config.exclude_class >= 0:
      unseen = (batch["label"] == config.exclude_class).astype(jnp.float32)
      sums["unseen_scores"] = anomaly_score_histogram(mse, mask * unseen)
      sums["seen_scores"] = anomaly_score_histogram(mse, mask * (1.0 - unseen))
    return sums

  return eval_step


def summarize_eval(totals: dict[str, Any]) -> dict[str, float]:
  """Per-image means (`loss`: objective, for the VAE the negative ELBO), and the anomaly AUC."""
  count = totals["count"]
  metrics = {name: totals[name] / count
             for name in ("loss", "reconstruction", "kl", "mse") if name in totals}
  if "unseen_scores" in totals:
    metrics["anomaly_auc"] = roc.auc_from_histograms(totals["unseen_scores"],
                                                     totals["seen_scores"])
  metrics["count"] = count
  return metrics


def binarize_once(images: np.ndarray, seed: int = TEST_BINARIZE_SEED) -> np.ndarray:
  """uint8 [N, H, W, C] grey levels (0..255) -> uint8 0/255 drawn as Bernoulli(grey / 255), seeded.

  Raises:
    InputConventionError: images that are not a uint8 batch [N, H, W, C].
  """
  checks.check_images(images, name="images", dtype_kind="u")
  draws = np.random.default_rng(seed).random(images.shape, dtype=np.float32)
  return np.where(draws < images.astype(np.float32) / 255.0, 255, 0).astype(np.uint8)


def prepare_dataset(config: ml_collections.ConfigDict) -> data.ImageDataset:
  """The configured dataset, without exclude_class in training and binarized as configured."""
  dataset = data.load_configured_dataset(config)
  train_split, test_split = dataset.train, dataset.test
  if config.exclude_class >= 0:
    if config.exclude_class >= dataset.num_classes:
      raise UserError(f"config field exclude_class={config.exclude_class} is not a class of "
                      f"{dataset.name} (0..{dataset.num_classes - 1})")
    keep = train_split.labels != config.exclude_class
    train_split = data.ArraySplit(train_split.images[keep], train_split.labels[keep])
  if config.binarize == "dynamic":
    test_split = data.ArraySplit(binarize_once(test_split.images), test_split.labels)
  return data.ImageDataset(dataset.name, train_split, test_split, dataset.class_names,
                           dataset.info)


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The autoencoder Task for `train.run`."""
  check_config(config)
  dataset = prepare_dataset(config)
  layout = train.batch_layout(config.batch_size)
  model = create_model(config, dataset.image_shape)
  num_steps = train.num_train_steps(config, len(dataset.train))
  meta = {"task": "autoencoder", "dataset": dataset.name,
          "class_names": list(dataset.class_names), "image_shape": list(dataset.image_shape)}
  return train.Task(
      init=lambda rng: create_state(model, config, num_steps, rng),
      train_step=make_train_step(model, config),
      eval_step=make_eval_step(model, config),
      summarize_eval=summarize_eval,
      train_batches=lambda start: data.train_batches(
          dataset.train, seed=config.seed, start_step=start, **layout),
      eval_batches=lambda: data.eval_batches(dataset.test, **layout),
      num_steps=num_steps,
      examples_per_step=config.batch_size,
      meta=meta,
      on_eval=lambda state, step, workdir: autoencoder_pictures.progress_pictures(
          model, config, state.params, dataset, workdir, step),
      on_end=lambda state, workdir: autoencoder_pictures.final_pictures_and_report(
          model, config, state.params, dataset, workdir),
      fields_added_later=autoencoder_config.FIELDS_ADDED_LATER)

