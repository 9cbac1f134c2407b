"""Unsupervised speaker adaptation at test time: a per-feature scale and shift of one speaker's
features, fitted without transcripts.

The trained network stays fixed. Its input features x [T, F] become x * scale + shift (2F numbers,
scale 1 and shift 0 at the start), fitted by Adam to minimise the mean entropy of the network's
per-frame output distributions over the speaker's utterances: the transform that makes the network
most confident on this voice (entropy minimisation as in TENT, Wang et al. 2021, here on an input
transform in the spirit of fMLLR speaker adaptation). With 2F parameters fitted on hundreds of frames
it cannot memorise utterances; `cross_fitted` decodes each utterance with a transform fitted on
the speaker's other utterances only.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlfun_jax.core import checks
from mlfun_jax.speech import audio

# (params, features float32 [B, T, F], lengths int32 [B]) -> (logits [B, T', K], lengths' [B]).
LogitsFn = Callable[[object, jax.Array, jax.Array], tuple[jax.Array, jax.Array]]


@dataclasses.dataclass(frozen=True)
class FeatureAffine:
  """x -> x * scale + shift on features [..., F] (float32 [F] each)."""
  scale: np.ndarray
  shift: np.ndarray

  @classmethod
  def identity(cls, num_features: int) -> "FeatureAffine":
    return cls(np.ones(num_features, np.float32), np.zeros(num_features, np.float32))

  def __call__(self, features: np.ndarray) -> np.ndarray:
    return (features * self.scale + self.shift).astype(np.float32)


def check_features(features, *, name: str = "features") -> list[np.ndarray]:
  """`features` as a list after checking it is a non-empty sequence of utterances' float
  features [T_i, F] sharing F.

  Raises:
    checks.InputError: one utterance's array [T, F] instead of a list of them, an item of
      another dtype or rank, or items with different F.
  """
  if hasattr(features, "ndim") and np.ndim(features) < 3:
    raise checks.InputError(f"{name} must be a list of utterances' float features [T, F]; got "
                       f"one array {features.dtype} {list(np.shape(features))}: wrap a "
                       "single utterance in a list")
  features = list(features)
  if not features:
    raise checks.InputError(f"{name} must hold at least one utterance's features [T, F]")
  for i, f in enumerate(features):
    checks.check_floats(f, name=f"{name}[{i}]", rank=2, shape="[T, F] (one utterance)")
  widths = sorted({np.shape(f)[1] for f in features})
  if len(widths) > 1:
    raise checks.InputError(f"{name} must share one number of features F, got {widths}")
  return features


def pad_features(features: Sequence[np.ndarray], multiple: int = 32
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(float32 [N, T, F] zero-padded to a multiple of `multiple` frames, int32 lengths [N]) of a
  list of utterances' float features [T_i, F]."""
  features = check_features(features)
  longest = max(max(len(f) for f in features), 1)
  return audio.pad_batch(list(features), -(-longest // multiple) * multiple)


def output_entropy(logits_fn: LogitsFn, params, affine: dict[str, jax.Array],
                   features: jax.Array, lengths: jax.Array) -> jax.Array:
  """Mean entropy (nats) of the per-frame output distributions over the real output frames of
  the transformed float features [B, T, F] with int lengths [B] (padding frames stay 0)."""
  checks.check_floats(features, name="features", rank=3, shape="[B, T, F] (a padded batch)")
  checks.check_ids(lengths, name="lengths", rank=1, shape="[B]", empty_any_dtype=True)
  frames = jnp.arange(features.shape[1])[None, :, None] < lengths[:, None, None]
  x = jnp.where(frames, features * affine["scale"] + affine["shift"], 0.0)
  logits, out_lengths = logits_fn(params, x, lengths)
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32))
  entropy = -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)
  mask = (jnp.arange(logits.shape[1])[None] < out_lengths[:, None]).astype(jnp.float32)
  return jnp.sum(entropy * mask) / jnp.maximum(jnp.sum(mask), 1.0)


@functools.partial(jax.jit, static_argnames=("logits_fn", "learning_rate"))
def _adam_step(affine, opt_state, params, features, lengths, *, logits_fn: LogitsFn,
               learning_rate: float):
  """One Adam step on `output_entropy` (compiled once per network, learning rate and shape)."""
  grads = jax.grad(lambda a: output_entropy(logits_fn, params, a, features, lengths))(affine)
  updates, opt_state = optax.adam(learning_rate).update(grads, opt_state)
  return optax.apply_updates(affine, updates), opt_state


def fit_feature_affine(logits_fn: LogitsFn, params, features: Sequence[np.ndarray], *,
                       steps: int = 20, learning_rate: float = 0.01, batch_size: int = 64,
                       seed: int = 0) -> FeatureAffine:
  """The FeatureAffine minimising `output_entropy` over one speaker's utterances.

  Args:
    logits_fn: the trained network (see LogitsFn; the same function object across calls reuses
      the compiled step); params: its parameters (fixed).
    features: the speaker's utterances, a list of float32 [frames, F] (already normalised as in
      training; `check_features`).
    steps: Adam steps (0: the identity); each uses `batch_size` utterances drawn without
      replacement (all of them when there are fewer), seeded.

  Returns:
    The fitted transform (host numpy).
  """
  features = check_features(features)
  num_features = features[0].shape[1]
  if steps <= 0:
    return FeatureAffine.identity(num_features)
  padded, lengths = pad_features(features)
  affine = {"scale": jnp.ones(num_features, jnp.float32),
            "shift": jnp.zeros(num_features, jnp.float32)}
  opt_state = optax.adam(learning_rate).init(affine)
  rng = np.random.default_rng(seed)
  size = min(batch_size, len(features))
  for _ in range(steps):
    rows = rng.choice(len(features), size, replace=False)
    affine, opt_state = _adam_step(affine, opt_state, params, padded[rows], lengths[rows],
                                   logits_fn=logits_fn, learning_rate=learning_rate)
  return FeatureAffine(np.asarray(affine["scale"]), np.asarray(affine["shift"]))


def adapt_by_speaker(logits_fn: LogitsFn, params, features: Sequence[np.ndarray],
                     speakers: Sequence[str], *, cross_fitted: bool = True, **fit_kwargs
                     ) -> list[np.ndarray]:
  """Each utterance's features after its speaker's FeatureAffine.

  cross_fitted: the utterances of each speaker are split in two halves (even and odd positions);
  each half is transformed with the affine fitted on the other half, so no utterance is decoded
  with a transform that saw it. False: one affine per speaker, fitted on all of them.
  features: a list of utterances' float features [T_i, F] (`check_features`); speakers: one
  name per utterance.
  """
  features = check_features(features)
  if len(speakers) != len(features):
    raise ValueError(f"{len(speakers)} speakers for {len(features)} utterances")
  out = list(features)
  members: dict[str, list[int]] = {}
  for i, speaker in enumerate(speakers):
    members.setdefault(speaker, []).append(i)
  for indices in members.values():
    halves = [indices[0::2], indices[1::2]] if cross_fitted and len(indices) > 1 else [indices]
    for k, target in enumerate(halves):
      source = halves[1 - k] if len(halves) == 2 else target
      affine = fit_feature_affine(logits_fn, params, [features[i] for i in source], **fit_kwargs)
      for i in target:
        out[i] = affine(features[i])
  return out
