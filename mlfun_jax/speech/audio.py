"""Audio front end: wav files -> resampled waveforms -> log-power or log-mel spectrograms.

Reading and resampling run on the host (scipy); the spectrogram itself is pure JAX and jit-compiled,
so it runs on the accelerator: frames of `frame_ms` (20 ms) every `hop_ms`, a window, a real FFT of
`n_fft` points, power, optional triangular mel filters (HTK mel scale), the log, optionally the first
cepstral coefficients of the log-mel spectrum (MFCCs: an orthonormal DCT-II, which keeps the
spectral envelope and drops the voice's pitch harmonics), and per-utterance normalisation of each
feature over the utterance's real frames (padding masked out).

Waveforms are float arrays at full scale +-1 (as `read_wav` returns them); integer PCM (int16
samples, or floats holding their values) is refused with one line: see `check_waves`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import wave

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core import progress
from mlfun_jax.core.errors import UserError

WINDOWS = ("hann", "hamming", "rectangular")
# Waveforms are at full scale +-1; resampling and added noise may overshoot it a little, so up to
# this peak is accepted. Larger peaks are integer PCM values (e.g. int16 up to 32767) unscaled.
MAX_ABS_SAMPLE = 2.0


def check_full_scale(x, *, name: str) -> None:
  """InputError unless the float samples `x` lie in [-1, 1] (|x| <= MAX_ABS_SAMPLE tolerated);
  values are checked on concrete arrays only."""
  if not checks.is_concrete(x) or not np.size(x):
    return
  peak = float(np.max(np.abs(np.asarray(x, np.float64))))
  if not peak <= MAX_ABS_SAMPLE:  # Also NaN.
    raise checks.InputError(
        f"{name} must be float samples in [-1, 1] (full scale; |x| <= {MAX_ABS_SAMPLE:g} "
        f"tolerated), got a peak of {peak:.5g}: scale integer PCM by 1 / 32768 (int16)")


def check_wave(wave, *, name: str = "wave") -> None:
  """InputError unless `wave` is one float waveform [S] in [-1, 1] (see `check_full_scale`)."""
  checks.check_floats(wave, name=name, rank=1, shape="[S] (one waveform)")
  check_full_scale(wave, name=name)


def check_waves(waves, *, name: str = "waves") -> list:
  """`waves` as a list after checking it is a sequence of float waveforms [S_i] in [-1, 1].

  Raises:
    checks.InputError: one waveform (an array [S]) instead of a list of them, or an item of
      another dtype, rank or scale.
  """
  if isinstance(waves, str) or (hasattr(waves, "ndim") and np.ndim(waves) < 2):
    shape = f" {waves.dtype} {list(waves.shape)}" if hasattr(waves, "shape") else ""
    raise checks.InputError(f"{name} must be a list of float waveforms [S]; got one "
                       f"{type(waves).__name__}{shape}: wrap a single waveform in a list")
  waves = list(waves)
  for i, samples in enumerate(waves):
    check_wave(samples, name=f"{name}[{i}]")
  return waves


@dataclasses.dataclass(frozen=True)
class FrontEnd:
  """How waveforms become features (hashable: a static argument of the jitted spectrogram).

  Attributes:
    sample_rate: Hz every waveform is resampled to.
    frame_ms: frame length in milliseconds (the series' 20 ms chunks).
    hop_ms: milliseconds between frame starts.
    n_fft: FFT size (>= frame length); 0: the next power of two.
    window: 'hann' (periodic), 'hamming' (periodic) or 'rectangular'.
    mel_bins: 0 for the log-power spectrum (n_fft // 2 + 1 bins), else that many mel bins.
    fmin, fmax: mel filter range in Hz (fmax 0: sample_rate / 2).
    log_floor: added to the power before the log.
    top_db: 0 for none, else each utterance's (mel) power is floored at its largest value over
      frames and bins minus top_db decibels, so recordings with different noise floors (a studio
      silence vs a noisy room) look alike in their quiet parts.
    mfcc: 0 for log-mel (or log-power) features, else that many cepstral coefficients of the
      log-mel spectrum (needs mel_bins >= mfcc).
    normalize: standardise each feature over the utterance's frames (mean 0, variance 1).
  """
  sample_rate: int = 8000
  frame_ms: float = 20.0
  hop_ms: float = 10.0
  n_fft: int = 0
  window: str = "hann"
  mel_bins: int = 40
  fmin: float = 20.0
  fmax: float = 0.0
  log_floor: float = 1e-6
  top_db: float = 0.0
  mfcc: int = 0
  normalize: bool = True

  def __post_init__(self):
    if self.window not in WINDOWS:
      raise UserError(f"unknown audio window {self.window!r}; choose one of {', '.join(WINDOWS)}")
    if self.sample_rate <= 0 or self.frame_length < 2 or self.hop_length < 1:
      raise UserError(f"audio front end needs sample_rate > 0, a frame of >= 2 samples and a hop "
                      f"of >= 1 sample; got {self}")
    if self.n_fft and self.n_fft < self.frame_length:
      raise UserError(f"audio n_fft={self.n_fft} is shorter than the frame "
                      f"({self.frame_length} samples)")
    if self.top_db < 0:
      raise UserError(f"audio top_db={self.top_db} must be >= 0 (0: no floor)")
    if self.mel_bins < 0:
      raise UserError(f"audio mel_bins={self.mel_bins} must be >= 0")
    if self.mfcc < 0 or (self.mfcc and self.mfcc > self.mel_bins):
      raise UserError(f"audio mfcc={self.mfcc} must be 0 or between 1 and mel_bins="
                      f"{self.mel_bins}")

  @classmethod
  def from_config(cls, config) -> "FrontEnd":
    """From a ConfigDict / dict with any of the attribute names."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in dict(config).items() if k in fields})

  @property
  def frame_length(self) -> int:
    return int(round(self.sample_rate * self.frame_ms / 1000.0))

  @property
  def hop_length(self) -> int:
    return int(round(self.sample_rate * self.hop_ms / 1000.0))

  @property
  def fft_length(self) -> int:
    return self.n_fft or 1 << (self.frame_length - 1).bit_length()

  @property
  def num_features(self) -> int:
    return self.mfcc or self.mel_bins or self.fft_length // 2 + 1

  def num_frames(self, num_samples):
    """Frames that lie wholly inside `num_samples` samples, at least 1 (of an int: an int; of a JAX
    int array: elementwise)."""
    frames = 1 + (num_samples - self.frame_length) // self.hop_length
    return max(frames, 1) if isinstance(frames, int) else jnp.maximum(frames, 1)


def window(name: str, length: int) -> np.ndarray:
  """float32 [length] periodic window (as scipy.signal.get_window gives for FFTs)."""
  n = np.arange(length)
  if name == "hann":
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / length)).astype(np.float32)
  if name == "hamming":
    return (0.54 - 0.46 * np.cos(2 * np.pi * n / length)).astype(np.float32)
  return np.ones(length, np.float32)


def hz_to_mel(hz):
  return 2595.0 * np.log10(1.0 + np.asarray(hz, np.float64) / 700.0)


def mel_to_hz(mel):
  return 700.0 * (10.0 ** (np.asarray(mel, np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, mel_bins: int, fmin: float = 0.0,
                   fmax: float = 0.0) -> np.ndarray:
  """float32 [n_fft // 2 + 1, mel_bins]: triangular filters, equally spaced on the HTK mel scale.

  Filter m rises linearly from edge m to a peak of 1 at edge m + 1 and falls to 0 at edge m + 2,
  where the mel_bins + 2 edges are equally spaced in mel between fmin and fmax (Hz).
  """
  fmax = fmax or sample_rate / 2.0
  edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), mel_bins + 2))
  bins = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
  lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
  rising = (bins[None] - lower) / (centre - lower)
  falling = (upper - bins[None]) / (upper - centre)
  return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


def dct_matrix(size: int, count: int) -> np.ndarray:
  """float32 [size, count]: x @ it gives the first `count` coefficients of the orthonormal DCT-II
  of x [..., size] (as scipy.fft.dct(x, norm='ortho')[..., :count])."""
  n = np.arange(size)[:, None]
  k = np.arange(count)[None, :]
  matrix = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2.0 / size)
  matrix[:, 0] /= np.sqrt(2.0)
  return matrix.astype(np.float32)


def spectrogram(front_end: FrontEnd, waves: jax.Array, lengths: jax.Array
                ) -> tuple[jax.Array, jax.Array]:
  """Log-power (or log-mel, or MFCC) features of a padded batch of waveforms (jit-compiled).

  Args:
    front_end: the settings (static).
    waves: float [B, S] waveforms in [-1, 1] at `front_end.sample_rate`, zero-padded after their
      length (a batch: one waveform is waves[None]).
    lengths: int [B] real samples of each waveform.

  Returns:
    (features float32 [B, T, F], frame counts int32 [B]) with T = front_end.num_frames(S) and
    F = front_end.num_features; frames past an utterance's count are 0 (when normalising) and are
    padding.

  Raises:
    checks.InputError: waves of another dtype, rank or scale (integer PCM); lengths not
      int [B].
  """
  checks.check_floats(waves, name="waves", rank=2, shape="[B, S] (a padded batch)")
  check_full_scale(waves, name="waves")
  checks.check_ids(lengths, name="lengths", rank=1, shape="[B]", empty_any_dtype=True)
  return _spectrogram(front_end, waves, lengths)


@functools.partial(jax.jit, static_argnums=0)
def _spectrogram(front_end: FrontEnd, waves: jax.Array, lengths: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """`spectrogram` without the conventions."""
  win, hop = front_end.frame_length, front_end.hop_length
  waves = jnp.asarray(waves, jnp.float32)
  if waves.shape[1] < win:
    waves = jnp.pad(waves, ((0, 0), (0, win - waves.shape[1])))
  num_frames = front_end.num_frames(waves.shape[1])
  starts = jnp.arange(num_frames) * hop
  frames = waves[:, starts[:, None] + jnp.arange(win)[None]]  # [B, T, win]
  spectrum = jnp.fft.rfft(frames * window(front_end.window, win), n=front_end.fft_length)
  power = jnp.square(spectrum.real) + jnp.square(spectrum.imag)
  if front_end.mel_bins:
    filters = mel_filterbank(front_end.sample_rate, front_end.fft_length, front_end.mel_bins,
                             front_end.fmin, front_end.fmax)
    power = jnp.dot(power, filters, precision=jax.lax.Precision.HIGHEST)
  if front_end.top_db:
    peak = jnp.max(power, axis=(1, 2), keepdims=True)  # Padding frames hold 0 power.
    power = jnp.maximum(power, peak * 10.0 ** (-front_end.top_db / 10.0))
  features = jnp.log(power + front_end.log_floor)
  if front_end.mfcc:
    features = jnp.dot(features, dct_matrix(front_end.mel_bins, front_end.mfcc),
                       precision=jax.lax.Precision.HIGHEST)
  frame_counts = jnp.minimum(front_end.num_frames(jnp.asarray(lengths)), num_frames
                             ).astype(jnp.int32)
  if front_end.normalize:
    features = normalize(features, frame_counts)
  return features, frame_counts


def normalize(features: jax.Array, frame_counts: jax.Array, eps: float = 1e-5) -> jax.Array:
  """Standardises each bin of features [B, T, F] over the first frame_counts [B] frames; padding
  frames become 0."""
  mask = (jnp.arange(features.shape[1])[None] < frame_counts[:, None])[..., None]
  count = jnp.maximum(frame_counts, 1)[:, None, None].astype(features.dtype)
  mean = jnp.sum(features * mask, axis=1, keepdims=True) / count
  variance = jnp.sum(jnp.square(features - mean) * mask, axis=1, keepdims=True) / count
  return jnp.where(mask, (features - mean) / jnp.sqrt(variance + eps), 0.0)


def normalize_groups(features: list[np.ndarray], groups, eps: float = 1e-5) -> list[np.ndarray]:
  """Standardises each bin of per-utterance features [frames, F] over all frames of the utterances
  in the same group (groups[i]: any hashable naming utterance i's group, e.g. its speaker)."""
  out = [None] * len(features)
  members: dict = {}
  for i, group in enumerate(groups):
    members.setdefault(group, []).append(i)
  for indices in members.values():
    frames = np.concatenate([features[i] for i in indices]).astype(np.float64)
    mean, std = frames.mean(axis=0), np.sqrt(frames.var(axis=0) + eps)
    for i in indices:
      out[i] = ((features[i] - mean) / std).astype(np.float32)
  return out


def read_wav(path: str) -> tuple[np.ndarray, int]:
  """(float32 mono samples in [-1, 1], sample rate) of a PCM wav file (8, 16 or 32 bit).

  Raises:
    UserError: the file is missing or is not a readable PCM wav file.
  """
  if not os.path.isfile(path):
    raise UserError(f"audio file {path!r} does not exist")
  try:
    with wave.open(path, "rb") as f:
      rate, width, channels = f.getframerate(), f.getsampwidth(), f.getnchannels()
      raw = f.readframes(f.getnframes())
  except (wave.Error, EOFError, OSError) as e:
    raise UserError(f"audio file {path!r} is not a PCM wav file: {e}") from e
  if width == 1:
    samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
  elif width == 2:
    samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
  elif width == 4:
    samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
  else:
    raise UserError(f"audio file {path!r} has {8 * width}-bit samples; need 8, 16 or 32-bit PCM")
  if rate <= 0:
    raise UserError(f"audio file {path!r} says its sample rate is {rate} Hz")
  samples = samples[:len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
  if not len(samples):
    raise UserError(f"audio file {path!r} holds no audio (0 samples)")
  return samples.astype(np.float32), rate


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
  """float32 [S'] samples resampled from `from_rate` to `to_rate` Hz (polyphase, scipy) from float
  samples [S] (any scale)."""
  checks.check_floats(samples, name="samples", rank=1, shape="[S] (one waveform)")
  if from_rate == to_rate:
    return np.asarray(samples, np.float32)
  import scipy.signal  # pylint: disable=g-import-not-at-top
  g = math.gcd(int(from_rate), int(to_rate))
  return scipy.signal.resample_poly(samples, to_rate // g, from_rate // g).astype(np.float32)


def load_audio(path: str, sample_rate: int) -> np.ndarray:
  """float32 [S] mono samples of a wav file at `sample_rate` Hz."""
  samples, rate = read_wav(path)
  return resample(samples, rate, sample_rate)


def pad_batch(waves: list[np.ndarray], length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """(float32 [B, S, ...] zero-padded arrays, int32 [B] lengths); S = `length` or the longest.

  Waveforms [S_i] give [B, S]; per-frame features [T_i, F] give [B, T, F].
  """
  lengths = np.array([len(w) for w in waves], np.int32)
  rest = waves[0].shape[1:] if len(waves) else ()
  out = np.zeros((len(waves), length or max(int(lengths.max(initial=0)), 1)) + rest, np.float32)
  for i, w in enumerate(waves):
    out[i, :len(w)] = w[:out.shape[1]]
  return out, np.minimum(lengths, out.shape[1])


def features_of(front_end: FrontEnd, waves: list[np.ndarray], chunk: int = 64,
                multiple: int = 1024) -> list[np.ndarray]:
  """Per waveform, float32 [frames, F] features (only its real frames), computed `chunk` at a time.

  Args:
    front_end: the settings.
    waves: a list of float waveforms [S_i] in [-1, 1] at `front_end.sample_rate`
      (`check_waves`).
    chunk, multiple: waveforms are padded to a multiple of `multiple` samples, so few shapes are
      compiled, and `chunk` of them are computed at a time.
  """
  waves = check_waves(waves)
  order = np.argsort([len(w) for w in waves], kind="stable")
  results = [None] * len(waves)
  with progress.Counter("speech features", total=len(waves), unit="utterances") as counter:
    for start in range(0, len(waves), chunk):
      idx = order[start:start + chunk]
      longest = max(len(waves[i]) for i in idx)
      padded, lengths = pad_batch([waves[i] for i in idx],
                                  -(-max(longest, 1) // multiple) * multiple)
      features, counts = jax.device_get(spectrogram(front_end, padded, lengths))
      for j, i in enumerate(idx):
        results[i] = np.asarray(features[j, :counts[j]])
      counter.add(len(idx))
  return results
