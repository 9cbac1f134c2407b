"""A DCGAN that draws digits: noise(100) -> dense 1024 -> 7x7x128 -> 14x14x64 -> 28x28x1 (sub-pixel
or transposed-convolution upsampling, BatchNorm, ReLU, tanh) against a discriminator of strided
convolutions with LeakyReLU and BatchNorm, then dense 1024 -> logit (InfoGAN's MNIST networks).

Measured on the 2-core CPU (2 devices, docs/gan.md), full MNIST judged by workdirs/mnist_full: the
default 30 epochs reach Inception Score 9.09 on 10,000 samples (9.04 at the last eval), Frechet
distance (FID-style) 574.2 at initialisation -> 4.87, 10 of 10 digits among 1,000 samples, in
2 h 15 min wall in all (48.7 + 44.8 + 41.1 min; 10 epochs: IS 8.70, FID-style 11.65; 20 epochs:
IS 8.93 on 10,000 samples, FID-style 6.84).

  # A classifier to judge the samples (its features: Frechet distance; its softmax: Inception Score)
  mlfun-train --config=cnn_mnist --workdir=workdirs/mnist_full \
      --config.dataset=mnist --config.num_epochs=15
  mlfun-train --config=dcgan_mnist --workdir=workdirs/dcgan_mnist \
      --config.dataset=mnist \
      --config.quality.classifier_workdir=workdirs/mnist_full
  mlfun-sample --workdir=workdirs/dcgan_mnist --num_samples=64 --output_dir=digits
Without --config.quality.classifier_workdir the GAN trains and draws, with no quality metrics.
The family's defaults (mlfun_jax/gan/config.py) are this GAN: 30 epochs of the embedded digits.
"""

import ml_collections

from mlfun_jax.gan import config as gan_config


def get_config() -> ml_collections.ConfigDict:
  return gan_config.defaults()
