"""The series' autoencoder: 784 -> 512 -> 256 -> 2 neurons -> 256 -> 512 -> 784, output = input.

What does a 2-neuron bottleneck learn? Trained to reproduce its input, the network must describe
each digit with 2 numbers; samples/codes.png shows those numbers for the test digits coloured by
digit, samples/lattice.png the digits decoded from a regular grid of code pairs.

  mlfun-train --config=autoencoder_mnist \
      --workdir=workdirs/autoencoder_mnist                       # embedded 5,000 digits, offline
  mlfun-train --config=autoencoder_mnist \
      --workdir=workdirs/autoencoder_mnist_full --config.dataset=mnist
  mlfun-visualize --workdir=workdirs/autoencoder_mnist

Measured (docs/autoencoder.md; full MNIST: the second command, 50 epochs, 2-core CPU, 2 devices):
reconstruction 129.6 nats (cross-entropy), MSE 0.0346 per pixel, 5-NN accuracy on the 2-D test
codes 83.8%; 5.2 min wall for the whole command. The first command (embedded digits) is not
measured in docs/autoencoder.md.

Denoising: --config.noise=masking --config.noise_level=0.3 (or gaussian / salt_and_pepper).
Anomaly detection: --config.exclude_class=7 trains without the 7s and reports the ROC AUC of the
reconstruction error for spotting them among the test digits (eval_anomaly_auc, report.json).
"""

import ml_collections

from mlfun_jax.autoencoder import config as autoencoder_config


def get_config() -> ml_collections.ConfigDict:
  return autoencoder_config.defaults()  # The family's defaults are this experiment.
