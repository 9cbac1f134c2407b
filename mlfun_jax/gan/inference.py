"""A trained GAN restored from a workdir, for sampling (experiments/sample.py, research code)."""

import jax
import numpy as np

from mlfun_jax.core import checkpoint
from mlfun_jax.core.errors import UserError
from mlfun_jax.gan import config as gan_config
from mlfun_jax.gan import model as models
from mlfun_jax.gan import pictures as gan_pictures


class TrainedGAN:
  """A generator restored from a workdir's latest checkpoint (for sampling).

  Attributes:
    meta, step, config: the checkpoint's meta record, step and config (fields added later filled
      in).
    generator: the generator network; latent: its input (noise and categorical code).
    state: the GANState (numpy arrays); samples come from its averaged generator.
  """

  def __init__(self, workdir: str):
    run = checkpoint.restore_run(
        workdir, task="gan", noun="a GAN",
        make_state=lambda config, meta: models.create_state(
            *models.create_models(config, tuple(meta["image_shape"])), config, 1,
            jax.random.key(0)),
        fields_added_later=gan_config.FIELDS_ADDED_LATER)
    self.meta, self.step, self.config, self.state = run.meta, run.step, run.config, run.state
    self.generator, _ = models.create_models(self.config, tuple(self.meta["image_shape"]))
    self.latent = models.latent_of(self.config.model)

  def sample(self, num: int, seed: int = 0, code: int | None = None) -> np.ndarray:
    """float32 [num, H, W, C] in [-1, 1]: new samples, the same for the same seed; all with the
    categorical `code` (an int class) when given.

    Raises:
      UserError: `code` given for a GAN without a categorical code, or out of its range.
    """
    classes = self.latent.codes
    if code is not None and not 0 <= code < classes:
      raise UserError(f"code {code} is out of range: " + (
          f"this GAN's categorical code has {classes} classes (0..{classes - 1})" if classes
          else "this GAN has no categorical code"))
    return gan_pictures.samples(self.generator, self.latent, self.state, num, seed, code=code)
