"""A variational autoencoder, 784 -> 400 -> 20 latent units (Gaussian posterior) -> 400 -> 784
(Bernoulli pixels), as in the flax and PyTorch VAE examples, trained on dynamically binarized digits.

eval_loss is the test negative ELBO in nats per image (reconstruction + KL); samples/prior_samples.png
shows digits decoded from the prior. With --config.model.latent=2 the latent space is a picture too
(samples/codes.png, samples/lattice.png at normal quantiles).

  mlfun-train --config=vae_mnist --workdir=workdirs/vae_mnist
  mlfun-train --config=vae_mnist \
      --workdir=workdirs/vae_mnist_full --config.dataset=mnist

Measured (README, the second command, full MNIST, 50 epochs, 2-core CPU with pmap over 2 devices):
test negative ELBO 98.1 nats per image (reconstruction 71.1 + KL 26.9), 102.8 after 9.6 epochs;
3.5 min wall. The first command (embedded digits) is not measured in README.
"""

import ml_collections

from mlfun_jax.autoencoder import config as autoencoder_config


def get_config() -> ml_collections.ConfigDict:
  config = autoencoder_config.defaults()
  config.model.name = "vae"
  config.model.widths = (400,)
  config.binarize = "dynamic"
  return config
