"""A DCGAN that draws digits: noise(100) -> dense 1024 -> 7x7x128 -> 14x14x64 -> 28x28x1 (sub-pixel
or transposed-convolution upsampling, BatchNorm, ReLU, tanh) against a discriminator of strided
convolutions with LeakyReLU and BatchNorm, then dense 1024 -> logit (InfoGAN's MNIST networks).

Measured (2-core CPU, 2 devices, README): 10 epochs (48.7 min) Inception Score 8.70, Frechet
distance 574.2 -> 11.65; 20 epochs (+44.8 min) IS 8.93 on 10,000 samples, FD 6.84; 30 epochs, the
default (+41.1 min, 2 h 15 min in all) IS 9.09 on 10,000 samples (9.04 at the last eval), FD 4.87,
10 of 10 digits among 1,000 samples.

  # A classifier to judge the samples (its features: Frechet distance; its softmax: Inception Score)
  python -m experiments.train --config=experiments/configs/cnn_mnist.py --workdir=workdirs/mnist_full \
      --config.dataset=mnist --config.data_dir=../shared/data/mnist --config.num_epochs=15
  python -m experiments.train --config=experiments/configs/dcgan_mnist.py --workdir=workdirs/dcgan_mnist \
      --config.dataset=mnist --config.data_dir=../shared/data/mnist \
      --config.quality.classifier_workdir=workdirs/mnist_full
  python -m experiments.sample --workdir=workdirs/dcgan_mnist --num=64 --out=digits.png
Without --config.quality.classifier_workdir the GAN trains and draws, with no quality metrics.
"""

import ml_collections
from ml_collections import config_dict

from mlfun_jax.data import config as image_data


def _adam() -> ml_collections.ConfigDict:
  """Adam(2e-4, b1=0.5), the DCGAN paper's optimizer."""
  return ml_collections.ConfigDict({
      "name": "adam", "learning_rate": 2e-4, "schedule": "constant", "warmup_steps": 0,
      "momentum": 0.9, "b1": 0.5, "b2": 0.999, "weight_decay": 0.0, "grad_clip_norm": 0.0})


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "gan"
  config.seed = 0

  # Data, as for the classifiers (see cnn_mnist.py); the test split is the real side of the metrics.
  image_data.add_image_data_fields(config, dataset="embedded_mnist", channels=1)

  config.model = ml_collections.ConfigDict()
  config.model.latent = 100
  config.model.generator_features = 64  # Channels of the generator's last hidden layer.
  config.model.discriminator_features = 64  # Channels of the discriminator's first layer.
  # 'subpixel': a 3x3 convolution to 4x the channels, then depth-to-space, which is a stride-2
  # transposed convolution with a 6x6 kernel in another parameterisation (Shi et al. 2016), ~3x
  # faster under XLA on CPU; 'transpose': the paper's 4x4 stride-2 transposed convolutions.
  config.model.upsampling = "subpixel"
  # InfoGAN's MNIST networks (Chen et al. 2016): hidden dense layers of 1024 units after the noise
  # and before the logit, BatchNorm in the discriminator. Without them (0, 0, 'none') the
  # Inception Score stayed near 6-7 (see the README).
  config.model.generator_dense = 1024
  config.model.discriminator_dense = 1024
  config.model.discriminator_norm = "batch"  # Or 'none'.
  # InfoGAN's categorical code (Chen et al. 2016): the generator also takes a one-hot code of this
  # many classes and a Q head on the discriminator's hidden layer must name it from the image
  # (cross entropy, weighted by code_weight, in both losses); 0: no code.
  config.model.categorical_code = 0
  config.model.code_weight = 1.0
  # Samples come from a moving average of the generator's weights (0: the generator itself).
  config.model.ema_decay = 0.999

  config.generator_optimizer = _adam()
  config.discriminator_optimizer = _adam()

  config.quality = ml_collections.ConfigDict()
  # Workdir of a classifier trained with experiments/train.py on images of the same shape.
  config.quality.classifier_workdir = config_dict.placeholder(str)

  config.samples = ml_collections.ConfigDict()
  config.samples.num = 64  # Fixed-noise samples in each grid (samples/fixed_noise*.png).
  config.samples.pixel_art = False  # Also write the grid in the NES palette, upsized.
  config.samples.pixel_art_scale = 4

  config.batch_size = 128
  config.num_epochs = 30.0  # IS 8.70 after 10 epochs, 8.93 after 20, 9.09 after 30 (README).
  config.num_steps = config_dict.placeholder(int)

  config.log_every = 50
  config.eval_every = 1000  # Also writes samples/fixed_noise_step_*.png.
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.max_inflight_steps = 4
  return config
