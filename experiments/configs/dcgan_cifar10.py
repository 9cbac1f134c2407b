"""A DCGAN on CIFAR-10 photos: noise(100) -> 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3.

Trains on the 45,000 training images of cifar10/train.zip in the data folder (data_dir defaults to
$MLFUN_DATA_DIR, else ~/mlfun_jax_data; `mlfun-data fetch cifar10`); the 5,000 held-out ones are the
real side of the metrics.
With --config.samples.pixel_art=true the samples are also drawn in the NES palette, 4x upsized.

  mlfun-train --config=dcgan_cifar10 \
      --workdir=workdirs/dcgan_cifar10 --config.quality.classifier_workdir=workdirs/resnet_cifar10

Measured on the 2-core CPU (61.9 min wall; judge: resnet_cifar10 with label_smoothing 0.0 and
12 epochs): collapsed until step ~1,000, then Frechet distance (FID-style) 1721.0 at
initialisation -> 384.8, Inception Score 2.76 (real images 6.57), 10 of 10 classes among 1,000.
"""

import ml_collections

from mlfun_jax.data import sources
from mlfun_jax.gan import config as gan_config


def get_config() -> ml_collections.ConfigDict:
  config = gan_config.defaults()
  config.dataset = "cifar10"
  config.data_dir = sources.default_data_dir()
  config.image_size = 32
  config.channels = 3
  config.samples.pixel_art = True
  config.num_epochs = 15.0
  return config
