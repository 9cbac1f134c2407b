"""A trained speech recogniser restored from its workdir, for research code and the entry points.

  transcriber = Transcriber("workdirs/speech_ctc_digits")
  transcriber.transcribe([audio.load_audio("one.wav", transcriber.front_end.sample_rate)])

Waveforms are float [S] in [-1, 1] (full scale, as `audio.read_wav` gives them) at the run's
sample rate (`front_end.sample_rate`, config audio.sample_rate); int16 PCM, a single waveform where
a list is expected, or values far outside [-1, 1] are refused with one line.
"""

from collections.abc import Sequence

import jax
import numpy as np

from mlfun_jax.core import checkpoint
from mlfun_jax.core import checks
from mlfun_jax.speech import audio
from mlfun_jax.speech import config as speech_config
from mlfun_jax.speech import ctc_decode
from mlfun_jax.speech import data as speech_data
from mlfun_jax.speech import speaker_adaptation
from mlfun_jax.speech import task as speech_task


class Transcriber:
  """A trained recogniser restored from a workdir: waveforms -> features -> logits -> text.

  Attributes:
    meta, step, config: the newest checkpoint's meta record, step and config.
    front_end: the run's `audio.FrontEnd` (its sample_rate is the one waveforms must have).
    alphabet: the run's CTC characters (config field `alphabet`).
    model, state: the network and its restored train state (numpy).
  """

  def __init__(self, workdir: str):
    run = checkpoint.restore_run(
        workdir, task="speech", noun="a speech recogniser",
        make_state=lambda config, meta: speech_task.create_state(
            speech_task.create_model(config), config,
            audio.FrontEnd.from_config(config.audio).num_features, 1, jax.random.key(0)),
        fields_added_later=speech_config.FIELDS_ADDED_LATER)
    self.meta, self.step, self.config, self.state = run.meta, run.step, run.config, run.state
    self.front_end = audio.FrontEnd.from_config(self.config.audio)
    self.alphabet = ctc_decode.check_alphabet(self.config.alphabet)
    self.model = speech_task.create_model(self.config)
    self._logits = speech_task.logits_fn(self.model)

  def features(self, waves: Sequence[np.ndarray], one_speaker: bool = False
               ) -> list[np.ndarray]:
    """Per waveform its features float32 [frames, F].

    Args:
      waves: a list of float waveforms [S_i] in [-1, 1] at `front_end.sample_rate`.
      one_speaker: for a recogniser trained with audio.normalize_over='speaker', True
        standardises the waveforms together as one speaker's (as in training); otherwise each
        alone.
    """
    waves = audio.check_waves(waves)
    speakers = ["one"] * len(waves) if one_speaker else [str(i) for i in range(len(waves))]
    return speech_data.speech_features(self.front_end, waves, speakers,
                                       self.config.audio.normalize_over)

  def check_features(self, features, *, name: str = "features") -> None:
    """InputError unless `features` is one utterance's float [T, F] with this front end's F."""
    checks.check_floats(features, name=name, rank=2, shape="[T, F] (one utterance)")
    if np.shape(features)[1] != self.front_end.num_features:
      raise checks.InputError(f"{name} has {np.shape(features)[1]} features per frame; this "
                         f"recogniser takes {self.front_end.num_features} (see `features`)")

  def adapt(self, features: Sequence[np.ndarray], speakers: Sequence[str],
            cross_fitted: bool = False, **fit_kwargs) -> list[np.ndarray]:
    """The features after unsupervised per-speaker adaptation (`speaker_adaptation`: a
    per-feature scale and shift fitted to make this network confident on each speaker).

    Args:
      features: per utterance float [T_i, F] (as `features` returns them).
      speakers: per utterance its speaker.
    """
    features = speaker_adaptation.check_features(features)
    for i, f in enumerate(features):
      self.check_features(f, name=f"features[{i}]")
    return speaker_adaptation.adapt_by_speaker(
        self._logits, self.state.params, features, speakers, cross_fitted=cross_fitted,
        **fit_kwargs)

  def logits(self, features: np.ndarray) -> np.ndarray:
    """float32 [T', K] per-frame logits of one utterance's features float [T, F]."""
    self.check_features(features)
    padded, lengths = speaker_adaptation.pad_features([features])
    logits, lengths = self._logits(self.state.params, padded, lengths)
    return np.asarray(logits[0, :int(lengths[0])])

  def decode(self, logits: np.ndarray, beam_width: int = 1, lm=None, lm_weight: float = 0.5
             ) -> str:
    """Transcript of one utterance's float logits (or log-probabilities) [T', K]: greedy
    (beam_width 1 without an LM) or prefix beam search, over this run's alphabet."""
    if beam_width == 1 and lm is None:
      return ctc_decode.greedy_decode(logits, alphabet=self.alphabet)
    return ctc_decode.beam_search(logits, beam_width, lm=lm, lm_weight=lm_weight,
                                  alphabet=self.alphabet)

  def transcribe(self, waves: Sequence[np.ndarray], beam_width: int = 1, lm=None,
                 lm_weight: float = 0.5, one_speaker: bool = False) -> list[str]:
    """Transcripts of a list of float waveforms [S_i] in [-1, 1] at `front_end.sample_rate`
    (see `decode` and `features`)."""
    return [self.decode(self.logits(features), beam_width, lm, lm_weight)
            for features in self.features(waves, one_speaker)]
