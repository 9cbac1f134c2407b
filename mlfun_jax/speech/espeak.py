"""The eSpeak NG formant synthesiser through ctypes: text + voice -> 16-bit samples.

The library ships in the `espeakng-loader` wheel (`pip install -e '.[speech]'`; eSpeak NG is
GPL-3.0). It keeps state in C from one utterance to the next (its pitch flutter), so the same call
gives slightly different samples depending on what was said before; `say_in_fresh_process` makes a
list of utterances reproducible by saying them, in order, in a new process with a seeded generator.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import dataclasses
import functools
import multiprocessing
import os
import re
from collections.abc import Sequence

import numpy as np

from mlfun_jax.core import extras
from mlfun_jax.core.errors import UserError

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_PHONEME_INPUT = 0x100  # espeakPHONEMES: text in [[...]] is eSpeak phoneme mnemonics.
_RATE, _PITCH, _RANGE = 1, 3, 4  # espeak_PARAMETER values.
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.c_void_p)


@dataclasses.dataclass(frozen=True)
class Voice:
  """One synthetic speaker: an eSpeak NG language voice (e.g. 'en-gb-scotland'), a voice variant
  (e.g. 'f2', 'klatt', 'croak'), and prosody: words per minute, pitch and pitch range (eSpeak's
  0-100 scales)."""
  dialect: str
  variant: str
  words_per_minute: int
  pitch: int
  pitch_range: int
  # An accent: (regular expression, replacement) rewrites of the dialect's phoneme mnemonics,
  # applied in order to every word (e.g. ("I", "i") says "six" as "seess").
  rewrites: tuple[tuple[str, str], ...] = ()

  @property
  def name(self) -> str:
    return f"{self.dialect}+{self.variant}"


class Synthesiser:
  """The eSpeak NG library, initialised once per process (its state is global in C)."""

  def __init__(self):
    espeakng_loader = extras.require("espeakng_loader",
                                     "the eSpeak NG synthesiser of synthetic voices")
    self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
    self._data_path = espeakng_loader.get_data_path()
    self.sample_rate = self._lib.espeak_Initialize(
        _AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data_path.encode(), 0)
    if self.sample_rate <= 0:
      raise UserError(f"eSpeak NG failed to start (espeak_Initialize returned {self.sample_rate})")
    self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    # The voice variants the data ships (an unknown one would silently fall back to the default).
    self._variants = frozenset(os.listdir(os.path.join(self._data_path, "voices", "!v")))
    self._chunks: list[np.ndarray] = []
    self._callback = _CALLBACK(self._collect)  # Kept alive as long as the library may call it.
    self._lib.espeak_SetSynthCallback(self._callback)

  def _collect(self, wav, count, events) -> int:  # pylint: disable=unused-argument
    if count > 0:
      self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
    return 0

  def seed(self, seed: int) -> None:
    """Seeds the library's random generator (breathy and Klatt voices draw noise from it)."""
    self._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))

  def _set_voice(self, voice: Voice) -> None:
    if (voice.variant not in self._variants
        or self._lib.espeak_SetVoiceByName(voice.name.encode()) != 0):
      raise UserError(f"eSpeak NG has no voice {voice.name!r}")

  def phonemes(self, text: str, voice: Voice) -> str:
    """eSpeak's phoneme mnemonics for `text` in the voice's dialect (e.g. "s'Iks" for "six" in
    en-us), before the voice's rewrites."""
    self._set_voice(voice)
    pointer = ctypes.c_char_p(text.encode())
    result = self._lib.espeak_TextToPhonemes(
        ctypes.cast(ctypes.pointer(pointer), ctypes.POINTER(ctypes.c_void_p)), 1, 0)
    return (result or b"").decode().strip()

  def say(self, text: str, voice: Voice) -> np.ndarray:
    """int16 [S] samples at `self.sample_rate` Hz of `voice` saying `text` (with its accent's
    rewrites of the phonemes, if any).

    Raises:
      UserError: the library has no such voice, or fails.
    """
    flags = 0
    if voice.rewrites:
      spoken = self.phonemes(text, voice)
      for pattern, replacement in voice.rewrites:
        spoken = re.sub(pattern, replacement, spoken)
      text, flags = f"[[{spoken}]]", _PHONEME_INPUT
    self._set_voice(voice)
    self._lib.espeak_SetParameter(_RATE, voice.words_per_minute, 0)
    self._lib.espeak_SetParameter(_PITCH, voice.pitch, 0)
    self._lib.espeak_SetParameter(_RANGE, voice.pitch_range, 0)
    self._chunks.clear()
    data = text.encode()
    if self._lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, flags, None, None) != 0:
      raise UserError(f"eSpeak NG could not say {text!r} with voice {voice.name!r}")
    self._lib.espeak_Synchronize()
    return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


@functools.cache
def synthesiser() -> Synthesiser:
  """This process's one Synthesiser."""
  return Synthesiser()


def say_all(jobs: Sequence[tuple[str, Voice]], seed: int) -> tuple[list[np.ndarray], int]:
  """(int16 samples of each (text, voice) said in order, sample rate), in this process, after
  seeding the library's generator."""
  engine = synthesiser()
  engine.seed(seed)
  return [engine.say(text, voice) for text, voice in jobs], engine.sample_rate


def say_in_fresh_process(jobs: Sequence[tuple[str, Voice]], seed: int
                         ) -> tuple[list[np.ndarray], int]:
  """`say_all` in a newly spawned process: the same jobs and seed give the same samples."""
  context = multiprocessing.get_context("spawn")
  with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
    return pool.submit(say_all, list(jobs), seed).result()
