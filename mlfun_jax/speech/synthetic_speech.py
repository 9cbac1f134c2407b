"""Synthetic training voices: words said by the eSpeak NG formant synthesiser (`mlfun_jax.speech.espeak`).

A recogniser trained on four real voices hears a fifth one badly; more voices are the remedy, and a
synthesiser makes them offline: each synthetic voice is an English dialect (American, British RP,
Scottish, Caribbean, ...), a voice variant (male and female formant sets, Klatt, croaky, ...), a
speaking rate, a pitch and a pitch range, all drawn from a seeded generator, and optionally a
second-language accent (rewrites of the dialect's phonemes); it says every word a few times with
small jitters of rate and pitch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.speech import audio
from mlfun_jax.speech import espeak

DIALECTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
            "en-029", "en-us-nyc")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5", "klatt",
            "klatt2", "klatt3", "klatt4", "croak", "Andy", "Annie", "Denis", "Gene", "Lee", "Mario",
            "Michael", "Mr serious", "Storm", "aunty", "belinda", "benjamin", "edward", "grandpa",
            "ian", "john", "linda", "max", "norbert", "paul", "quincy", "rob", "robert", "steph",
            "travis", "victor", "zac")

# Common traits of English spoken as a second language, as rewrites of eSpeak's phoneme mnemonics:
# (what, pattern, the replacements one accent may pick from).
ACCENT_TRAITS = (
    ("short i said long ('sit' as 'seat')", r"(?<![aeoO0@])I", ("i",)),
    ("short u said long", r"(?<![aoO0@])U", ("u:",)),
    ("ay without its glide ('eight' as 'et')", r"eI", ("e", "e:")),
    ("oh without its glide", r"oU", ("o", "o:")),
    ("'th' as t, s or f", r"T", ("t", "s", "f")),
    ("voiced 'th' as d or z", r"D", ("d", "z")),
    ("'u' of 'one' as an open a", r"[V0]", ("a",)),
    ("final 'ks' simplified", r"ks$", ("s", "k")),
    ("final v devoiced", r"v$", ("f",)),
    ("schwa said as spelled ('seven' as 'sev-EN')", r"@n$", ("En",)),
    ("'ear' vowel monophthong ('zero' as 'zee-ro')", r"i@", ("i", "e")),
    ("tapped r", r"r", ("*",)),
)


def draw_accent(rng: np.random.Generator, trait_probability: float
                ) -> tuple[tuple[str, str], ...]:
  """Rewrites of one accent: each of ACCENT_TRAITS with probability trait_probability, with one of
  its replacements."""
  rewrites = []
  for _, pattern, replacements in ACCENT_TRAITS:
    use, pick = rng.random() < trait_probability, rng.integers(len(replacements))
    if use:
      rewrites.append((pattern, replacements[pick]))
  return tuple(rewrites)


def draw_voices(count: int, seed: int, dialects: Sequence[str] = DIALECTS,
                variants: Sequence[str] = VARIANTS, accented: float = 0.0,
                trait_probability: float = 0.5) -> list[espeak.Voice]:
  """`count` voices with dialect, variant, rate (120-220 words a minute), pitch (15-85) and pitch
  range (10-90) drawn uniformly from a generator seeded with `seed`; a share `accented` of them
  (drawn) speak with a second-language accent (`draw_accent`)."""
  rng = np.random.default_rng(seed)
  accent_rng = np.random.default_rng([seed, 1])  # Its own stream: the rest never depends on it.
  voices = []
  for _ in range(count):
    dialect, variant = dialects[rng.integers(len(dialects))], variants[rng.integers(len(variants))]
    words_per_minute = int(rng.integers(120, 221))
    pitch, pitch_range = int(rng.integers(15, 86)), int(rng.integers(10, 91))
    accent = draw_accent(accent_rng, trait_probability)
    voices.append(espeak.Voice(dialect, variant, words_per_minute, pitch, pitch_range,
                               accent if accent_rng.random() < accented else ()))
  return voices


def trim_silence(samples: np.ndarray, top_db: float = 40.0, frame: int = 64) -> np.ndarray:
  """float samples [S] (any scale) without the leading and trailing frames quieter than the loudest
  frame minus top_db (FSDD's recordings are trimmed like this; the synthesiser pads words with
  silence)."""
  checks.check_floats(samples, name="samples", rank=1, shape="[S] (one waveform)")
  count = len(samples) // frame
  if count == 0:
    return samples
  power = np.mean(np.square(samples[:count * frame].reshape(count, frame)), axis=1)
  loud = np.flatnonzero(power >= power.max() * 10.0 ** (-top_db / 10.0))
  return samples[loud[0] * frame:(loud[-1] + 1) * frame]


def synthetic_utterances(words: Sequence[str], voices: Sequence[espeak.Voice], *, takes: int,
                         sample_rate: int, seed: int) -> list[tuple[np.ndarray, str, str]]:
  """(float32 waveform at sample_rate, word, speaker name) for every voice, word and take, in that
  order; the same arguments give the same waveforms (synthesised in a fresh process).

  Each take jitters the voice's rate by up to +-15% and its pitch by up to +-5, is trimmed of
  silence and scaled to a peak drawn from 0.3-0.9 (all seeded). Speaker names are
  'tts<i>:<dialect>+<variant>'.
  """
  rng = np.random.default_rng(seed)
  jobs, names, peaks = [], [], []
  for i, voice in enumerate(voices):
    for word in words:
      for _ in range(takes):
        jobs.append((word, dataclasses.replace(
            voice, words_per_minute=int(voice.words_per_minute * rng.uniform(0.85, 1.15)),
            pitch=int(np.clip(voice.pitch + rng.integers(-5, 6), 0, 100)))))
        names.append(f"tts{i}:{voice.name}")
        peaks.append(rng.uniform(0.3, 0.9))
  said, rate = espeak.say_in_fresh_process(jobs, seed)
  out = []
  for samples, (word, _), name, peak in zip(said, jobs, names, peaks):
    wave = audio.resample(trim_silence(samples.astype(np.float32) / 32768.0), rate, sample_rate)
    wave = wave * (peak / max(float(np.abs(wave).max(initial=0.0)), 1e-6))
    out.append((wave.astype(np.float32), word, name))
  return out
