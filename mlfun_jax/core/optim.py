"""Optimizers and learning-rate schedules from a config (optax)."""

import math

import jax
import ml_collections
import optax

from mlfun_jax.core.errors import UserError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "onecycle")


def learning_rate_schedule(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  """The schedule named by `config.schedule` over `num_steps` steps, peaking at `config.learning_rate`."""
  lr, warmup = config.learning_rate, min(config.get("warmup_steps", 0), num_steps)
  if config.schedule == "constant":
    return optax.constant_schedule(lr)
  if config.schedule == "cosine":
    return optax.cosine_decay_schedule(lr, max(num_steps, 1))
  if config.schedule == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(num_steps, warmup + 1))
  if config.schedule == "onecycle":
    return optax.cosine_onecycle_schedule(max(num_steps, 1), lr)
  raise UserError(f"unknown config field optimizer.schedule={config.schedule!r}; "
                  f"choose one of {', '.join(SCHEDULES)}")


def create_optimizer(config: ml_collections.ConfigDict, num_steps: int,
                     grad_accum_steps: int = 1) -> optax.GradientTransformation:
  """Builds the optimizer named by `config.name` with the schedule of `learning_rate_schedule`.

  With `grad_accum_steps` K > 1 the optimizer is wrapped in `optax.MultiSteps`: it averages the
  gradients of K calls and updates the parameters at every K-th (the others give zero updates),
  so K micro-batches give the update of one K-times-larger batch. `num_steps` counts calls (micro
  steps); the schedule and `warmup_steps` count updates (num_steps / K of them).

  Fields: name, learning_rate, schedule, warmup_steps, momentum (momentum: SGD with Nesterov
  momentum), b1/b2 (adam, adamw), weight_decay (adamw: decoupled, on every parameter; sgd and
  momentum: L2 added to the gradient of weight matrices and kernels only, not biases or BatchNorm
  scales), grad_clip_norm (0 disables clipping).
  """
  if grad_accum_steps < 1:
    raise UserError(f"config field grad_accum_steps={grad_accum_steps!r} must be >= 1")
  schedule = learning_rate_schedule(config, max(1, math.ceil(num_steps / grad_accum_steps)))
  if config.name == "sgd":
    optimizer = optax.sgd(schedule)
  elif config.name == "momentum":
    optimizer = optax.sgd(schedule, momentum=config.momentum, nesterov=True)
  elif config.name == "adam":
    optimizer = optax.adam(schedule, b1=config.b1, b2=config.b2)
  elif config.name == "adamw":
    optimizer = optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
  else:
    raise UserError(f"unknown config field optimizer.name={config.name!r}; "
                    f"choose one of {', '.join(OPTIMIZERS)}")
  if config.name in ("sgd", "momentum") and config.get("weight_decay", 0):
    kernels_only = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
    optimizer = optax.chain(optax.add_decayed_weights(config.weight_decay, kernels_only), optimizer)
  if config.get("grad_clip_norm", 0):
    optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), optimizer)
  if grad_accum_steps > 1:
    optimizer = optax.MultiSteps(optimizer, every_k_schedule=grad_accum_steps)
    optimizer = optimizer.gradient_transformation()
  return optimizer
