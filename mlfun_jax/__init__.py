"""mlfun_jax: pure functional JAX/Flax experiments for the "Machine Learning is Fun!" series.

Importing the package has no side effects: no flag parsing, no device allocation, no TensorFlow.
Import the submodules you need, e.g. `from mlfun_jax.models import cnn`.
"""

__version__ = "0.1.0"
