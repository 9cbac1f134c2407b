"""mlfun_jax.translation: a recurrent encoder-decoder with attention trained on sentence pairs
(training: `task.build`; translating: `Translator`, restored with `Translator.restore(workdir)`)."""

from mlfun_jax.translation.config import defaults
from mlfun_jax.translation.config import FIELDS_ADDED_LATER
from mlfun_jax.translation.inference import check_decode_settings
from mlfun_jax.translation.inference import Translator

__all__ = ["FIELDS_ADDED_LATER", "Translator", "check_decode_settings", "defaults"]
