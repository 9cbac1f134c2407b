"""Speech recognition with CTC: spectrogram features -> bidirectional RNN -> characters.

Config fields (see experiments/configs/speech_ctc_digits.py): dataset, data_dir, split
('official' | 'speaker:<name>' | 'phone_numbers'), audio.* (`audio.FrontEnd`), phone_numbers.*,
train_speeds, buckets, spec_augment.*, model.*, optimizer.*, batch_size, num_epochs / num_steps and
the loop's cadence fields. Eval metrics: loss, cer, wer and exact (whole-utterance accuracy) of
greedy decoding.
"""

from collections.abc import Callable, Sequence
import os

from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlfun_jax.speech import metrics as asr_metrics
from mlfun_jax.speech import audio
from mlfun_jax.core import checkpoint
from mlfun_jax.speech import ctc_decode
from mlfun_jax.core import optim
from mlfun_jax.core import parallel
from mlfun_jax.speech import speaker_adaptation
from mlfun_jax.core import train
from mlfun_jax.speech import data as speech_data
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn
from mlfun_jax.speech import model as speech_model
from mlfun_jax.speech import pictures as speech_pictures

TrainState = train_state.TrainState


def create_model(config: ml_collections.ConfigDict) -> speech_model.SpeechCTC:
  m = config.model
  if m.cell not in rnn.CELLS:
    raise UserError(f"unknown config field model.cell={m.cell!r}; choose one of "
                    f"{', '.join(rnn.CELLS)}")
  if len(m.conv_strides) < len(m.conv_features):
    raise UserError("config field model.conv_strides needs one stride per model.conv_features")
  return speech_model.SpeechCTC(
      num_classes=ctc_decode.NUM_CLASSES, conv_features=tuple(m.conv_features),
      conv_strides=tuple(m.conv_strides), conv_kernel=m.conv_kernel, cell=m.cell,
      hidden=m.hidden, num_layers=m.num_layers, dropout_rate=m.dropout_rate)


def create_state(model, config: ml_collections.ConfigDict, num_features: int, num_steps: int,
                 rng: jax.Array) -> TrainState:
  variables = model.init({"params": rng}, jnp.zeros((1, 16, num_features), jnp.float32),
                         jnp.array([16], jnp.int32))
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=optim.create_optimizer(config.optimizer, num_steps))


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
  losses = optax.ctc_loss(logits, logit_paddings, batch["labels"], label_paddings,
                          blank_id=ctc_decode.BLANK)
  return losses, logits, lengths


def make_train_step(model, config: ml_collections.ConfigDict) -> Callable:
  """(state, batch, rng) -> (state, {'loss', 'cer'}); one device's step, pmean over devices."""
  augment = config.spec_augment.to_dict()
  use_augment = bool(augment.pop("enabled"))

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
                                      ctc_decode.SPACE)
    metrics = {"loss": loss, "cer": errors["char_edits"].sum() / errors["chars"].sum()}
    return state, jax.lax.pmean(metrics, parallel.AXIS)

  return train_step


def make_eval_step(model) -> Callable:
  """(state, batch) -> sums over the real (mask 1) utterances: loss, char/word edits and counts."""

  def eval_step(state, batch):
    losses, logits, lengths = ctc_losses(model, state.params, batch)
    mask = batch["mask"]
    errors = asr_metrics.error_counts(logits, lengths, batch["labels"], batch["label_lengths"],
                                      ctc_decode.SPACE)
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


def _logits_fn(model):
  return jax.jit(lambda params, features, lengths: model.apply(
      {"params": params}, features, lengths))


def picture_items(logits_fn, params, split: speech_data.SpeechSplit, indices: Sequence[int]):
  """(features, logits, title) of some utterances for `speech_pictures`."""
  items = []
  for i in indices:
    features = split.features[i]
    logits, lengths = logits_fn(params, features[None], np.array([len(features)], np.int32))
    logits = np.asarray(logits[0, :int(lengths[0])])
    items.append((features, logits, f"said: {split.texts[i]!r}   heard: "
                                    f"{ctc_decode.greedy_decode(logits)!r}"))
  return items


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:  # pylint: disable=unused-argument
  """The speech Task for `train.run`."""
  dataset = speech_data.load_speech_dataset(config)
  layout = train.batch_layout(config.batch_size)
  model = create_model(config)
  front_end = dataset.front_end
  num_steps = train.num_train_steps(config, len(dataset.train))
  buckets = tuple(config.buckets)
  logits_fn = _logits_fn(model)

  def on_end(state, workdir):
    indices = np.linspace(0, len(dataset.test) - 1, 4).astype(int)
    speech_pictures.save_spectrogram_picture(
        os.path.join(workdir, "spectrograms.png"),
        picture_items(logits_fn, state.params, dataset.test, indices), front_end)

  return train.Task(
      init=lambda rng: create_state(model, config, front_end.num_features, num_steps, rng),
      train_step=make_train_step(model, config),
      eval_step=make_eval_step(model),
      summarize_eval=summarize_eval,
      train_batches=lambda start: speech_data.train_batches(
          dataset.train, buckets, seed=config.seed, start_step=start, **layout),
      eval_batches=lambda: speech_data.eval_batches(dataset.test, buckets, **layout),
      num_steps=num_steps,
      examples_per_step=config.batch_size,
      meta={"task": "speech", "dataset": dataset.name, "num_features": front_end.num_features,
            "num_train": len(dataset.train), "num_test": len(dataset.test), **dataset.info},
      on_end=on_end)


class Transcriber:
  """A trained recogniser restored from a workdir: wav files or waveforms -> text."""

  def __init__(self, workdir: str):
    self.meta, self.step, self.config = checkpoint.latest_run(workdir, "speech",
                                                              "a speech recogniser")
    self.front_end = audio.FrontEnd.from_config(self.config.audio)
    self.model = create_model(self.config)
    self.state = checkpoint.restore_step(workdir, self.step, lambda: create_state(
        self.model, self.config, self.front_end.num_features, 1, jax.random.key(0)))
    self._logits = _logits_fn(self.model)

  def features(self, waves: Sequence[np.ndarray], one_speaker: bool = False
               ) -> list[np.ndarray]:
    """Per waveform (at the model's sample rate) its features [frames, F]. For a recogniser
    trained with audio.normalize_over='speaker', one_speaker=True standardises the waveforms
    together as one speaker's (as in training); otherwise each alone."""
    speakers = ["one"] * len(waves) if one_speaker else [str(i) for i in range(len(waves))]
    return speech_data.speech_features(self.front_end, list(waves), speakers,
                                       speech_data.config_normalize_over(self.config))

  def adapt(self, features: Sequence[np.ndarray], speakers: Sequence[str],
            cross_fitted: bool = False, **fit_kwargs) -> list[np.ndarray]:
    """The features after unsupervised per-speaker adaptation (`speaker_adaptation`: a
    per-feature scale and shift fitted to make this network confident on each speaker)."""
    return speaker_adaptation.adapt_by_speaker(
        self._logits, self.state.params, features, speakers, cross_fitted=cross_fitted,
        **fit_kwargs)

  def logits(self, features: np.ndarray) -> np.ndarray:
    """float32 [T', K] per-frame logits of one utterance's features [T, F]."""
    padded, lengths = speaker_adaptation.pad_features([features])
    logits, lengths = self._logits(self.state.params, padded, lengths)
    return np.asarray(logits[0, :int(lengths[0])])

  @staticmethod
  def decode(logits: np.ndarray, beam_width: int = 1, lm=None, lm_weight: float = 0.5) -> str:
    """Transcript of one utterance's logits [T', K]: greedy (beam_width 1 without an LM) or prefix
    beam search."""
    if beam_width == 1 and lm is None:
      return ctc_decode.greedy_decode(logits)
    return ctc_decode.beam_search(logits, beam_width, lm=lm, lm_weight=lm_weight)

  def transcribe(self, waves: Sequence[np.ndarray], beam_width: int = 1, lm=None,
                 lm_weight: float = 0.5, one_speaker: bool = False) -> list[str]:
    """Transcripts of waveforms (see `decode` and `features`)."""
    return [self.decode(self.logits(features), beam_width, lm, lm_weight)
            for features in self.features(waves, one_speaker)]


def levenshtein(a: Sequence, b: Sequence) -> int:
  """Edits (insertions, deletions, substitutions) turning sequence a into b."""
  row = list(range(len(b) + 1))
  for i, x in enumerate(a, 1):
    previous, row[0] = row[0], i
    for j, y in enumerate(b, 1):
      previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
  return row[-1]


def error_rates(references: Sequence[str], hypotheses: Sequence[str]) -> dict[str, float]:
  """{'cer', 'wer', 'exact', 'count'} of transcripts against references (host-side)."""
  chars = sum(len(r) for r in references)
  words = sum(len(r.split()) for r in references)
  return {"cer": sum(levenshtein(r, h) for r, h in zip(references, hypotheses)) / max(chars, 1),
          "wer": sum(levenshtein(r.split(), h.split())
                     for r, h in zip(references, hypotheses)) / max(words, 1),
          "exact": float(np.mean([r == h for r, h in zip(references, hypotheses)])),
          "count": len(references)}


def evaluate_decoders(logits: Sequence[np.ndarray], texts: Sequence[str],
                      decoders: dict[str, Callable[[np.ndarray], str]]) -> dict[str, dict]:
  """Error rates (`error_rates`) of each named decoder (per-utterance logits or log-probabilities
  [T', K] -> text) against the utterances' transcripts."""
  return {name: error_rates(texts, [decode(x) for x in logits]) for name, decode in decoders.items()}
