"""Spoken digits for CTC training: the Free Spoken Digit Dataset (FSDD) and its splits.

FSDD (`data_dir/fsdd/recordings/{digit}_{speaker}_{index}.wav`, 8 kHz 16-bit mono) or TFDS
`spoken_digit` when it is already prepared in data_dir (never downloaded). Splits (config `split`):
- 'official': takes 0-4 of every speaker and digit are the test set, 5-49 train;
- 'speaker:<name>': all recordings of <name> are the test set, the other speakers train;
- 'phone_numbers': utterances of 3-7 digit recordings joined with short random silences (seeded),
  transcribed as words ("four one one"); train numbers are built from the official train takes,
  test numbers from the test takes.
Utterances become features once (jitted JAX spectrograms, `mlfun_jax.audio`) and are batched with
numpy in length buckets (`data.buckets`), so few shapes are compiled.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import glob
import os
import re
from collections.abc import Iterator, Sequence

import numpy as np

from mlfun_jax import audio
from mlfun_jax import ctc_decode
from mlfun_jax.data import buckets as buckets_lib
from mlfun_jax.errors import UserError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DATASETS = ("fsdd", "tfds_spoken_digit")
_FILE_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
Batch = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class Recording:
  """One spoken digit: float32 samples at the configured rate, its digit, speaker and take."""
  wave: np.ndarray
  digit: int
  speaker: str
  take: int


@dataclasses.dataclass(frozen=True, eq=False)
class SpeechSplit:
  """Utterances held in memory.

  Attributes:
    features: per utterance float32 [frames, F].
    texts: per utterance its transcript.
    labels: int32 [N, L] class ids (1..), 0-padded; label_lengths int32 [N].
  """
  features: list[np.ndarray]
  texts: list[str]
  labels: np.ndarray
  label_lengths: np.ndarray

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
  data_dir/fsdd/recordings that holds FSDD's; UserError saying where to put them when none does."""
  for folder in (data_dir, os.path.join(data_dir, "recordings"),
                 os.path.join(data_dir, "fsdd", "recordings")):
    paths = sorted(glob.glob(os.path.join(folder, "*.wav")))
    if any(fnmatch.fnmatch(os.path.basename(path), "[0-9]_*_*.wav") for path in paths):
      return paths
  raise UserError(f"no spoken digits in data_dir {data_dir!r}: put the Free Spoken Digit Dataset's "
                  "recordings/{digit}_{speaker}_{index}.wav files in "
                  f"{os.path.join(data_dir, 'fsdd', 'recordings')} (config field data_dir or "
                  "$MLFUN_DATA_DIR)")


def read_fsdd(data_dir: str, sample_rate: int) -> list[Recording]:
  """Every FSDD recording in data_dir, resampled to sample_rate, in file-name order."""
  recordings = []
  for path in fsdd_paths(data_dir):
    match = _FILE_NAME.match(os.path.basename(path))
    if match:
      recordings.append(Recording(audio.load_audio(path, sample_rate), int(match[1]), match[2],
                                  int(match[3])))
  return recordings


def read_tfds_spoken_digit(data_dir: str, sample_rate: int) -> list[Recording]:
  """TFDS `spoken_digit` (8 kHz) when already prepared in data_dir; never downloads."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
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
  """(train, test) recordings of the 'official' or 'speaker:<name>' split ('phone_numbers' uses
  the official takes)."""
  if split in ("official", "phone_numbers"):
    return ([r for r in recordings if r.take >= 5], [r for r in recordings if r.take < 5])
  if split.startswith("speaker:"):
    speaker = split.split(":", 1)[1]
    speakers = sorted({r.speaker for r in recordings})
    if speaker not in speakers:
      raise UserError(f"config field split={split!r}: no speaker {speaker!r}; the speakers are "
                      f"{', '.join(speakers)}")
    return ([r for r in recordings if r.speaker != speaker],
            [r for r in recordings if r.speaker == speaker])
  raise UserError(f"unknown config field split={split!r}; choose official, speaker:<name> or "
                  "phone_numbers")


def phone_numbers(recordings: Sequence[Recording], count: int, *, sample_rate: int, seed: int,
                  min_digits: int = 3, max_digits: int = 7, min_silence_s: float = 0.05,
                  max_silence_s: float = 0.3) -> list[tuple[np.ndarray, str]]:
  """`count` (waveform, transcript) pairs: min..max_digits random recordings of one random speaker
  joined by silences of min..max_silence_s seconds (also before and after), seeded."""
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
    pool = by_speaker[speakers[rng.integers(len(speakers))]]
    chosen = [pool[i] for i in rng.integers(len(pool), size=rng.integers(min_digits,
                                                                          max_digits + 1))]
    pieces = []
    for r in chosen:
      pieces += [silence(), r.wave]
    pieces.append(silence())
    out.append((np.concatenate(pieces), " ".join(DIGIT_WORDS[r.digit] for r in chosen)))
  return out


def speed_perturbed(wave: np.ndarray, speed: float, sample_rate: int) -> np.ndarray:
  """The waveform played `speed` times faster (pitch shifts with it), by resampling."""
  if speed == 1.0:
    return wave
  return audio.resample(wave, int(round(sample_rate * speed)), sample_rate)


def make_split(front_end: audio.FrontEnd, waves: Sequence[np.ndarray], texts: Sequence[str],
               label_length: int) -> SpeechSplit:
  """Features and padded labels of (waveform, transcript) pairs."""
  labels = np.zeros((len(texts), label_length), np.int32)
  label_lengths = np.zeros(len(texts), np.int32)
  for i, text in enumerate(texts):
    ids = ctc_decode.encode(text)
    if len(ids) > label_length:
      raise UserError(f"transcript {text!r} is longer than {label_length} characters")
    labels[i, :len(ids)] = ids
    label_lengths[i] = len(ids)
  return SpeechSplit(audio.features_of(front_end, list(waves)), list(texts), labels, label_lengths)


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


def _pairs(config, recordings: Sequence[Recording], sample_rate: int, *, train: bool
           ) -> list[tuple[np.ndarray, str]]:
  """(waveform, transcript) pairs of one side of the split (train: before speed perturbation).

  Phone numbers are seeded per side (train phone_numbers.seed, test seed + 1), so either side can
  be built alone.
  """
  if config.split != "phone_numbers":
    return [(r.wave, DIGIT_WORDS[r.digit]) for r in recordings]
  p = config.phone_numbers
  min_digits, max_digits = p.min_digits, p.max_digits
  if train:
    min_digits = p.get("train_min_digits") or min_digits
    max_digits = p.get("train_max_digits") or max_digits
  return phone_numbers(recordings, p.num_train if train else p.num_test, sample_rate=sample_rate,
                       seed=p.seed if train else p.seed + 1, min_digits=min_digits,
                       max_digits=max_digits, min_silence_s=p.min_silence_s,
                       max_silence_s=p.max_silence_s)


def _empty_split_error(config) -> UserError:
  return UserError(f"split {config.split!r} of {config.data_dir!r} leaves an empty train or test "
                   "set")


def load_speech_dataset(config) -> SpeechDataset:
  """The dataset, split and front end named by the config (see experiments/configs/
  speech_ctc_digits.py): fields dataset, data_dir, split, audio.*, phone_numbers.*, train_speeds."""
  front_end = audio.FrontEnd.from_config(config.audio)
  rate = front_end.sample_rate
  train, test = _split_recordings(config, rate)
  train_pairs = _pairs(config, train, rate, train=True)
  test_pairs = _pairs(config, test, rate, train=False)
  if not train_pairs or not test_pairs:
    raise _empty_split_error(config)
  speeds = tuple(config.get("train_speeds", (1.0,)))
  train_pairs = [(speed_perturbed(w, s, rate), t) for s in speeds for w, t in train_pairs]
  label_length = max(len(t) for _, t in train_pairs + test_pairs)
  return SpeechDataset(
      name=config.dataset,
      train=make_split(front_end, *zip(*train_pairs), label_length),
      test=make_split(front_end, *zip(*test_pairs), label_length),
      front_end=front_end,
      info={"split": config.split, "label_length": label_length, "data_dir": config.data_dir})


def load_test_split(config, limit: int = 0) -> SpeechSplit:
  """The test split of `load_speech_dataset(config)` (same utterances, transcripts and features)
  without building the training set; only its first `limit` utterances (0: all). Its labels are
  padded to its own longest transcript."""
  front_end = audio.FrontEnd.from_config(config.audio)
  _, test = _split_recordings(config, front_end.sample_rate)
  pairs = _pairs(config, test, front_end.sample_rate, train=False)
  if not pairs:
    raise _empty_split_error(config)
  if limit:
    pairs = pairs[:limit]
  return make_split(front_end, *zip(*pairs), max(len(t) for _, t in pairs))


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
