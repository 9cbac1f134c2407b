"""Several trained speech recognisers decoded as one: per frame, the mean of their output
distributions (seeds of one recipe disagree most on voices never heard, so averaging them steadies
the result).

Members must share the sample rate and the output frame rate (front-end hop times convolution
strides) so that their output frames line up; each computes, normalises and adapts its own
features, so their front ends may otherwise differ.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np
import scipy.special

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.speech import audio
from mlfun_jax.speech import data as speech_data
from mlfun_jax.speech.inference import Transcriber


def combine_log_probs(member_logits: Sequence[np.ndarray]) -> np.ndarray:
  """float32 [T', K] log of the mean of the members' per-frame output distributions, from each
  member's float logits [T', K] of one utterance (one member: its log-softmax). Decoders take it
  in place of logits."""
  for i, logits in enumerate(member_logits):
    checks.check_floats(logits, name=f"member_logits[{i}]", rank=2,
                        shape="[T', K] (one utterance)")
  shapes = {np.shape(x) for x in member_logits}
  if len(shapes) != 1:
    raise ValueError(f"members' logits differ in shape: {sorted(shapes)}")
  log_probs = scipy.special.log_softmax(np.stack(member_logits).astype(np.float64), axis=-1)
  mean = scipy.special.logsumexp(log_probs, axis=0) - math.log(len(member_logits))
  return mean.astype(np.float32)


def _output_frame_ms(member: Transcriber) -> float:
  return member.front_end.hop_ms * math.prod(member.config.model.conv_strides[
      :len(member.config.model.conv_features)])


def check_frames_line_up(workdirs: Sequence[str], members: Sequence[Transcriber]) -> None:
  """Raises UserError naming the first member whose sample rate or output frame rate differs from
  the first member's."""
  first = members[0]
  for workdir, member in zip(workdirs[1:], members[1:]):
    if (member.front_end.sample_rate, _output_frame_ms(member)) != (
        first.front_end.sample_rate, _output_frame_ms(first)):
      raise UserError(
          f"recogniser {workdir!r} ({member.front_end.sample_rate} Hz, an output frame every "
          f"{_output_frame_ms(member):g} ms) cannot join {workdirs[0]!r} "
          f"({first.front_end.sample_rate} Hz, {_output_frame_ms(first):g} ms): an ensemble's "
          "members need the same sample rate and output frame rate")


def check_same_alphabet(workdirs: Sequence[str], members: Sequence[Transcriber]) -> None:
  """Raises UserError naming the first member whose CTC alphabet differs from the first member's
  (their output classes would not line up)."""
  for workdir, member in zip(workdirs[1:], members[1:]):
    if member.alphabet != members[0].alphabet:
      raise UserError(f"recogniser {workdir!r} (alphabet {member.alphabet!r}) cannot join "
                      f"{workdirs[0]!r} (alphabet {members[0].alphabet!r}): an ensemble's members "
                      "need the same alphabet")


def check_same_test_split(workdirs: Sequence[str], members: Sequence[Transcriber],
                          splits: Sequence[speech_data.SpeechSplit]) -> None:
  """Raises UserError naming the first member whose test utterances (transcripts and speakers)
  differ from the first member's."""
  for workdir, member, split in zip(workdirs[1:], members[1:], splits[1:]):
    if (split.texts, split.speakers) != (splits[0].texts, splits[0].speakers):
      raise UserError(f"recogniser {workdir!r} (split {member.config.split!r}) has other test "
                      f"utterances than {workdirs[0]!r} (split {members[0].config.split!r}): an "
                      "ensemble's members need the same test split")


class Ensemble:
  """Recognisers restored from workdirs (see `inference.Transcriber`), decoded together."""

  def __init__(self, workdirs: Sequence[str]):
    if not workdirs:
      raise UserError("an ensemble needs at least one workdir")
    self.workdirs = list(workdirs)
    self.members = [Transcriber(workdir) for workdir in self.workdirs]
    check_frames_line_up(self.workdirs, self.members)
    check_same_alphabet(self.workdirs, self.members)

  @property
  def config(self):
    """The first member's config."""
    return self.members[0].config

  @property
  def sample_rate(self) -> int:
    """Hz of the waveforms the members take."""
    return self.members[0].front_end.sample_rate

  @property
  def alphabet(self) -> str:
    """The members' CTC characters: decode the ensemble's log-probabilities with it."""
    return self.members[0].alphabet

  def test_splits(self, limit: int = 0) -> list[speech_data.SpeechSplit]:
    """Per member the test split its config names (`speech_data.load_test_split`), each with that
    member's features; refuses members whose test utterances differ (another held-out speaker,
    other phone numbers)."""
    loaded = {}  # Members that read the same test split (seeds of one recipe) share one load.
    for member in self.members:
      key = speech_data.test_split_key(member.config)
      if key not in loaded:
        loaded[key] = speech_data.load_test_split(member.config, limit=limit)
    splits = [loaded[speech_data.test_split_key(member.config)] for member in self.members]
    check_same_test_split(self.workdirs, self.members, splits)
    return splits

  def features(self, waves: Sequence[np.ndarray], one_speaker: bool = False
               ) -> list[list[np.ndarray]]:
    """Per member, per waveform its features [frames, F] (`inference.Transcriber.features`) of a
    list of float waveforms [S_i] in [-1, 1] at `sample_rate`."""
    waves = audio.check_waves(waves)
    return [member.features(waves, one_speaker) for member in self.members]

  def adapt(self, features: Sequence[Sequence[np.ndarray]], speakers: Sequence[str],
            **adapt_kwargs) -> list[list[np.ndarray]]:
    """Each member's features adapted to each speaker for that member's network
    (`inference.Transcriber.adapt`)."""
    return [member.adapt(member_features, speakers, **adapt_kwargs)
            for member, member_features in zip(self.members, features)]

  def log_probs(self, features: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Per utterance the ensemble's per-frame log-probabilities float32 [T', K]
    (`combine_log_probs`), from each member's features of it (as `features` returns them)."""
    if len(features) != len(self.members):
      raise ValueError(f"features of {len(features)} members for {len(self.members)} members")
    return [combine_log_probs([member.logits(f) for member, f in zip(self.members, utterance)])
            for utterance in zip(*features)]
