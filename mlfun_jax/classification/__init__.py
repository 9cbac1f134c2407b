"""mlfun_jax.classification: image classifiers (the series' CNN, a small ResNet; softmax or a
sigmoid one-vs-rest head; optional adversarial training).

Public API: `Classifier` (a trained run restored from its workdir), `defaults()` and
`FIELDS_ADDED_LATER` (the family's config fields), `create_model` / `create_state` (the network and
its train state) and the logits of images (`inference_logits`, `unit_range_logits`,
`features_and_logits`). The Task (`task.build`) is reached through `mlfun_jax.families`.
"""

from mlfun_jax.classification.config import defaults
from mlfun_jax.classification.config import FIELDS_ADDED_LATER
from mlfun_jax.classification.inference import Classifier
from mlfun_jax.classification.model import create_model
from mlfun_jax.classification.model import create_state
from mlfun_jax.classification.model import features_and_logits
from mlfun_jax.classification.model import inference_logits
from mlfun_jax.classification.model import TrainState
from mlfun_jax.classification.model import unit_range_logits

__all__ = [
    "Classifier", "defaults", "FIELDS_ADDED_LATER", "create_model", "create_state",
    "features_and_logits", "inference_logits", "TrainState", "unit_range_logits",
]
