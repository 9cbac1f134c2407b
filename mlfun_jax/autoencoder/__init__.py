"""mlfun_jax.autoencoder: dense and conv autoencoders, VAEs, denoising and anomaly detection.

The public API:

  TrainedAutoencoder  a trained autoencoder or VAE restored from a workdir (encode, decode).
  defaults            the family's config defaults; FIELDS_ADDED_LATER for old saved configs.
  Autoencoder, VariationalAutoencoder  the flax modules.
  encode_images, decode_codes, reconstructions  images <-> codes with given parameters.
"""

from mlfun_jax.autoencoder.config import FIELDS_ADDED_LATER
from mlfun_jax.autoencoder.config import defaults
from mlfun_jax.autoencoder.inference import TrainedAutoencoder
from mlfun_jax.autoencoder.model import Autoencoder
from mlfun_jax.autoencoder.model import VariationalAutoencoder
from mlfun_jax.autoencoder.pictures import decode_codes
from mlfun_jax.autoencoder.pictures import encode_images
from mlfun_jax.autoencoder.pictures import reconstructions

__all__ = [
    "TrainedAutoencoder", "defaults", "FIELDS_ADDED_LATER", "Autoencoder",
    "VariationalAutoencoder", "encode_images", "decode_codes", "reconstructions"
]
