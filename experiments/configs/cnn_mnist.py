"""The series' digit recogniser: conv32 -> pool -> conv64 -> pool -> dense256 -> dropout -> softmax.

Main job, offline on the embedded 5,000 real MNIST digits (4,000 train / 1,000 held out):
  mlfun-train --config=cnn_mnist --workdir=workdirs/cnn_mnist
Full MNIST from IDX files (60,000 / 10,000; `mlfun-data fetch mnist` puts them in the data folder):
  mlfun-train --config=cnn_mnist --workdir=workdirs/mnist_full \
      --config.dataset=mnist --config.num_epochs=15
"8 or not" (sigmoid one-vs-rest head):
  ... --config.head=sigmoid --config.positive_class=8
Measured with pmap over 2 CPU devices: embedded default 98.7% held-out accuracy in 67 s wall on a
2-core AMD EPYC (98.9% in 50 s on a 2-core Intel Xeon, AVX-512: float rounding differs between the
processors); full MNIST, 15 epochs: 99.53% test accuracy in 342 s wall (the Xeon).

The family's defaults (mlfun_jax/classification/config.py) are this network and data.
"""

import ml_collections

from mlfun_jax.classification import config as classification_config


def get_config() -> ml_collections.ConfigDict:
  return classification_config.defaults()
