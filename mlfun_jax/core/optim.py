"""Optimizers and learning-rate schedules from a config (optax)."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from mlfun_jax.core.errors import UserError

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "onecycle", "warmup_linear")


def learning_rate_schedule(config: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
  """The schedule named by `config.schedule` over `num_steps` steps, peaking at `config.learning_rate`.

  Warm-up lasts `warmup_steps`, or `warmup_fraction` of the steps when that is > 0.
  'warmup_linear': linear from initial_factor x lr to lr over the warm-up, then linear to
  final_factor x lr at the last step (the CIFAR-10 speedrun's schedule).
  """
  lr, warmup = config.learning_rate, config.get("warmup_steps", 0)
  if config.get("warmup_fraction", 0.0):
    warmup = int(config.warmup_fraction * num_steps)
  warmup = min(warmup, num_steps)
  if config.schedule == "constant":
    return optax.constant_schedule(lr)
  if config.schedule == "cosine":
    return optax.cosine_decay_schedule(lr, max(num_steps, 1))
  if config.schedule == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(num_steps, warmup + 1))
  if config.schedule == "onecycle":
    return optax.cosine_onecycle_schedule(max(num_steps, 1), lr)
  if config.schedule == "warmup_linear":
    up = optax.linear_schedule(config.get("initial_factor", 0.0) * lr, lr, max(warmup, 1))
    down = optax.linear_schedule(lr, config.get("final_factor", 0.0) * lr,
                                 max(num_steps - warmup, 1))
    return optax.join_schedules([up, down], [warmup])
  raise UserError(f"unknown config field optimizer.schedule={config.schedule!r}; "
                  f"choose one of {', '.join(SCHEDULES)}")


def create_optimizer(config: ml_collections.ConfigDict, num_steps: int,
                     grad_accum_steps: int = 1) -> optax.GradientTransformation:
  """Builds the optimizer named by `config.name` with the schedule of `learning_rate_schedule`.

  With `grad_accum_steps` K > 1 the optimizer is wrapped in `optax.MultiSteps`: it averages the
  gradients of K calls and updates the parameters at every K-th (the others give zero updates),
  so K micro-batches give the update of one K-times-larger batch. `num_steps` counts calls (micro
  steps); the schedule, `warmup_steps` and the Lookahead average count the updates that happen
  (floor(num_steps / K): trailing calls short of a whole update change nothing), so the schedule
  ends and the average takes over at the last of them.

  Fields: name, learning_rate, schedule, warmup_steps, momentum (momentum: SGD with Nesterov
  momentum), b1/b2 (adam, adamw), weight_decay (adamw: decoupled, on every parameter; sgd and
  momentum: L2 added to the gradient of weight matrices and kernels only, not biases or BatchNorm
  scales), grad_clip_norm (0 disables clipping). Fields only some families have (absent: off):
  warmup_fraction, initial_factor, final_factor (`learning_rate_schedule`); for sgd and momentum
  norm_lr_scale (the learning rate of normalisation layers' parameters is multiplied by it) and
  decay_all (L2 on every parameter, a normalisation parameter's divided by norm_lr_scale so that
  its decay per step is the same); lookahead_every and lookahead_decay (`lookahead_average`).
  """
  if grad_accum_steps < 1:
    raise UserError(f"config field grad_accum_steps={grad_accum_steps!r} must be >= 1")
  num_updates = max(1, num_steps // grad_accum_steps)
  schedule = learning_rate_schedule(config, num_updates)
  if config.name in ("sgd", "momentum"):
    optimizer = _sgd(config, schedule)
  elif config.name == "adam":
    optimizer = optax.adam(schedule, b1=config.b1, b2=config.b2)
  elif config.name == "adamw":
    optimizer = optax.adamw(schedule, b1=config.b1, b2=config.b2, weight_decay=config.weight_decay)
  else:
    raise UserError(f"unknown config field optimizer.name={config.name!r}; "
                    f"choose one of {', '.join(OPTIMIZERS)}")
  if config.get("lookahead_every", 0):
    optimizer = lookahead_average(optimizer, config.lookahead_every, config.lookahead_decay,
                                  num_updates)
  if config.get("grad_clip_norm", 0):
    optimizer = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), optimizer)
  if grad_accum_steps > 1:
    optimizer = optax.MultiSteps(optimizer, every_k_schedule=grad_accum_steps)
    optimizer = optimizer.gradient_transformation()
  return optimizer


def _is_norm(path) -> bool:
  """Whether a parameter path lies inside a normalisation layer (Flax's default module names)."""
  return any(str(getattr(k, "key", k)).startswith(("BatchNorm", "LayerNorm", "GroupNorm"))
             for k in path)


def _sgd(config: ml_collections.ConfigDict, schedule: optax.Schedule
         ) -> optax.GradientTransformation:
  """SGD (name 'sgd') or SGD with Nesterov momentum ('momentum'), with L2 weight decay on kernels
  (every parameter with decay_all) and norm_lr_scale for normalisation parameters."""
  momentum = config.momentum if config.name == "momentum" else None
  decay, norm_scale = config.get("weight_decay", 0.0), config.get("norm_lr_scale", 1.0)
  decay_all = config.get("decay_all", False)

  def sgd(scale: float, l2: float, decayed=None) -> optax.GradientTransformation:
    scaled = schedule if scale == 1.0 else (lambda count: scale * schedule(count))
    tx = optax.sgd(scaled, momentum=momentum, nesterov=momentum is not None)
    return optax.chain(optax.add_decayed_weights(l2, decayed), tx) if l2 else tx

  kernels_only = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)
  if norm_scale == 1.0 and not decay_all:
    return sgd(1.0, decay, kernels_only)
  labels = lambda params: jax.tree_util.tree_map_with_path(
      lambda path, _: "norm" if _is_norm(path) else "other", params)
  return optax.multi_transform(
      {"norm": sgd(norm_scale, decay / norm_scale if decay_all else 0.0),
       "other": sgd(1.0, decay, None if decay_all else kernels_only)}, labels)


class LookaheadState(NamedTuple):
  """`lookahead_average`'s state: the inner optimizer's, the slow weights and the update count."""
  inner: Any
  slow: Any
  count: jax.Array


def lookahead_average(inner: optax.GradientTransformation, every: int, final_decay: float,
                      num_updates: int) -> optax.GradientTransformation:
  """Lookahead-style weight averaging (the CIFAR-10 speedrun's): after every `every`-th update the
  slow weights move toward the new weights, slow += (1 - decay) (fast - slow) with decay =
  final_decay x (t / num_updates)^3 at update t, and the weights are set to the slow ones; after
  update `num_updates` the weights are the slow ones (decay 1 when that update is not a multiple of
  `every`). The slow weights start as the initial ones."""

  def init(params):
    return LookaheadState(inner.init(params), jax.tree.map(jnp.asarray, params),
                          jnp.zeros([], jnp.int32))

  def update(updates, state, params=None):
    if params is None:
      raise ValueError("lookahead_average needs the parameters")
    inner_updates, inner_state = inner.update(updates, state.inner, params)
    count = state.count + 1
    fast = optax.apply_updates(params, inner_updates)
    on_beat = count % every == 0
    decay = jnp.where(on_beat, final_decay * (count / num_updates) ** 3, 1.0)
    sync = on_beat | (count >= num_updates)
    slow = jax.tree.map(lambda s, f: jnp.where(sync, s + (1 - decay) * (f - s), s).astype(s.dtype),
                        state.slow, fast)
    new = jax.tree.map(lambda s, f: jnp.where(sync, s, f), slow, fast)
    return (jax.tree.map(lambda n, p: n - p, new, params),
            LookaheadState(inner_state, slow, count))

  return optax.GradientTransformation(init, update)
