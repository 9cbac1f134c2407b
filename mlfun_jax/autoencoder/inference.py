"""A trained autoencoder or VAE restored from a workdir, for research code and experiments/*.py."""

import jax
import numpy as np

from mlfun_jax.autoencoder import config as autoencoder_config
from mlfun_jax.autoencoder import pictures as autoencoder_pictures
from mlfun_jax.autoencoder import task as autoencoder_task
from mlfun_jax.core import checkpoint


class TrainedAutoencoder:
  """An autoencoder or VAE restored from a workdir's latest checkpoint (research code, CLIs).

  Attributes:
    model: the flax module; params: its parameters (numpy); config, meta, step: of the checkpoint.
  """

  def __init__(self, workdir: str):
    image_shape = lambda meta: tuple(meta["image_shape"])
    run = checkpoint.restore_run(
        workdir, task="autoencoder", noun="an autoencoder",
        make_state=lambda config, meta: autoencoder_task.create_state(
            autoencoder_task.create_model(config, image_shape(meta)), config, 1,
            jax.random.key(0)),
        fields_added_later=autoencoder_config.FIELDS_ADDED_LATER)
    self.meta, self.step, self.config = run.meta, run.step, run.config
    self.model = autoencoder_task.create_model(self.config, image_shape(self.meta))
    self.params = run.state.params

  def encode(self, images: np.ndarray) -> np.ndarray:
    """uint8 [N, H, W, C] with values 0..255 (the run's image shape) -> codes float32
    [N, code size] (the VAE's posterior means).

    Raises:
      InputConventionError: images of another dtype, rank or shape.
    """
    return autoencoder_pictures.encode_images(self.model, self.params, images)

  def decode(self, codes: np.ndarray) -> np.ndarray:
    """codes float [N, code size] -> images float32 [N, H, W, C] in [0, 1].

    Raises:
      InputConventionError: codes that are not a float batch [N, code size].
    """
    return autoencoder_pictures.decode_codes(self.model, self.params, codes)
