"""How fragile is a trained classifier? Attacks a checkpoint on a set of images, batched over devices.

`run_attack` attacks uint8 images with a restored `classification.Classifier` (through its
`attack_logits`: images in [0, 1], the model's own normalisation applied inside) at several epsilons
with one compiled program (epsilon is an argument) mapped over the local devices, and returns
per-epsilon numbers plus the images of the first few examples for pictures. The random starts are
keyed per example from the seed, so a run gives the same numbers on any number of devices.
"""

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.adversarial import attacks
from mlfun_jax.core import checks
from mlfun_jax.core import parallel
from mlfun_jax.core.errors import UserError

ATTACKS = ("fgsm", "pgd", "targeted")


@dataclasses.dataclass(frozen=True)
class AttackSpec:
  """One attack's settings (pixel units of images in [0, 1]).

  Attributes:
    name: 'fgsm', 'pgd' (L-infinity PGD) or 'targeted' (the series' iterative attack on the target
      probability, stopping per example at `threshold`).
    steps: PGD steps, or the targeted attack's step budget (fgsm: ignored).
    step_size: size of each step; None: 2.5 * epsilon / steps.
    random_start: PGD starts at a random point of the epsilon-ball.
    restarts: PGD random restarts (untargeted only; the first that fools the model counts).
    targeted: fgsm/pgd move toward the target classes instead of away from the labels ('targeted'
      always does).
    threshold: target probability at which the 'targeted' attack stops.
  """
  name: str = "pgd"
  steps: int = 20
  step_size: float | None = None
  random_start: bool = True
  restarts: int = 1
  targeted: bool = False
  threshold: float = 0.98

  def __post_init__(self):
    if self.name not in ATTACKS:
      raise UserError(f"unknown attack {self.name!r}; choose one of {', '.join(ATTACKS)}")
    if self.steps < 1 or self.restarts < 1:
      raise UserError(f"attack steps ({self.steps}) and restarts ({self.restarts}) must be >= 1")
    if self.restarts > 1 and (self.name != "pgd" or self.is_targeted):
      raise UserError("restarts are for the untargeted pgd attack only")

  @property
  def is_targeted(self) -> bool:
    return self.targeted or self.name == "targeted"


def make_attack(spec: AttackSpec, logits_of: Callable[[Any, jax.Array], jax.Array]) -> Callable:
  """The per-batch attack: (state, images float32 [B, H, W, C] in [0, 1] (checked by the attack
  functions), goals int [B], keys [B], epsilon) ->
  {'adversarial': images [B, ...], 'predictions', 'clean_predictions': int [B], 'probabilities',
  'clean_probabilities': [B, classes], 'steps': int32 [B]}.

  goals: the target classes of targeted attacks, else the true labels. logits_of: (state, images in
  [0, 1]) -> logits, e.g. `Classifier.attack_logits`.
  """

  def attack(state, images, goals, keys, epsilon):
    logits_fn = lambda x: logits_of(state, x)
    step_size = 2.5 * epsilon / spec.steps if spec.step_size is None else spec.step_size
    steps = jnp.full(goals.shape, spec.steps, jnp.int32)
    if spec.name == "fgsm":
      adversarial = attacks.fgsm(logits_fn, images, goals, epsilon=epsilon,
                                 targeted=spec.is_targeted)
      steps = jnp.ones_like(steps)
    elif spec.name == "targeted":
      result = attacks.targeted_iterative(logits_fn, images, goals, epsilon=epsilon,
                                          step_size=step_size, max_steps=spec.steps,
                                          threshold=spec.threshold)
      adversarial, steps = result.images, result.steps
    elif spec.restarts > 1:
      adversarial = attacks.pgd_restarts(logits_fn, images, goals, epsilon=epsilon,
                                         step_size=step_size, num_steps=spec.steps, rng=keys,
                                         num_restarts=spec.restarts)
    else:
      adversarial = attacks.pgd(logits_fn, images, goals, epsilon=epsilon, step_size=step_size,
                                num_steps=spec.steps, rng=keys if spec.random_start else None,
                                targeted=spec.is_targeted)
    clean_logits, logits = logits_fn(images), logits_fn(adversarial)
    return {"adversarial": adversarial, "steps": steps,
            "predictions": logits.argmax(-1), "clean_predictions": clean_logits.argmax(-1),
            "probabilities": jax.nn.softmax(logits),
            "clean_probabilities": jax.nn.softmax(clean_logits)}

  return attack


def random_targets(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
  """int32 [N]: for each of `labels` (int [N] in 0..num_classes-1, checked) a target class drawn
  uniformly from the other classes."""
  checks.check_ids(np.asarray(labels), name="labels", vocab_size=num_classes, rank=1)
  offsets = np.random.default_rng(seed).integers(1, num_classes, size=len(labels))
  return ((np.asarray(labels) + offsets) % num_classes).astype(np.int32)


def run_attack(classifier, images: np.ndarray, labels: np.ndarray, spec: AttackSpec,
               epsilons: Sequence[float], *, targets: np.ndarray | None = None, seed: int = 0,
               batch_size: int = 500, keep: int = 8) -> dict[str, Any]:
  """Attacks `images` at each epsilon; returns the report's numbers and the first `keep` examples.

  Logs a line of numbers per epsilon.

  Args:
    classifier: a restored `classification.Classifier` (softmax head).
    images: uint8 [N, H, W, C] 0..255 in the model's input shape.
    labels: int [N] true classes.
    spec: the attack.
    epsilons: L-infinity bounds in pixel units of [0, 1] (e.g. 8/255).
    targets: int [N] target classes (targeted attacks); None: `random_targets` from the seed.
    seed: seed of the random starts (keyed per example) and of the random targets.
    batch_size: examples per batch over all devices (at most N, rounded up to a multiple of the
      device count).
    keep: how many of the first examples to return images and predictions of.

  Returns:
    {'results': [per epsilon: {'epsilon', 'accuracy', 'clean_accuracy', 'wall_seconds',
      'max_perturbation', 'mean_steps', and for targeted attacks 'success_rate' (prediction ==
      target, over examples whose label is not the target), 'threshold_rate' (target probability
      >= spec.threshold, same examples), 'mean_target_probability', 'attempts'}],
     'labels': int [keep], 'targets': int [keep] (targeted attacks) or None,
     'original': float32 [keep, H, W, C] in [0, 1], 'clean_probabilities': float32 [keep, classes],
     'examples': per epsilon {'adversarial': like 'original', 'probabilities': float32
      [keep, classes]}}

  Raises:
    UserError: the classifier has a sigmoid head.
    checks.InputConventionError: images that are not uint8 [N, H, W, C] of the model's input
      shape, or labels / targets that are not int [N] classes of the model.
  """
  if classifier.config.head != "softmax":
    raise UserError("attacks need a softmax classifier; this checkpoint has a sigmoid head")
  num_classes = len(classifier.class_names)
  images, labels = np.asarray(images), np.asarray(labels)
  checks.check_images(images, name="images", dtype_kind="u", shape=classifier.image_shape)
  checks.check_ids(labels, name="labels", vocab_size=num_classes, rank=1)
  if len(labels) != len(images):
    raise checks.InputConventionError(
        f"labels: expected one class per image ({len(images)}), got {len(labels)}")
  labels = labels.astype(np.int32)
  n = len(images)
  if spec.is_targeted:
    if targets is None:
      targets = random_targets(labels, num_classes, seed)
    checks.check_ids(np.asarray(targets), name="targets", vocab_size=num_classes)
    targets = np.broadcast_to(np.asarray(targets, np.int32), labels.shape)
  else:
    targets = None
  goals = labels if targets is None else targets
  devices = jax.local_devices()
  per_device = -(-min(batch_size, n) // len(devices))
  chunk = per_device * len(devices)
  shard = lambda a: a.reshape(len(devices), per_device, *a.shape[1:])
  # The random starts' keys, one per example (padding included): example i's is fold_in(seed, i).
  num_batches = -(-n // chunk)
  keys = jax.jit(jax.vmap(functools.partial(jax.random.fold_in, jax.random.key(seed))))(
      jnp.arange(num_batches * chunk)).reshape(num_batches, len(devices), per_device)
  batches = []  # (slice of the examples, images float32 [chunk, ...] in [0, 1], goals, keys)
  for b, start in enumerate(range(0, n, chunk)):
    batch = slice(start, start + chunk)
    pad = chunk - len(images[batch])
    # Padding repeats the last example, so it never keeps a targeted attack's loop running.
    x = np.pad(images[batch], [(0, pad)] + [(0, 0)] * 3, mode="edge").astype(np.float32) / 255.0
    batches.append((batch, x, np.pad(goals[batch], (0, pad), mode="edge"), keys[b]))
  attack = jax.pmap(make_attack(spec, classifier.attack_logits), axis_name=parallel.AXIS,
                    in_axes=(None, 0, 0, 0, None))
  outcome = {"results": [], "examples": [], "labels": labels[:keep],
             "targets": None if targets is None else targets[:keep]}
  for epsilon in epsilons:
    start_time = time.perf_counter()
    sums = {"correct": 0, "clean_correct": 0, "hit": 0, "reached": 0, "target_probability": 0.0,
            "attempts": 0, "steps": 0}
    max_perturbation = 0.0
    for batch, x, batch_goals, batch_keys in batches:
      out = attack(classifier.state, shard(x), shard(batch_goals), batch_keys, jnp.float32(epsilon))
      y = labels[batch]
      count = len(y)
      out = {k: np.asarray(v).reshape(chunk, *v.shape[2:])[:count] for k, v in out.items()}
      x = x[:count]
      sums["correct"] += int((out["predictions"] == y).sum())
      sums["clean_correct"] += int((out["clean_predictions"] == y).sum())
      sums["steps"] += int(out["steps"].sum())
      max_perturbation = max(max_perturbation, float(np.abs(out["adversarial"] - x).max()))
      if targets is not None:
        t = targets[batch]
        attempt = y != t
        target_probability = out["probabilities"][np.arange(count), t]
        sums["attempts"] += int(attempt.sum())
        sums["hit"] += int(((out["predictions"] == t) & attempt).sum())
        sums["reached"] += int(((target_probability >= spec.threshold) & attempt).sum())
        sums["target_probability"] += float((target_probability * attempt).sum())
      if batch.start == 0:
        outcome["examples"].append({"adversarial": out["adversarial"][:keep],
                                    "probabilities": out["probabilities"][:keep]})
        if "original" not in outcome:
          outcome["original"] = x[:keep]
          outcome["clean_probabilities"] = out["clean_probabilities"][:keep]
    result = {"epsilon": float(epsilon), "accuracy": sums["correct"] / n,
              "clean_accuracy": sums["clean_correct"] / n, "max_perturbation": max_perturbation,
              "mean_steps": sums["steps"] / n,
              "wall_seconds": round(time.perf_counter() - start_time, 2)}
    if targets is not None:
      attempts = max(sums["attempts"], 1)
      result.update(success_rate=sums["hit"] / attempts, threshold_rate=sums["reached"] / attempts,
                    mean_target_probability=sums["target_probability"] / attempts,
                    attempts=sums["attempts"])
    outcome["results"].append(result)
    logging.info("%s", " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in result.items()))
  return outcome
