"""Adversarial examples: FGSM, L-infinity PGD and the series' targeted iterative attack.

Every attack is a pure, batched function of a classifier's apply function and jit-compatible (the
step counts are Python ints; epsilon and step sizes may be traced scalars, e.g. a warm-up schedule):

  logits_fn: images float32 [B, H, W, C] with values in [clip_min, clip_max] (default [0, 1])
             -> logits float32 [B, num_classes]; differentiable, and per example (eval mode:
             no dropout, BatchNorm from running averages), so one image's attack never depends on
             the rest of its batch.

Every attack takes the same arguments: `(logits_fn, images, labels, *, epsilon, <its step
arguments>, clip_min=0.0, clip_max=1.0)` (+ `targeted=False` where it can go either way), with
images float [B, H, W, C] in [clip_min, clip_max] and labels int [B] (checked: uint8 images, values
outside the range on concrete arrays, or labels outside the model's classes raise
`checks.InputConventionError`; convert uint8 pixels with images.astype(np.float32) / 255).

Perturbations are bounded in the L-infinity norm: every pixel of the result lies within `epsilon`
of the original and within [clip_min, clip_max]. Untargeted attacks raise the cross-entropy of the
true labels; targeted ones lower the cross-entropy of the target labels (which raises the target
probability). Gradients are of the per-example losses summed over the batch, so an example's step
does not depend on the batch size.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from mlfun_jax.core import checks

LogitsFn = Callable[[jax.Array], jax.Array]


def check_inputs(logits_fn: LogitsFn, images: jax.Array, labels: jax.Array, *,
                 clip_min: float = 0.0, clip_max: float = 1.0, labels_name: str = "labels"
                 ) -> None:
  """Raises checks.InputConventionError unless `images` are float [B, H, W, C] (concrete: in
  [clip_min, clip_max]) and `labels` int [B] (concrete: classes of `logits_fn`'s logits)."""
  checks.check_images(images, name="images", dtype_kind="f", value_range=(clip_min, clip_max))
  checks.check_ids(labels, name=labels_name, rank=1)
  if labels.shape[0] != images.shape[0]:
    raise checks.InputConventionError(
        f"{labels_name}: expected one class per image ({images.shape[0]}), got shape "
        f"{tuple(labels.shape)}")
  if checks.is_concrete(labels) and checks.is_concrete(images):
    num_classes = jax.eval_shape(logits_fn, images).shape[-1]
    checks.check_ids(labels, name=labels_name, vocab_size=num_classes, rank=1)


def _loss_gradient(logits_fn: LogitsFn, images: jax.Array, labels: jax.Array,
                   targeted: bool) -> jax.Array:
  """Gradient [B, H, W, C] of the summed cross-entropy, negated for targeted attacks (so that a
  step along the gradient's sign is always the attack's step)."""

  def loss(x):
    return optax.softmax_cross_entropy_with_integer_labels(logits_fn(x), labels).sum()

  grad = jax.grad(loss)(images)
  return -grad if targeted else grad


def project(adversarial: jax.Array, images: jax.Array, epsilon, clip_min: float = 0.0,
            clip_max: float = 1.0) -> jax.Array:
  """Clips `adversarial` to within `epsilon` of `images` (float [B, H, W, C] in [clip_min,
  clip_max], checked) in the L-infinity norm and to [clip_min, clip_max]."""
  checks.check_images(images, name="images", dtype_kind="f", value_range=(clip_min, clip_max))
  return jnp.clip(jnp.clip(adversarial, images - epsilon, images + epsilon), clip_min, clip_max)


def fgsm(logits_fn: LogitsFn, images: jax.Array, labels: jax.Array, *, epsilon,
         clip_min: float = 0.0, clip_max: float = 1.0, targeted: bool = False) -> jax.Array:
  """Fast gradient sign method (Goodfellow et al. 2015): one step of size epsilon.

  Args:
    logits_fn: see the module docstring.
    images: float32 [B, H, W, C] in [clip_min, clip_max].
    labels: int [B], the true classes (untargeted) or the target classes (targeted).
    epsilon: L-infinity bound, in the units of the images (e.g. 0.3 for MNIST in [0, 1]).
    clip_min, clip_max: the valid pixel range.
    targeted: move toward `labels` instead of away from them.

  Returns:
    float32 [B, H, W, C]: images + epsilon * sign(gradient), clipped to the valid range.

  Raises:
    checks.InputConventionError: see `check_inputs` (e.g. uint8 images 0..255).
  """
  return pgd(logits_fn, images, labels, epsilon=epsilon, step_size=epsilon, num_steps=1,
             targeted=targeted, clip_min=clip_min, clip_max=clip_max)


def _is_batch_of_keys(rng: jax.Array) -> bool:
  """Whether `rng` is a key array [B] (typed keys) or [B, 2] (raw uint32 keys), not one key."""
  typed = jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key)
  return rng.ndim == (1 if typed else 2)


def random_start(rng: jax.Array, images: jax.Array, epsilon, clip_min: float = 0.0,
                 clip_max: float = 1.0) -> jax.Array:
  """`images` plus uniform noise in [-epsilon, epsilon], clipped to [clip_min, clip_max].

  rng: one PRNG key for the batch, or a key array [B] with one key per example (then an example's
  noise depends on its own key only, e.g. so that a batch split over devices draws what one device
  draws). images: float [B, H, W, C] in [clip_min, clip_max] (checked).
  """
  checks.check_images(images, name="images", dtype_kind="f", value_range=(clip_min, clip_max))
  if _is_batch_of_keys(rng):
    noise = jax.vmap(lambda key: jax.random.uniform(key, images.shape[1:], jnp.float32, -1.0, 1.0)
                     )(rng)
  else:
    noise = jax.random.uniform(rng, images.shape, jnp.float32, -1.0, 1.0)
  return project(images + epsilon * noise, images, epsilon, clip_min, clip_max)


def pgd(logits_fn: LogitsFn, images: jax.Array, labels: jax.Array, *, epsilon, step_size,
        num_steps: int, rng: jax.Array | None = None, clip_min: float = 0.0,
        clip_max: float = 1.0, targeted: bool = False) -> jax.Array:
  """Projected gradient descent under an L-infinity bound (Madry et al. 2018).

  Starts at the images (rng None) or at a uniformly random point of the epsilon-ball (`random_start`),
  then takes `num_steps` signed-gradient steps of `step_size`, each followed by a projection back
  onto the ball and the valid range. With num_steps=1, step_size=epsilon and no random start it is
  `fgsm`.

  Args:
    logits_fn: see the module docstring.
    images: float32 [B, H, W, C] in [clip_min, clip_max].
    labels: int [B], the true classes (untargeted) or the target classes (targeted).
    epsilon: L-infinity bound (pixel units).
    step_size: size of each signed step (pixel units); 2.5 * epsilon / num_steps is customary.
    num_steps: number of steps (a Python int).
    rng: PRNG key (or one key per example [B]) for the random start; None starts at the images.
    clip_min, clip_max: the valid pixel range.
    targeted: move toward `labels` instead of away from them.

  Returns:
    float32 [B, H, W, C] adversarial images.

  Raises:
    checks.InputConventionError: see `check_inputs` (e.g. uint8 images 0..255).
  """
  check_inputs(logits_fn, images, labels, clip_min=clip_min, clip_max=clip_max)
  images = images.astype(jnp.float32)
  start = images if rng is None else random_start(rng, images, epsilon, clip_min, clip_max)

  def body(_, x):
    step = step_size * jnp.sign(_loss_gradient(logits_fn, x, labels, targeted))
    return project(x + step, images, epsilon, clip_min, clip_max)

  return jax.lax.fori_loop(0, num_steps, body, start)


def pgd_restarts(logits_fn: LogitsFn, images: jax.Array, labels: jax.Array, *, epsilon,
                 step_size, num_steps: int, rng: jax.Array, num_restarts: int,
                 clip_min: float = 0.0, clip_max: float = 1.0) -> jax.Array:
  """Untargeted `pgd` from `num_restarts` random starts; per example, the first start that fools
  the model wins (else the last). A stronger test of robustness than one run (gradient masking
  shows up as a big drop). Same arguments and shapes as `pgd`; rng (one key or one key per example
  [B]) is required."""
  check_inputs(logits_fn, images, labels, clip_min=clip_min, clip_max=clip_max)
  images = images.astype(jnp.float32)
  if _is_batch_of_keys(rng):
    restart_keys = jax.vmap(lambda key: jax.random.split(key, num_restarts), out_axes=1)(rng)
  else:
    restart_keys = jax.random.split(rng, num_restarts)
  best = images
  fooled = jnp.zeros(images.shape[0], bool)
  for restart in range(num_restarts):
    candidate = pgd(logits_fn, images, labels, epsilon=epsilon, step_size=step_size,
                    num_steps=num_steps, rng=restart_keys[restart], clip_min=clip_min,
                    clip_max=clip_max)
    wrong = jnp.argmax(logits_fn(candidate), axis=-1) != labels
    best = jnp.where((~fooled)[:, None, None, None], candidate, best)
    fooled = fooled | wrong
  return best


class TargetedResult(NamedTuple):
  """What `targeted_iterative` returns.

  Attributes:
    images: float32 [B, H, W, C] adversarial images.
    target_probability: float32 [B], the target class's probability for `images`.
    steps: int32 [B], steps taken per example (0 when the original already reached the threshold).
    reached: bool [B], target_probability >= threshold.
  """
  images: jax.Array
  target_probability: jax.Array
  steps: jax.Array
  reached: jax.Array


def targeted_iterative(logits_fn: LogitsFn, images: jax.Array, targets: jax.Array, *, epsilon,
                       step_size, max_steps: int, threshold: float = 0.98,
                       clip_min: float = 0.0, clip_max: float = 1.0) -> TargetedResult:
  """The series' attack: nudge the pixels up the gradient of the target-class probability until
  the model is `threshold` sure of the target class, or `max_steps` run out.

  Each step adds step_size * sign(d p_target / d image) and clips every pixel to within epsilon of
  its original value and to the valid range. (The gradient is taken of log p_target, whose sign is
  the same, since d log p = dp / p, but which does not vanish when p underflows.) Each example stops
  on its own once its target probability reaches the threshold (its pixels are then frozen); the
  loop (`lax.while_loop`) ends when all have stopped or after `max_steps`.

  Args:
    logits_fn: see the module docstring.
    images: float32 [B, H, W, C] in [clip_min, clip_max].
    targets: int [B], the class each image should become.
    epsilon: L-infinity bound (pixel units).
    step_size: size of each signed step (pixel units).
    max_steps: step budget per example (a Python int).
    threshold: target probability at which an example stops.
    clip_min, clip_max: the valid pixel range.

  Returns:
    A `TargetedResult`.

  Raises:
    checks.InputConventionError: see `check_inputs` (e.g. uint8 images 0..255).
  """
  check_inputs(logits_fn, images, targets, clip_min=clip_min, clip_max=clip_max,
               labels_name="targets")
  images = images.astype(jnp.float32)

  def target_log_probability(x):
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits_fn(x)), targets[:, None], axis=-1)[:, 0]
    return log_p.sum(), log_p

  gradient = jax.grad(target_log_probability, has_aux=True)
  log_threshold = jnp.log(threshold)

  def cond(carry):
    i, _, _, done = carry
    return (i < max_steps) & ~jnp.all(done)

  def body(carry):
    i, x, steps, _ = carry
    grad, log_p = gradient(x)
    done = log_p >= log_threshold
    stepped = project(x + step_size * jnp.sign(grad), images, epsilon, clip_min, clip_max)
    x = jnp.where(done[:, None, None, None], x, stepped)
    return i + 1, x, steps + (~done).astype(jnp.int32), done

  batch = images.shape[0]
  init = (jnp.int32(0), images, jnp.zeros(batch, jnp.int32), jnp.zeros(batch, bool))
  _, x, steps, _ = jax.lax.while_loop(cond, body, init)
  _, log_p = target_log_probability(x)
  return TargetedResult(x, jnp.exp(log_p), steps, log_p >= log_threshold)
