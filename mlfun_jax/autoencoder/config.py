"""Config defaults of the autoencoder family (autoencoders, conv autoencoders, VAEs, denoising).

Experiment config files (experiments/configs/autoencoder_mnist.py, conv_autoencoder_mnist.py,
vae_mnist.py) start from `defaults()` and set only what differs.
"""

import ml_collections

from mlfun_jax.core import config as core_config
from mlfun_jax.core import config_checks as cc
from mlfun_jax.data import config as data_config

# Every field of defaults() existed since the family's first config: only the loop's and the
# optimizer's later fields can be missing from a saved run's config.
FIELDS_ADDED_LATER = {**core_config.FIELDS_ADDED_LATER}

# Start-up checks of every field (core.config_checks): ranges, types, finite numbers.
FIELD_RULES = {
    **cc.LOOP_RULES,
    **data_config.IMAGE_DATA_RULES,
    "model.name": cc.Text(("autoencoder", "vae")),
    "model.architecture": cc.Text(("dense", "conv")),
    "model.widths": cc.Ints(1),
    "model.bottleneck": cc.Integer(1),
    "model.latent": cc.Integer(1),
    "likelihood": cc.Text(("bernoulli", "gaussian")),
    "gaussian_scale": cc.Positive(),
    "binarize": cc.Text(("none", "dynamic")),
    "noise": cc.Text(("none", "gaussian", "masking", "salt_and_pepper")),
    "noise_level": cc.NonNegative(),
    "exclude_class": cc.Integer(-1),
}


def defaults() -> ml_collections.ConfigDict:
  """Every field the autoencoder family reads: the 2-unit dense autoencoder on embedded MNIST."""
  config = core_config.loop_defaults("autoencoder")
  # Data, as for the classifiers: labels only colour the pictures.
  data_config.add_image_data_fields(config, dataset="embedded_mnist", channels=1)

  config.model = ml_collections.ConfigDict()
  config.model.name = "autoencoder"  # Or 'vae'.
  config.model.architecture = "dense"  # Or 'conv': widths are then channels of stride-2 convs.
  config.model.widths = (512, 256)  # Hidden widths (dense) or channels (conv), encoder order.
  config.model.bottleneck = 2  # Units of the code (autoencoder).
  config.model.latent = 20  # Units of the latent code (vae).

  # p(x | code): 'bernoulli' (cross-entropy on grey levels in [0, 1]) or 'gaussian' (squared error).
  config.likelihood = "bernoulli"
  config.gaussian_scale = 0.1  # Fixed standard deviation of the 'gaussian' likelihood.
  # 'dynamic': train on binary digits drawn afresh each step (test digits binarized once, seeded).
  config.binarize = "none"
  # Denoising: corrupt the input ('gaussian', 'masking', 'salt_and_pepper'), reconstruct the clean.
  config.noise = "none"
  config.noise_level = 0.0  # Strength of the corruption (std, or the fraction of pixels hit).
  # >= 0: leave this class out of training and report the anomaly AUC of reconstruction errors.
  config.exclude_class = -1

  config.optimizer.name = "adam"  # Adam 1e-3, constant: every autoencoder config.
  config.num_epochs = 50.0  # Passes over the training data.
  config.eval_every = 500  # Also writes samples/reconstructions_step_*.png.
  config.checkpoint_every = 1000  # Steps between checkpoints.
  return config
