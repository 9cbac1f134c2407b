"""mlfun_jax.speech: speech recognition with CTC on spoken digits (the speech family).

Its public API: `Transcriber` (a trained recogniser restored from its workdir), `Ensemble`
(several decoded as one), `defaults` and `FIELDS_ADDED_LATER` (the family's config), `load_audio`
(a wav file as a float waveform in [-1, 1]), `greedy_decode`, `beam_search`, `WordListLM` and
`CharNgramLM` (CTC decoders over an alphabet) and `ALPHABET` (the default CTC characters).
"""

from mlfun_jax.speech.audio import load_audio
from mlfun_jax.speech.config import ALPHABET
from mlfun_jax.speech.config import FIELDS_ADDED_LATER
from mlfun_jax.speech.config import defaults
from mlfun_jax.speech.ctc_decode import CharNgramLM
from mlfun_jax.speech.ctc_decode import WordListLM
from mlfun_jax.speech.ctc_decode import beam_search
from mlfun_jax.speech.ctc_decode import greedy_decode
from mlfun_jax.speech.ensemble import Ensemble
from mlfun_jax.speech.inference import Transcriber

__all__ = [
    "ALPHABET", "CharNgramLM", "Ensemble", "FIELDS_ADDED_LATER", "Transcriber", "WordListLM",
    "beam_search", "defaults", "greedy_decode", "load_audio"
]
