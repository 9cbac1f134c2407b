"""Every config field of the GAN family, with its default, and the fields added later.

Experiment configs (experiments/configs/dcgan_mnist.py, dcgan_cifar10.py) start from `defaults()`
and set what differs.
"""

import ml_collections
from ml_collections import config_dict

from mlfun_jax.core import config as core_config
from mlfun_jax.core import config_checks as cc
from mlfun_jax.data import config as image_data

# Fields a config saved by an older run may lack, with the value that reproduces how it ran: the
# first DCGAN runs had plain networks (no dense layers, no discriminator BatchNorm), no moving
# average of the generator and no categorical code.
FIELDS_ADDED_LATER = {
    **core_config.FIELDS_ADDED_LATER,
    **image_data.INPUT_FIELDS_ADDED_LATER,
    "model.ema_decay": 0.0,
    "model.generator_dense": 0,
    "model.discriminator_dense": 0,
    "model.discriminator_norm": "none",
    "model.categorical_code": 0,
    "model.code_weight": 1.0,
}


def _adam() -> ml_collections.ConfigDict:
  """Adam(2e-4, b1=0.5), the DCGAN paper's optimizer (the fields of `core.optim`)."""
  optimizer = core_config.optimizer_defaults()
  optimizer.name = "adam"
  optimizer.learning_rate = 2e-4
  optimizer.b1 = 0.5
  return optimizer

# Start-up checks of every field (core.config_checks): ranges, types, finite numbers.
FIELD_RULES = {
    **cc.LOOP_RULES,
    **image_data.IMAGE_DATA_RULES,
    **image_data.INPUT_RULES,
    "model.latent": cc.Integer(1, cc.MAX_WIDTH),
    "model.generator_features": cc.Integer(1, cc.MAX_WIDTH),
    "model.discriminator_features": cc.Integer(1, cc.MAX_WIDTH),
    "model.upsampling": cc.Text(("subpixel", "transpose")),
    "model.generator_dense": cc.Integer(0),
    "model.discriminator_dense": cc.Integer(0),
    "model.discriminator_norm": cc.Text(("batch", "none")),
    "model.categorical_code": cc.Integer(0),
    "model.code_weight": cc.NonNegative(),
    "model.ema_decay": cc.Fraction(),
    "quality.classifier_workdir": cc.Text(optional=True),
    "samples.num": cc.Integer(1, 4096),
    "samples.pixel_art": cc.Boolean(),
    "samples.pixel_art_scale": cc.Integer(1, 32),
}


def defaults() -> ml_collections.ConfigDict:
  """The GAN config: InfoGAN's MNIST networks as a DCGAN on the embedded MNIST digits."""
  config = core_config.loop_defaults("gan")
  del config["optimizer"]  # Two optimizers instead, one per network.
  # Data, as for the classifiers; the test split is the real side of the metrics.
  image_data.add_image_data_fields(config, dataset="embedded_mnist", channels=1)
  image_data.add_input_fields(config)

  config.model = ml_collections.ConfigDict()
  config.model.latent = 100  # Standard normal noise numbers per sample.
  config.model.generator_features = 64  # Channels of the generator's last hidden layer.
  config.model.discriminator_features = 64  # Channels of the discriminator's first layer.
  # 'subpixel': a 3x3 convolution to 4x the channels, then depth-to-space (Shi et al. 2016), ~3x
  # faster under XLA on CPU; 'transpose': the paper's 4x4 stride-2 transposed convolutions.
  config.model.upsampling = "subpixel"
  config.model.generator_dense = 1024  # Hidden dense layer after the noise (0: none).
  config.model.discriminator_dense = 1024  # Hidden dense layer before the logit (0: none).
  config.model.discriminator_norm = "batch"  # 'batch' (BatchNorm) or 'none'.
  config.model.categorical_code = 0  # InfoGAN's one-hot code: classes (0: no code).
  config.model.code_weight = 1.0  # Weight of the code's cross entropy in both losses.
  config.model.ema_decay = 0.999  # Samples from a moving average of the generator (0: itself).

  config.generator_optimizer = _adam()
  config.discriminator_optimizer = _adam()

  config.quality = ml_collections.ConfigDict()
  # Workdir of a classifier trained with experiments/train.py on images of the same shape.
  config.quality.classifier_workdir = config_dict.placeholder(str)

  config.samples = ml_collections.ConfigDict()
  config.samples.num = 64  # Fixed-noise samples in each grid (samples/fixed_noise*.png).
  config.samples.pixel_art = False  # Also write the grid in the NES palette, upsized.
  config.samples.pixel_art_scale = 4  # Upsizing factor of the pixel-art grid.

  config.num_epochs = 30.0
  config.eval_every = 1000  # Also writes samples/fixed_noise_step_*.png.
  config.checkpoint_every = 1000
  return config
