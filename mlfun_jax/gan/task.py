"""DCGAN on the shared loop: two optimizers in one state, the non-saturating loss, sample quality.

Config fields (mlfun_jax/gan/config.py; see experiments/configs/dcgan_mnist.py, dcgan_cifar10.py):
the image data fields; model.latent, model.generator_features, model.discriminator_features,
model.upsampling, model.ema_decay, model.generator_dense, model.discriminator_dense,
model.discriminator_norm, model.categorical_code / model.code_weight (InfoGAN's categorical
code: K classes, 0 for none; the weight of its mutual-information term); generator_optimizer and
discriminator_optimizer (mlfun_jax/core/optim.py);
quality.classifier_workdir (a classifier trained with this project on the same image shape: its
last hidden layer is the feature space of the Frechet distance, its softmax gives the Inception
Score; None: no quality metrics); samples.every / samples.num (the fixed-noise grid),
samples.pixel_art / samples.pixel_art_scale (NES palette, nearest-neighbour upsizing).

Each step updates the discriminator on real and generated images, then the generator against the
updated discriminator. With a categorical code both also minimise `code_weight` times the cross
entropy of the discriminator's Q head predicting the generated images' codes (InfoGAN's lower bound
on the mutual information between code and image, Chen et al. 2016). Gradients are averaged over
all devices; the generator's BatchNorm uses the global batch's statistics. Noise is keyed by each
example's index in the global batch, so every device draws its own noise and any number of devices
computes the same step.

Samples, pictures and quality metrics come from an exponential moving average of the generator's
weights (`model.ema_decay`; Yazici et al. 2019 show how much averaging helps GANs), whose
BatchNorm averages are tracked by running the averaged generator on each step's noise; with
ema_decay 0 the average is the current generator.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlfun_jax import data
from mlfun_jax.classification import inference as classification_inference
from mlfun_jax.core import checks
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.gan import config as gan_config
from mlfun_jax.gan import model as models
from mlfun_jax.gan import pictures as gan_pictures
from mlfun_jax.gan import sample_quality

EVAL_SEED = 11  # Noise of the evaluation's generated images: the same at every evaluation.
REAL_IMAGES = 10_000  # Held-out images the final Frechet distances compare with (at most).


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
  """The averaging weight of the old average at `step`: min(decay, (1 + step) / (10 + step)), so
  the early average does not hold on to the random initial weights (as TensorFlow's
  ExponentialMovingAverage with num_updates)."""
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def check_config(config: ml_collections.ConfigDict) -> None:
  """UserError naming the first bad model field."""
  decay = config.model.ema_decay
  if not 0.0 <= decay < 1.0:
    raise UserError(f"config field model.ema_decay={decay} must be in [0, 1)")
  codes = models.latent_of(config.model).codes
  if codes < 0 or codes == 1:
    raise UserError(f"config field model.categorical_code={codes} must be 0 (no code) or >= 2")
  if config.model.code_weight < 0:
    raise UserError(f"config field model.code_weight={config.model.code_weight} must be >= 0")


def to_signed(images: jax.Array) -> jax.Array:
  """uint8 [B, H, W, C] 0..255 (checked) -> float32 in [-1, 1] (the generator's tanh range)."""
  checks.check_images(images, name="images", dtype_kind="u")
  return images.astype(jnp.float32) / 127.5 - 1.0


def make_train_step(generator, discriminator, config):
  """(state, batch, rng) -> (state, metrics): a discriminator step, then a generator step, then
  the generator's moving average moves and runs once on the generator step's noise (in train
  mode, for its BatchNorm averages)."""
  latent = models.latent_of(config.model)
  ema_decay = float(config.model.ema_decay)
  code_weight = float(config.model.code_weight)

  def code_loss(code_logits, codes):
    """Mean cross entropy of the Q head's code logits [B, K] against the codes int [B] (0 without
    a code)."""
    if not latent.codes:
      return jnp.zeros((), jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(code_logits, codes).mean()

  def train_step(state: models.GANState, batch, rng):
    real = to_signed(batch["image"])
    keys = parallel.example_keys(rng, real.shape[0])
    d_keys, g_keys = jnp.moveaxis(jax.vmap(lambda k: jax.random.split(k))(keys), 1, 0)

    d_inputs, d_codes = latent.draw(d_keys)
    g_inputs, g_codes = latent.draw(g_keys)
    fake, updates = generator.apply(
        {"params": state.generator, "batch_stats": state.batch_stats},
        d_inputs, train=True, mutable=["batch_stats"])
    fake = jax.lax.stop_gradient(fake)

    def discriminate(params, stats, images):
      """Train-mode (logits, code logits) of one batch (real or generated: separate BatchNorm
      batches, as in DCGAN) and the updated BatchNorm averages."""
      outputs, updates = discriminator.apply({"params": params, "batch_stats": stats}, images,
                                             train=True, mutable=["batch_stats"])
      return outputs, updates.get("batch_stats", stats)

    def discriminator_loss(params):
      (real_logits, _), stats = discriminate(params, state.discriminator_stats, real)
      (fake_logits, fake_code_logits), stats = discriminate(params, stats, fake)
      loss = jax.nn.softplus(-real_logits).mean() + jax.nn.softplus(fake_logits).mean()
      loss += code_weight * code_loss(fake_code_logits, d_codes)
      return loss, (jax.nn.sigmoid(real_logits).mean(), jax.nn.sigmoid(fake_logits).mean(), stats)

    (d_loss, (d_real, d_fake, d_stats)), d_grads = jax.value_and_grad(
        discriminator_loss, has_aux=True)(state.discriminator)
    d_grads = jax.lax.pmean(d_grads, parallel.AXIS)
    d_updates, d_opt_state = state.discriminator_tx.update(
        d_grads, state.discriminator_opt_state, state.discriminator)
    d_params = optax.apply_updates(state.discriminator, d_updates)

    def generator_loss(params):
      images, new_stats = generator.apply(
          {"params": params, "batch_stats": updates["batch_stats"]},
          g_inputs, train=True, mutable=["batch_stats"])
      (logits, code_logits), _ = discriminate(d_params, d_stats, images)
      info = code_loss(code_logits, g_codes)
      loss = jax.nn.softplus(-logits).mean() + code_weight * info  # Non-saturating loss.
      return loss, (new_stats["batch_stats"], info)

    (g_loss, (batch_stats, info)), g_grads = jax.value_and_grad(generator_loss, has_aux=True)(
        state.generator)
    g_grads = jax.lax.pmean(g_grads, parallel.AXIS)
    g_updates, g_opt_state = state.generator_tx.update(
        g_grads, state.generator_opt_state, state.generator)
    g_params = optax.apply_updates(state.generator, g_updates)
    ema_params = optax.incremental_update(g_params, state.ema_generator,
                                          1.0 - ema_decay_at(state.step, ema_decay))
    _, ema_stats = generator.apply(
        {"params": ema_params, "batch_stats": state.ema_batch_stats},
        g_inputs, train=True, mutable=["batch_stats"])
    new_state = state.replace(
        step=state.step + 1, generator=g_params, batch_stats=batch_stats,
        ema_generator=ema_params, ema_batch_stats=ema_stats["batch_stats"],
        discriminator=d_params, discriminator_stats=d_stats, generator_opt_state=g_opt_state,
        discriminator_opt_state=d_opt_state)
    metrics = {"discriminator_loss": d_loss, "generator_loss": g_loss,
               "d_real": d_real, "d_fake": d_fake}
    if latent.codes:
      metrics["code_loss"] = info  # Of the generator step (the losses above include it).
    return new_state, jax.lax.pmean(metrics, parallel.AXIS)

  return train_step


class QualityClassifier:
  """A trained classifier's view of images: features (last hidden layer) and probabilities."""

  def __init__(self, workdir: str, image_shape):
    try:
      self.classifier = classification_inference.Classifier(workdir)
    except UserError as e:
      raise UserError(f"config field quality.classifier_workdir: {e}") from e
    if tuple(self.classifier.image_shape) != tuple(image_shape):
      raise UserError(f"config field quality.classifier_workdir={workdir!r}: its classifier takes "
                      f"{tuple(self.classifier.image_shape)} images, the GAN makes "
                      f"{tuple(image_shape)}")
    self.workdir = workdir
    self.num_classes = len(self.classifier.class_names)

  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """float [B, H, W, C] in [-1, 1] (checked; the classifier's image shape) -> (features float32
    [B, F], probabilities float32 [B, K]); usable under jit."""
    checks.check_images(images, name="images", dtype_kind="f", value_range=(-1.0, 1.0),
                        shape=self.classifier.image_shape)
    features, logits = self.classifier.features_and_logits((images + 1.0) * 127.5)
    return features, jax.nn.softmax(logits, axis=-1)


def _moment_sums(features, probabilities, mask, prefix: str) -> dict[str, jax.Array]:
  """Sums that add up over batches to feature statistics, the Inception Score and a histogram."""
  weights = mask[:, None]
  entropy_terms = probabilities * jnp.log(jnp.clip(probabilities, 1e-12))
  classes = jax.nn.one_hot(jnp.argmax(probabilities, axis=-1), probabilities.shape[-1])
  return {f"{prefix}_count": mask.sum(),
          f"{prefix}_feature_sum": (features * weights).sum(axis=0),
          f"{prefix}_feature_outer": jnp.einsum("bi,bj->ij", features * weights, features),
          f"{prefix}_probability_sum": (probabilities * weights).sum(axis=0),
          f"{prefix}_plogp_sum": (entropy_terms * weights).sum(),
          f"{prefix}_class_counts": (classes * weights).sum(axis=0)}


def make_eval_step(generator, discriminator, config, quality: QualityClassifier | None):
  """(state, batch) -> sums: the discriminator's view of real test images and of as many generated
  images (fixed noise, keyed by batch and example), and with a quality classifier the sums of
  `_moment_sums` for both. With a categorical code also how often the Q head names the code, and
  with a classifier a count of (code, class found) pairs."""
  latent = models.latent_of(config.model)

  def eval_step(state: models.GANState, batch):
    real = to_signed(batch["image"])
    mask = batch["mask"]
    keys = parallel.example_keys(jax.random.fold_in(jax.random.key(EVAL_SEED),
                                                    batch["batch_index"]), real.shape[0])
    inputs, codes = latent.draw(keys)
    fake = models.generate(generator, state.ema_generator, state.ema_batch_stats, inputs)
    d_vars = {"params": state.discriminator, "batch_stats": state.discriminator_stats}
    real_logits, _ = discriminator.apply(d_vars, real)
    fake_logits, code_logits = discriminator.apply(d_vars, fake)
    sums = {"count": mask.sum(),
            "d_real": (jax.nn.sigmoid(real_logits) * mask).sum(),
            "d_fake": (jax.nn.sigmoid(fake_logits) * mask).sum()}
    if latent.codes:
      sums["code_correct"] = ((jnp.argmax(code_logits, -1) == codes) * mask).sum()
    if quality is not None:
      sums.update(_moment_sums(*quality(real), mask, "real"))
      fake_features, fake_probabilities = quality(fake)
      sums.update(_moment_sums(fake_features, fake_probabilities, mask, "fake"))
      if latent.codes:
        found = jax.nn.one_hot(jnp.argmax(fake_probabilities, -1), fake_probabilities.shape[-1])
        sums["code_class_counts"] = jnp.einsum(
            "bk,bc->kc", jax.nn.one_hot(codes, latent.codes) * mask[:, None], found)
    return sums

  return eval_step


def quality_from_sums(totals: dict[str, Any], prefix: str) -> tuple[np.ndarray, np.ndarray, float,
                                                                    np.ndarray]:
  """(feature mean [F], covariance [F, F], Inception Score, class counts [K]) from summed moments."""
  n = totals[f"{prefix}_count"]
  mean = np.asarray(totals[f"{prefix}_feature_sum"], np.float64) / n
  outer = np.asarray(totals[f"{prefix}_feature_outer"], np.float64)
  covariance = (outer - n * np.outer(mean, mean)) / (n - 1)
  marginal = np.asarray(totals[f"{prefix}_probability_sum"], np.float64) / n
  mean_kl = totals[f"{prefix}_plogp_sum"] / n - float(
      (marginal * np.log(np.clip(marginal, 1e-12, None))).sum())
  return mean, covariance, float(np.exp(mean_kl)), np.asarray(totals[f"{prefix}_class_counts"])


def summarize_eval(totals: dict[str, Any]) -> dict[str, float]:
  """Discriminator outputs, and with a quality classifier the Frechet distance between generated
  and real test images, both Inception Scores and how many classes the generated images cover;
  with a categorical code the Q head's accuracy and (with a classifier) the code-class purity."""
  n = totals["count"]
  metrics = {"d_real": totals["d_real"] / n, "d_fake": totals["d_fake"] / n}
  if "code_correct" in totals:
    metrics["code_accuracy"] = totals["code_correct"] / n
  if "code_class_counts" in totals:
    metrics["code_class_purity"] = sample_quality.code_class_purity(totals["code_class_counts"])
  if "fake_count" in totals:
    real_mean, real_cov, real_is, _ = quality_from_sums(totals, "real")
    fake_mean, fake_cov, fake_is, fake_classes = quality_from_sums(totals, "fake")
    metrics["frechet_distance"] = sample_quality.frechet_distance(
        fake_mean, fake_cov, real_mean, real_cov)
    metrics["inception_score"] = fake_is
    metrics["real_inception_score"] = real_is
    metrics["classes_found"] = float((fake_classes > 0).sum())
  metrics["count"] = n
  return metrics


def _indexed(batches):
  """Adds each eval batch's index (int32 [D]) so its generated images get their own noise."""
  for i, batch in enumerate(batches):
    yield {**batch, "batch_index": np.full(batch["mask"].shape[0], i, np.int32)}


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The DCGAN Task for `train.run`."""
  check_config(config)
  layout = train.batch_layout(config.batch_size)
  dataset = data.load_configured_input(config, layout["process_index"], layout["process_count"])
  generator, discriminator = models.create_models(config, dataset.image_shape)
  quality = (QualityClassifier(config.quality.classifier_workdir, dataset.image_shape)
             if config.quality.classifier_workdir else None)
  num_steps = train.num_train_steps(config, dataset.num_train)
  meta = {"task": "gan", "dataset": dataset.name, "class_names": list(dataset.class_names),
          "image_shape": list(dataset.image_shape)}
  pictures = functools.partial(gan_pictures.fixed_noise_grid, generator, config)
  return train.Task(
      init=lambda rng: models.create_state(generator, discriminator, config, num_steps, rng),
      train_step=make_train_step(generator, discriminator, config),
      eval_step=make_eval_step(generator, discriminator, config, quality),
      summarize_eval=summarize_eval,
      train_batches=lambda start: dataset.train_batches(start, **layout),
      eval_batches=lambda: _indexed(dataset.eval_batches(**layout)),
      num_steps=num_steps,
      examples_per_step=config.batch_size,
      fields_added_later=gan_config.FIELDS_ADDED_LATER,
      meta=meta,
      on_eval=lambda state, step, workdir: pictures(state, workdir, step),
      on_end=lambda state, workdir: gan_pictures.final_pictures_and_report(
          generator, config, state, quality, workdir,
          real_images=dataset.test_images(REAL_IMAGES),
          initial_state=models.create_state(generator, discriminator, config, num_steps,
                                            jax.random.key(config.seed))))
