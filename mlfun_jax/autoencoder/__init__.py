"""mlfun_jax.autoencoder: dense and conv autoencoders, VAEs, denoising and anomaly detection.

The public API, loaded on first use (importing the package imports no TensorFlow, parses no flags
and allocates no devices):

  TrainedAutoencoder  a trained autoencoder or VAE restored from a workdir (encode, decode).
  defaults            the family's config defaults; FIELDS_ADDED_LATER for old saved configs.
  Autoencoder, VariationalAutoencoder  the flax modules.
  encode_images, decode_codes, reconstructions  images <-> codes with given parameters.
"""

import importlib

__all__ = ["TrainedAutoencoder", "defaults", "FIELDS_ADDED_LATER", "Autoencoder",
           "VariationalAutoencoder", "encode_images", "decode_codes", "reconstructions"]

_HOMES = {"TrainedAutoencoder": "inference", "defaults": "config", "FIELDS_ADDED_LATER": "config",
          "Autoencoder": "model", "VariationalAutoencoder": "model", "encode_images": "pictures",
          "decode_codes": "pictures", "reconstructions": "pictures"}


def __getattr__(name: str):
  if name in _HOMES:
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + __all__)
