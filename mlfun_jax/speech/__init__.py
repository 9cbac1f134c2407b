"""mlfun_jax.speech: speech recognition with CTC on spoken digits (the speech family).

Its public API, loaded on first use (importing the package loads nothing else: no TensorFlow, no
flags, no devices): `Transcriber` (a trained recogniser restored from its workdir), `Ensemble`
(several decoded as one), `defaults` and `FIELDS_ADDED_LATER` (the family's config), `load_audio`
(a wav file as a float waveform in [-1, 1]), `greedy_decode`, `beam_search`, `WordListLM` and
`CharNgramLM` (CTC decoders over an alphabet) and `ALPHABET` (the default CTC characters).
"""

import importlib

_EXPORTS = {
    "Transcriber": "mlfun_jax.speech.inference",
    "Ensemble": "mlfun_jax.speech.ensemble",
    "defaults": "mlfun_jax.speech.config",
    "FIELDS_ADDED_LATER": "mlfun_jax.speech.config",
    "ALPHABET": "mlfun_jax.speech.config",
    "load_audio": "mlfun_jax.speech.audio",
    "greedy_decode": "mlfun_jax.speech.ctc_decode",
    "beam_search": "mlfun_jax.speech.ctc_decode",
    "WordListLM": "mlfun_jax.speech.ctc_decode",
    "CharNgramLM": "mlfun_jax.speech.ctc_decode",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
  if name not in _EXPORTS:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
  return sorted(list(globals()) + __all__)
