"""Spoken digits for CTC training: the Free Spoken Digit Dataset (FSDD) and its splits.

FSDD (`data_dir/fsdd/recordings/{digit}_{speaker}_{index}.wav`, 8 kHz 16-bit mono) or TFDS
`spoken_digit` when it is already prepared in data_dir (never downloaded). Splits (config `split`):
- 'official': takes 0-4 of every speaker and digit are the test set, 5-49 train;
- 'speaker:<name>': all recordings of <name> are the test set, the other speakers train;
  'speaker:first' holds out the folder's alphabetically first speaker (george in FSDD);
- 'phone_numbers': utterances of 3-7 digit recordings joined with short random silences (seeded),
  transcribed as words ("four one one"); train numbers are built from the official train takes,
  test numbers from the test takes.
Utterances become features once (jitted JAX spectrograms, `mlfun_jax.speech.audio`), standardised per
utterance or per speaker (config `audio.normalize_over`), and are batched with numpy in length
buckets (`data.buckets`), so few shapes are compiled.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import json
import os
import re
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np

from mlfun_jax.core import progress
from mlfun_jax.speech import audio
from mlfun_jax.speech import ctc_decode
from mlfun_jax.data import buckets as buckets_lib
from mlfun_jax.core import extras
from mlfun_jax.data import sources
from mlfun_jax.speech import synthetic_speech
from mlfun_jax.core.errors import UserError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DATASETS = ("fsdd", "tfds_spoken_digit")
NORMALIZE_OVER = ("utterance", "speaker")
_FILE_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Recording:
  """One spoken digit: float32 samples at the configured rate, its digit, speaker and take."""
  wave: np.ndarray
  digit: int
  speaker: str
  take: int


class Utterance(NamedTuple):
  """A waveform, its transcript and who speaks (the group its features are standardised over when
  normalising per speaker)."""
  wave: np.ndarray
  text: str
  speaker: str


@dataclasses.dataclass(frozen=True, eq=False)
class SpeechSplit:
  """Utterances held in memory.

  Attributes:
    features: per utterance float32 [frames, F].
    texts: per utterance its transcript.
    labels: int32 [N, L] class ids (1..), 0-padded; label_lengths int32 [N].
    speakers: per utterance its speaker (training copies: speaker@speed).
  """
  features: list[np.ndarray]
  texts: list[str]
  labels: np.ndarray
  label_lengths: np.ndarray
  speakers: list[str]

  def __len__(self) -> int:
    return len(self.texts)

  @property
  def lengths(self) -> np.ndarray:
    return np.array([len(f) for f in self.features], np.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class SpeechDataset:
  """Both splits and the front end that made their features."""
  name: str
  train: SpeechSplit
  test: SpeechSplit
  front_end: audio.FrontEnd
  info: dict = dataclasses.field(default_factory=dict)


def fsdd_paths(data_dir: str) -> list[str]:
  """The sorted wav files of the first of data_dir, data_dir/recordings and
  data_dir/fsdd/recordings that holds FSDD's.

  Raises:
    sources.DatasetMissing: none does; the message names the command that fetches FSDD.
  """
  data_dir = os.path.expanduser(data_dir)
  for folder in (data_dir, os.path.join(data_dir, "recordings"),
                 os.path.join(data_dir, "fsdd", "recordings")):
    paths = sorted(glob.glob(os.path.join(folder, "*.wav")))
    if any(fnmatch.fnmatch(os.path.basename(path), "[0-9]_*_*.wav") for path in paths):
      return paths
  where = (f"{os.path.join(data_dir, 'fsdd', 'recordings')} (no {{digit}}_{{speaker}}_{{take}}.wav "
           f"files there, in {os.path.join(data_dir, 'recordings')} or in {data_dir}; config "
           "field data_dir)")
  if os.path.basename(os.path.normpath(data_dir)) == "fsdd":
    raise sources.missing("fsdd", os.path.dirname(os.path.normpath(data_dir)), where=where)
  raise sources.missing("fsdd", data_dir, where=where)


def read_fsdd(data_dir: str, sample_rate: int) -> list[Recording]:
  """Every FSDD recording in data_dir, resampled to sample_rate, in file-name order."""
  recordings = []
  paths = fsdd_paths(data_dir)
  with progress.Counter("reading recordings", total=len(paths), unit="files") as counter:
    for path in paths:
      match = _FILE_NAME.match(os.path.basename(path))
      if match:
        recordings.append(Recording(audio.load_audio(path, sample_rate), int(match[1]), match[2],
                                    int(match[3])))
      counter.add()
  return recordings


def read_tfds_spoken_digit(data_dir: str, sample_rate: int) -> list[Recording]:
  """TFDS `spoken_digit` (8 kHz) when already prepared in data_dir; never downloads."""
  tfds = extras.require("tensorflow_datasets", "dataset=tfds_spoken_digit")
  try:
    source = tfds.data_source("spoken_digit", data_dir=data_dir, download=False, split="train")
  except Exception as e:  # pylint: disable=broad-except
    raise UserError(f"TFDS spoken_digit is not prepared in data_dir {data_dir!r} ({type(e).__name__}"
                    "); use dataset=fsdd with its recordings, or prepare it there") from e
  recordings = []
  for record in source:
    name = os.path.basename(record["audio/filename"].decode() if isinstance(
        record["audio/filename"], bytes) else str(record["audio/filename"]))
    match = _FILE_NAME.match(name)
    if not match:
      continue
    wave = np.asarray(record["audio"], np.float32) / 32768.0
    recordings.append(Recording(audio.resample(wave, 8000, sample_rate), int(match[1]), match[2],
                                int(match[3])))
  return recordings


def split_recordings(recordings: Sequence[Recording], split: str
                     ) -> tuple[list[Recording], list[Recording]]:
  """(train, test) recordings of the 'official' or 'speaker:<name>' split ('speaker:first': the
  alphabetically first speaker; 'phone_numbers' uses the official takes)."""
  if split in ("official", "phone_numbers"):
    return ([r for r in recordings if r.take >= 5], [r for r in recordings if r.take < 5])
  if split.startswith("speaker:"):
    speaker = split.split(":", 1)[1]
    speakers = sorted({r.speaker for r in recordings})
    if speaker == "first" and speakers and "first" not in speakers:
      speaker = speakers[0]
    if speaker not in speakers:
      raise UserError(f"config field split={split!r}: no speaker {speaker!r}; the speakers are "
                      f"{', '.join(speakers)}")
    return ([r for r in recordings if r.speaker != speaker],
            [r for r in recordings if r.speaker == speaker])
  raise UserError(f"unknown config field split={split!r}; choose official, speaker:<name>, "
                  "speaker:first or phone_numbers")


def phone_numbers(recordings: Sequence[Recording], count: int, *, sample_rate: int, seed: int,
                  min_digits: int = 3, max_digits: int = 7, min_silence_s: float = 0.05,
                  max_silence_s: float = 0.3) -> list[Utterance]:
  """`count` utterances: min..max_digits random recordings of one random speaker joined by
  silences of min..max_silence_s seconds (also before and after), transcribed as words; seeded."""
  if not recordings:
    raise UserError("no recordings to build phone numbers from")
  if not 1 <= min_digits <= max_digits:
    raise UserError(f"phone numbers need 1 <= min_digits <= max_digits, got {min_digits}, "
                    f"{max_digits}")
  rng = np.random.default_rng(seed)
  by_speaker: dict[str, list[Recording]] = {}
  for r in recordings:
    by_speaker.setdefault(r.speaker, []).append(r)
  speakers = sorted(by_speaker)

  def silence() -> np.ndarray:
    return np.zeros(int(rng.uniform(min_silence_s, max_silence_s) * sample_rate), np.float32)

  out = []
  for _ in range(count):
    speaker = speakers[rng.integers(len(speakers))]
    pool = by_speaker[speaker]
    chosen = [pool[i] for i in rng.integers(len(pool), size=rng.integers(min_digits,
                                                                          max_digits + 1))]
    pieces = []
    for r in chosen:
      pieces += [silence(), r.wave]
    pieces.append(silence())
    out.append(Utterance(np.concatenate(pieces), " ".join(DIGIT_WORDS[r.digit] for r in chosen),
                         speaker))
  return out


def speed_perturbed(wave: np.ndarray, speed: float, sample_rate: int) -> np.ndarray:
  """The float waveform [S] in [-1, 1] played `speed` times faster (pitch shifts with it), by
  resampling."""
  audio.check_wave(wave)
  if speed == 1.0:
    return wave
  return audio.resample(wave, int(round(sample_rate * speed)), sample_rate)


def with_noise(waves: Sequence[np.ndarray], *, fraction: float, snr_db: tuple[float, float],
               seed: int) -> list[np.ndarray]:
  """The waveforms, a seeded `fraction` of them with white noise added at a signal-to-noise ratio
  drawn uniformly from snr_db = (low, high) decibels (relative to each waveform's mean power);
  waves: a list of float waveforms [S_i] in [-1, 1]."""
  waves = audio.check_waves(waves)
  if not 0.0 <= fraction <= 1.0 or snr_db[0] > snr_db[1]:
    raise UserError(f"train_noise needs 0 <= fraction <= 1 and snr_db low <= high, got "
                    f"{fraction}, {tuple(snr_db)}")
  rng = np.random.default_rng(seed)
  out = []
  for wave in waves:  # Every draw is made for every wave: the stream does not depend on fraction.
    noisy, snr = rng.random() < fraction, rng.uniform(*snr_db)
    noise = rng.standard_normal(len(wave))
    if noisy:
      power = float(np.mean(np.square(wave))) if len(wave) else 0.0
      wave = (wave + noise * np.sqrt(power * 10.0 ** (-snr / 10.0))).astype(np.float32)
    out.append(wave)
  return out


def tightly_trimmed(waves: Sequence[np.ndarray], *, fraction: float, top_db: tuple[float, float],
                    seed: int) -> list[np.ndarray]:
  """The waveforms, a seeded `fraction` of them with their edges trimmed down to the frames
  within a threshold drawn uniformly from top_db = (low, high) decibels of their loudest frame
  (`synthetic_speech.trim_silence`): weak onsets and endings ('s', 'ks', 'f') cut off, as tight
  energy trimming cuts them from some recordings. waves: a list of float waveforms [S_i] in
  [-1, 1]."""
  waves = audio.check_waves(waves)
  if not 0.0 <= fraction <= 1.0 or not 0.0 < top_db[0] <= top_db[1]:
    raise UserError(f"train_trim needs 0 <= fraction <= 1 and 0 < top_db low <= high, got "
                    f"{fraction}, {tuple(top_db)}")
  rng = np.random.default_rng(seed)
  out = []
  for wave in waves:  # Every draw is made for every wave: the stream does not depend on fraction.
    trimmed, threshold = rng.random() < fraction, rng.uniform(*top_db)
    out.append(synthetic_speech.trim_silence(wave, threshold) if trimmed else wave)
  return out


def speech_features(front_end: audio.FrontEnd, waves: Sequence[np.ndarray],
                    speakers: Sequence[str], normalize_over: str = "utterance"
                    ) -> list[np.ndarray]:
  """Per waveform its features float32 [frames, F]. With front_end.normalize each feature is
  standardised over the utterance's frames ('utterance') or over all frames of the waveforms
  with the same speakers[i] ('speaker': cepstral mean and variance normalisation per speaker, so
  an utterance's silences and its word's own average spectrum are not normalised away).

  waves: a list of float waveforms [S_i] in [-1, 1] at front_end.sample_rate
  (`audio.check_waves`); speakers: one name per waveform.
  """
  waves = audio.check_waves(waves)
  if len(speakers) != len(waves):
    raise ValueError(f"{len(speakers)} speakers for {len(waves)} waveforms")
  if normalize_over not in NORMALIZE_OVER:
    raise UserError(f"unknown config field audio.normalize_over={normalize_over!r}; choose one of "
                    f"{', '.join(NORMALIZE_OVER)}")
  if normalize_over == "utterance" or not front_end.normalize:
    return audio.features_of(front_end, list(waves))
  raw = audio.features_of(dataclasses.replace(front_end, normalize=False), list(waves))
  return audio.normalize_groups(raw, speakers)


def make_split(front_end: audio.FrontEnd, utterances: Sequence[Utterance], label_length: int,
               normalize_over: str = "utterance", *, alphabet: str = ctc_decode.ALPHABET
               ) -> SpeechSplit:
  """Features (see `speech_features`) and padded labels (class ids of `alphabet`) of
  utterances."""
  texts = [u.text for u in utterances]
  labels = np.zeros((len(texts), label_length), np.int32)
  label_lengths = np.zeros(len(texts), np.int32)
  for i, text in enumerate(texts):
    ids = ctc_decode.encode(text, alphabet)
    if len(ids) > label_length:
      raise UserError(f"transcript {text!r} is longer than {label_length} characters")
    labels[i, :len(ids)] = ids
    label_lengths[i] = len(ids)
  speakers = [u.speaker for u in utterances]
  features = speech_features(front_end, [u.wave for u in utterances], speakers, normalize_over)
  return SpeechSplit(features, texts, labels, label_lengths, speakers)


def _split_recordings(config, sample_rate: int) -> tuple[list[Recording], list[Recording]]:
  """(train, test) recordings of the config's dataset and split."""
  if config.dataset == "fsdd":
    recordings = read_fsdd(config.data_dir, sample_rate)
  elif config.dataset == "tfds_spoken_digit":
    recordings = read_tfds_spoken_digit(config.data_dir, sample_rate)
  else:
    raise UserError(f"unknown config field dataset={config.dataset!r}; choose one of "
                    f"{', '.join(DATASETS)}")
  return split_recordings(recordings, config.split)


def _utterances(config, recordings: Sequence[Recording], sample_rate: int, *, train: bool
                ) -> list[Utterance]:
  """The utterances of one side of the split (train: before speed perturbation and noise).

  Phone numbers are seeded per side (train phone_numbers.seed, test seed + 1), so either side can
  be built alone.
  """
  if config.split != "phone_numbers":
    return [Utterance(r.wave, DIGIT_WORDS[r.digit], r.speaker) for r in recordings]
  min_digits = config.phone_numbers.min_digits
  max_digits = config.phone_numbers.max_digits
  if train:
    min_digits = config.phone_numbers.train_min_digits or min_digits
    max_digits = config.phone_numbers.train_max_digits or max_digits
  return phone_numbers(
      recordings,
      config.phone_numbers.num_train if train else config.phone_numbers.num_test,
      sample_rate=sample_rate,
      seed=config.phone_numbers.seed if train else config.phone_numbers.seed + 1,
      min_digits=min_digits, max_digits=max_digits,
      min_silence_s=config.phone_numbers.min_silence_s,
      max_silence_s=config.phone_numbers.max_silence_s)


def _empty_split_error(config) -> UserError:
  return UserError(f"split {config.split!r} of {config.data_dir!r} leaves an empty train or test "
                   "set")


def load_speech_dataset(config) -> SpeechDataset:
  """The dataset, split and front end named by the config (see experiments/configs/
  speech_ctc_digits.py): fields dataset, data_dir, split, audio.*, phone_numbers.*, train_speeds,
  train_noise.*, synthetic_voices.*, train_trim.*.

  Each speed of a training speaker counts as its own speaker for `audio.normalize_over='speaker'`.
  """
  front_end = audio.FrontEnd.from_config(config.audio)
  rate = front_end.sample_rate
  train, test = _split_recordings(config, rate)
  train_utterances = _utterances(config, train, rate, train=True)
  test_utterances = _utterances(config, test, rate, train=False)
  if not train_utterances or not test_utterances:
    raise _empty_split_error(config)
  speeds = tuple(config.train_speeds)
  train_utterances = [
      Utterance(speed_perturbed(u.wave, s, rate), u.text, u.speaker if s == 1.0 else
                f"{u.speaker}@{s}") for s in speeds for u in train_utterances]
  if config.train_noise.fraction:
    noisy = with_noise([u.wave for u in train_utterances], fraction=config.train_noise.fraction,
                       snr_db=tuple(config.train_noise.snr_db), seed=config.train_noise.seed)
    train_utterances = [u._replace(wave=w) for w, u in zip(noisy, train_utterances)]
  if config.synthetic_voices.count:
    count, takes = config.synthetic_voices.count, config.synthetic_voices.takes
    accented = config.synthetic_voices.accented
    if count < 0 or takes < 1 or not 0.0 <= accented <= 1.0:
      raise UserError(f"config synthetic_voices needs count >= 0, takes >= 1 and 0 <= accented "
                      f"<= 1; got count={count}, takes={takes}, accented={accented}")
    voices = synthetic_speech.draw_voices(count, config.synthetic_voices.seed, accented=accented)
    train_utterances += [Utterance(*u) for u in synthetic_speech.synthetic_utterances(
        DIGIT_WORDS, voices, takes=takes, sample_rate=rate, seed=config.synthetic_voices.seed)]
  if config.train_trim.fraction:
    trimmed = tightly_trimmed([u.wave for u in train_utterances],
                              fraction=config.train_trim.fraction,
                              top_db=tuple(config.train_trim.top_db), seed=config.train_trim.seed)
    train_utterances = [u._replace(wave=w) for w, u in zip(trimmed, train_utterances)]
  label_length = max(len(u.text) for u in train_utterances + test_utterances)
  return SpeechDataset(
      name=config.dataset,
      train=make_split(front_end, train_utterances, label_length, config.audio.normalize_over,
                       alphabet=config.alphabet),
      test=make_split(front_end, test_utterances, label_length, config.audio.normalize_over,
                      alphabet=config.alphabet),
      front_end=front_end,
      info={"split": config.split, "label_length": label_length, "data_dir": config.data_dir})


def test_split_key(config) -> str:
  """The config fields `load_test_split` reads (dataset, data_dir, split, phone_numbers, audio,
  alphabet), as one string: configs with equal keys give equal test splits."""
  fields = {"dataset": config.dataset, "data_dir": config.data_dir, "split": config.split,
            "phone_numbers": config.phone_numbers, "audio": config.audio,
            "alphabet": config.alphabet}
  return json.dumps({name: value.to_dict() if hasattr(value, "to_dict") else value
                     for name, value in fields.items()}, sort_keys=True, default=str)


def load_test_split(config, limit: int = 0) -> SpeechSplit:
  """The test split of `load_speech_dataset(config)` (same utterances, transcripts and features)
  without building the training set; only its first `limit` utterances (0: all; speaker
  statistics still come from all). Its labels are padded to its own longest transcript."""
  front_end = audio.FrontEnd.from_config(config.audio)
  _, test = _split_recordings(config, front_end.sample_rate)
  utterances = _utterances(config, test, front_end.sample_rate, train=False)
  if not utterances:
    raise _empty_split_error(config)
  split = make_split(front_end, utterances, max(len(u.text) for u in utterances),
                     config.audio.normalize_over, alphabet=config.alphabet)
  if not limit:
    return split
  return SpeechSplit(split.features[:limit], split.texts[:limit], split.labels[:limit],
                     split.label_lengths[:limit], split.speakers[:limit])


def _gather(split: SpeechSplit, indices: np.ndarray, frames: int, shape: tuple[int, int]) -> Batch:
  num_features = split.features[0].shape[1]
  features = np.zeros((len(indices), frames, num_features), np.float32)
  lengths = np.zeros(len(indices), np.int32)
  for row, i in enumerate(indices):
    f = split.features[i][:frames]
    features[row, :len(f)] = f
    lengths[row] = len(f)
  return {"features": features.reshape(shape + features.shape[1:]),
          "lengths": lengths.reshape(shape),
          "labels": split.labels[indices].reshape(shape + split.labels.shape[1:]),
          "label_lengths": split.label_lengths[indices].reshape(shape)}


def train_batches(split: SpeechSplit, buckets: Sequence[int], *, global_batch_size: int,
                  seed: int, start_step: int = 0, process_index: int = 0, process_count: int = 1,
                  local_device_count: int = 1) -> Iterator[Batch]:
  """Endless deterministic batches for steps start_step, ...; batch s depends only on (seed, s).

  Yields:
    {'features': float32 [D, b, T, F], 'lengths': int32 [D, b], 'labels': int32 [D, b, L],
    'label_lengths': int32 [D, b]}, T the batch's bucket, b = B / (P * D).
  """
  sizes = buckets_lib.bucket_sizes(split.lengths, buckets)
  part, shape = buckets_lib.local_layout(global_batch_size, process_index, process_count,
                                         local_device_count)
  return (_gather(split, indices[part], size, shape) for size, indices in
          buckets_lib.train_index_batches(sizes, global_batch_size, seed, start_step))


def eval_batches(split: SpeechSplit, buckets: Sequence[int], *, global_batch_size: int,
                 process_index: int = 0, process_count: int = 1,
                 local_device_count: int = 1) -> Iterator[Batch]:
  """One pass over the split, bucket by bucket; padding examples have 'mask' 0.0 (float32 [D, b])."""
  sizes = buckets_lib.bucket_sizes(split.lengths, buckets)
  part, shape = buckets_lib.local_layout(global_batch_size, process_index, process_count,
                                         local_device_count)
  for size, indices, mask in buckets_lib.eval_index_batches(sizes, global_batch_size):
    batch = _gather(split, indices[part], size, shape)
    batch["mask"] = mask[part].reshape(shape)
    yield batch
