"""mlfun_jax: pure functional JAX/Flax experiments for the "Machine Learning is Fun!" series.

Importing the package has no side effects: no flag parsing, no device allocation, no TensorFlow.
Import the parts you need, e.g. `from mlfun_jax.classification import Classifier` or
`from mlfun_jax.models import cnn`. The layout (docs/architecture.md):

  core/            the generic loop, checkpoints, parallel plumbing, loop and optimizer configs
  data/, models/   datasets, batching, augmentation and networks that several families share
  <family>/        classification, adversarial, autoencoder, gan, char_rnn, speech, translation,
                   faces: each with its config defaults, task, model, data and inference API
  families.py      family name -> package, for the entry points
"""

__version__ = "0.1.0"

__all__ = [
    "adversarial", "autoencoder", "char_rnn", "classification", "core", "data", "faces",
    "families", "gan", "models", "speech", "translation",
]
