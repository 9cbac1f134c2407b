"""Speech recognition with CTC: spectrogram features -> bidirectional RNN -> characters.

Config fields: `mlfun_jax.speech.config.defaults()` (dataset, data_dir, split ('official' |
'speaker:<name>' | 'phone_numbers'), alphabet, audio.* (`audio.FrontEnd`), phone_numbers.*,
train_speeds, buckets, spec_augment.*, model.*, optimizer.*, batch_size, num_epochs / num_steps and
the loop's cadence fields). Eval metrics: loss, cer, wer and exact (whole-utterance accuracy) of
greedy decoding. The restored recogniser is `mlfun_jax.speech.inference.Transcriber`.
"""

from collections.abc import Callable, Sequence
import os

from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlfun_jax.core import optim
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn
from mlfun_jax.speech import config as speech_config
from mlfun_jax.speech import ctc_decode
from mlfun_jax.speech import data as speech_data
from mlfun_jax.speech import metrics as asr_metrics
from mlfun_jax.speech import model as speech_model
from mlfun_jax.speech import pictures as speech_pictures
from mlfun_jax.models.init import init_variables

TrainState = train_state.TrainState


def create_model(config: ml_collections.ConfigDict) -> speech_model.SpeechCTC:
  """The network of config.model, with one output class per character of config.alphabet plus
  the blank, computing in config.dtype (its logits, and so the CTC loss, stay float32)."""
  if config.model.cell not in rnn.CELLS:
    raise UserError(f"unknown config field model.cell={config.model.cell!r}; choose one of "
                    f"{', '.join(rnn.CELLS)}")
  if len(config.model.conv_strides) < len(config.model.conv_features):
    raise UserError("config field model.conv_strides needs one stride per model.conv_features")
  return speech_model.SpeechCTC(
      num_classes=ctc_decode.num_classes(config.alphabet),
      conv_features=tuple(config.model.conv_features),
      conv_strides=tuple(config.model.conv_strides), conv_kernel=config.model.conv_kernel,
      cell=config.model.cell, hidden=config.model.hidden, num_layers=config.model.num_layers,
      dropout_rate=config.model.dropout_rate, dtype=jnp.dtype(config.dtype))


def create_state(model, config: ml_collections.ConfigDict, num_features: int, num_steps: int,
                 rng: jax.Array) -> TrainState:
  variables = init_variables(model, {"params": rng}, jnp.zeros((1, 16, num_features), jnp.float32),
                             jnp.array([16], jnp.int32))
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=optim.create_optimizer(config.optimizer, num_steps,
                                                     config.grad_accum_steps))


def warp_frequencies(features: jax.Array, factor: jax.Array) -> jax.Array:
  """features [T, F] with the frequency axis stretched by `factor` (a scalar): output bin i is
  read, linearly interpolated, at input bin i * factor (clipped to the last bin). factor > 1
  moves formants down, as a longer vocal tract would (VTLP, Jaitly & Hinton 2013, here on the
  mel axis); factor 1 returns the features unchanged."""
  num_bins = features.shape[1]
  position = jnp.clip(jnp.arange(num_bins, dtype=jnp.float32) * factor, 0.0, num_bins - 1.0)
  low = jnp.floor(position).astype(jnp.int32)
  high = jnp.minimum(low + 1, num_bins - 1)
  fraction = position - low
  return features[:, low] * (1.0 - fraction) + features[:, high] * fraction


def spec_augment(rng: jax.Array, features: jax.Array, lengths: jax.Array, *, freq_masks: int = 2,
                 freq_width: int = 6, time_masks: int = 2, time_width: int = 8,
                 freq_warp: float = 0.0) -> jax.Array:
  """SpecAugment on one utterance [T, F]: the frequency axis warped by a factor drawn uniformly
  from [1 - freq_warp, 1 + freq_warp] (`warp_frequencies`; 0: none), then `freq_masks` bands of up
  to freq_width bins and `time_masks` spans of up to time_width frames (inside its `lengths` real
  frames) zeroed."""
  num_frames, num_bins = features.shape
  keep = jnp.ones_like(features, dtype=bool)
  if freq_warp:  # (Its own key only when used: runs without it keep their random masks.)
    warp_key, rng = jax.random.split(rng)
    factor = jax.random.uniform(warp_key, (), minval=1.0 - freq_warp, maxval=1.0 + freq_warp)
    mask = (jnp.arange(num_frames) < lengths)[:, None]
    features = jnp.where(mask, warp_frequencies(features, factor), 0.0)
  keys = jax.random.split(rng, 2 * (freq_masks + time_masks))
  for i in range(freq_masks):
    width = jax.random.randint(keys[2 * i], (), 0, freq_width + 1)
    start = jax.random.randint(keys[2 * i + 1], (), 0, jnp.maximum(num_bins - width, 0) + 1)
    bins = jnp.arange(num_bins)
    keep &= ~((bins >= start) & (bins < start + width))[None, :]
  for i in range(freq_masks, freq_masks + time_masks):
    width = jnp.minimum(jax.random.randint(keys[2 * i], (), 0, time_width + 1), lengths // 4)
    start = jax.random.randint(keys[2 * i + 1], (), 0, jnp.maximum(lengths - width, 0) + 1)
    frames = jnp.arange(num_frames)
    keep &= ~((frames >= start) & (frames < start + width))[:, None]
  return jnp.where(keep, features, 0.0)


def ctc_losses(model, params, batch, train_mode: bool = False, rngs=None
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(per-utterance CTC loss [B], logits [B, T', K], output lengths [B])."""
  logits, lengths = model.apply({"params": params}, batch["features"], batch["lengths"],
                                train=train_mode, rngs=rngs)
  logit_paddings = (jnp.arange(logits.shape[1])[None] >= lengths[:, None]).astype(jnp.float32)
  label_paddings = (jnp.arange(batch["labels"].shape[1])[None]
                    >= batch["label_lengths"][:, None]).astype(jnp.float32)
  # float32 logits (the model casts them) whatever config.dtype: the CTC recursion's log-sum-exps
  # over long alignments lose too much in bfloat16.
  losses = optax.ctc_loss(logits, logit_paddings, batch["labels"], label_paddings,
                          blank_id=ctc_decode.BLANK)
  return losses, logits, lengths


def make_train_step(model, config: ml_collections.ConfigDict) -> Callable:
  """(state, batch, rng) -> (state, {'loss', 'cer'}); one device's step, pmean over devices."""
  augment = config.spec_augment.to_dict()
  use_augment = bool(augment.pop("enabled"))
  space = ctc_decode.space_id(config.alphabet)

  def train_step(state, batch, rng):
    augment_rng, dropout_rng = jax.random.split(rng)
    if use_augment:
      keys = parallel.example_keys(augment_rng, batch["features"].shape[0])
      batch = {**batch, "features": jax.vmap(lambda k, f, n: spec_augment(k, f, n, **augment))(
          keys, batch["features"], batch["lengths"])}

    def loss_fn(params):
      losses, logits, lengths = ctc_losses(model, params, batch, True,
                                           {"dropout": parallel.device_key(dropout_rng)})
      return losses.mean(), (logits, lengths)

    (loss, (logits, lengths)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    state = state.apply_gradients(grads=grads)
    errors = asr_metrics.error_counts(logits, lengths, batch["labels"], batch["label_lengths"],
                                      space)
    metrics = {"loss": loss, "cer": errors["char_edits"].sum() / errors["chars"].sum()}
    return state, jax.lax.pmean(metrics, parallel.AXIS)

  return train_step


def make_eval_step(model, space: int = ctc_decode.SPACE) -> Callable:
  """(state, batch) -> sums over the real (mask 1) utterances: loss, char/word edits and counts
  (words separated by class `space`)."""

  def eval_step(state, batch):
    losses, logits, lengths = ctc_losses(model, state.params, batch)
    mask = batch["mask"]
    errors = asr_metrics.error_counts(logits, lengths, batch["labels"], batch["label_lengths"],
                                      space)
    sums = {name: (value * mask).sum() for name, value in errors.items()}
    sums["loss"] = (losses * mask).sum()
    sums["count"] = mask.sum()
    return sums

  return eval_step


def summarize_eval(totals: dict[str, float]) -> dict[str, float]:
  """Sums -> {'loss', 'cer', 'wer', 'exact', 'count'}."""
  return {"loss": totals["loss"] / totals["count"],
          "cer": totals["char_edits"] / max(totals["chars"], 1.0),
          "wer": totals["word_edits"] / max(totals["words"], 1.0),
          "exact": totals["exact"] / totals["count"],
          "count": totals["count"]}


def logits_fn(model) -> Callable:
  """Jitted (params, features float32 [B, T, F], lengths int32 [B]) -> (logits [B, T', K],
  lengths [B]) of the network in inference mode."""
  return jax.jit(lambda params, features, lengths: model.apply(
      {"params": params}, features, lengths))


def picture_items(apply_fn, params, split: speech_data.SpeechSplit, indices: Sequence[int],
                  alphabet: str = ctc_decode.ALPHABET):
  """(features, logits, title) of some utterances for `speech_pictures`."""
  items = []
  for i in indices:
    features = split.features[i]
    logits, lengths = apply_fn(params, features[None], np.array([len(features)], np.int32))
    logits = np.asarray(logits[0, :int(lengths[0])])
    items.append((features, logits, f"said: {split.texts[i]!r}   heard: "
                                    f"{ctc_decode.greedy_decode(logits, alphabet=alphabet)!r}"))
  return items


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The speech Task for `train.run`."""
  dataset = speech_data.load_speech_dataset(config)
  layout = train.batch_layout(config.batch_size)
  model = create_model(config)
  front_end = dataset.front_end
  num_steps = train.num_train_steps(config, len(dataset.train))
  buckets = tuple(config.buckets)
  apply_fn = logits_fn(model)

  def on_end(state, workdir):
    indices = np.linspace(0, len(dataset.test) - 1, 4).astype(int)
    speech_pictures.save_spectrogram_picture(
        os.path.join(workdir, "spectrograms.png"),
        picture_items(apply_fn, state.params, dataset.test, indices, config.alphabet), front_end,
        alphabet=config.alphabet)

  return train.Task(
      init=lambda rng: create_state(model, config, front_end.num_features, num_steps, rng),
      train_step=make_train_step(model, config),
      eval_step=make_eval_step(model, ctc_decode.space_id(config.alphabet)),
      summarize_eval=summarize_eval,
      train_batches=lambda start: speech_data.train_batches(
          dataset.train, buckets, seed=config.seed, start_step=start, **layout),
      eval_batches=lambda: speech_data.eval_batches(dataset.test, buckets, **layout),
      num_steps=num_steps,
      examples_per_step=config.batch_size,
      meta={"task": "speech", "dataset": dataset.name, "num_features": front_end.num_features,
            "num_train": len(dataset.train), "num_test": len(dataset.test), **dataset.info},
      on_end=on_end,
      fields_added_later=speech_config.FIELDS_ADDED_LATER)
