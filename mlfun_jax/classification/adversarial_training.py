"""Adversarial training (Madry et al. 2018): train a classifier on PGD examples of its batches.

Read by the classification task when its config has `adversarial.enabled` (see
experiments/configs/cnn_mnist_adversarial.py); without it training is unchanged. Fields:
  epsilon: L-infinity bound of the training attack, in pixel units of [0, 1] (0.3 for MNIST).
  num_steps: PGD steps per train step (1 with random_start and relative_step_size 1.25 is the
    "fast adversarial training" of Wong et al. 2020: FGSM from a random start).
  relative_step_size: each PGD step's size as a multiple of the current epsilon.
  random_start: start each attack at a uniformly random point of the epsilon-ball (keyed per
    example, so 8 devices draw what 1 device draws).
  warmup_steps: epsilon grows linearly from 0 to `epsilon` over these train steps (0: none).
  eval_steps: PGD steps (no random start, step 2.5 * epsilon / eval_steps) of the accuracy under
    attack that each evaluation adds as 'adversarial_accuracy' (0: clean evaluation only).
The attack runs on the model in eval mode (no dropout, BatchNorm running averages) with the
current parameters, which receive no gradient through it.
"""

import jax
import jax.numpy as jnp
import ml_collections

from mlfun_jax.adversarial import attacks
from mlfun_jax.core.errors import UserError


def settings(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict | None:
  """The config's `adversarial` block, checked; None when it is not enabled (plain training)."""
  if not config.adversarial.enabled:
    return None
  adversarial = config.adversarial
  if config.head != "softmax":
    raise UserError(f"adversarial training needs head='softmax', not {config.head!r}")
  checks = {"epsilon": adversarial.epsilon >= 0, "num_steps": adversarial.num_steps >= 1,
            "relative_step_size": adversarial.relative_step_size > 0,
            "warmup_steps": adversarial.warmup_steps >= 0,
            "eval_steps": adversarial.eval_steps >= 0}
  for field, ok in checks.items():
    if not ok:
      raise UserError(f"config field adversarial.{field}={adversarial[field]!r} is out of range")
  return adversarial


def epsilon_at(adversarial: ml_collections.ConfigDict, step: jax.Array) -> jax.Array:
  """The training epsilon at train step `step` (linear warm-up over adversarial.warmup_steps)."""
  if not adversarial.warmup_steps:
    return jnp.float32(adversarial.epsilon)
  fraction = jnp.minimum(1.0, (step.astype(jnp.float32) + 1.0) / adversarial.warmup_steps)
  return adversarial.epsilon * fraction


def training_images(adversarial: ml_collections.ConfigDict, logits_fn: attacks.LogitsFn,
                    images: jax.Array, labels: jax.Array, keys: jax.Array,
                    step: jax.Array) -> jax.Array:
  """The PGD examples a train step learns from.

  Args:
    adversarial: the config's `adversarial` block.
    logits_fn: the model's logits of images in [0, 1] (eval mode, current parameters).
    images: float32 [B, H, W, C] in [0, 1] (augmented batch; checked by `attacks.pgd`).
    labels: int [B] true classes.
    keys: PRNG keys [B], one per example, for the random start.
    step: the train step (for the epsilon warm-up).

  Returns:
    float32 [B, H, W, C] in [0, 1].
  """
  epsilon = epsilon_at(adversarial, step)
  return attacks.pgd(
      logits_fn, images, labels, epsilon=epsilon,
      step_size=adversarial.relative_step_size * epsilon, num_steps=adversarial.num_steps,
      rng=keys if adversarial.random_start else None)


def evaluation_images(adversarial: ml_collections.ConfigDict, logits_fn: attacks.LogitsFn,
                      images: jax.Array, labels: jax.Array) -> jax.Array:
  """PGD-`eval_steps` examples at the full epsilon of float32 images [B, H, W, C] in [0, 1] with
  true classes `labels` int [B] (deterministic; the inputs are checked by `attacks.pgd`)."""
  return attacks.pgd(logits_fn, images, labels, epsilon=adversarial.epsilon,
                     step_size=2.5 * adversarial.epsilon / adversarial.eval_steps,
                     num_steps=adversarial.eval_steps)

