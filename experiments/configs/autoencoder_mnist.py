"""The series' autoencoder: 784 -> 512 -> 256 -> 2 neurons -> 256 -> 512 -> 784, output = input.

What does a 2-neuron bottleneck learn? Trained to reproduce its input, the network must describe
each digit with 2 numbers; samples/codes.png shows those numbers for the test digits coloured by
digit, samples/lattice.png the digits decoded from a regular grid of code pairs.

  python -m experiments.train --config=experiments/configs/autoencoder_mnist.py \
      --workdir=workdirs/autoencoder_mnist                       # embedded 5,000 digits, offline
  python -m experiments.train --config=experiments/configs/autoencoder_mnist.py \
      --workdir=workdirs/autoencoder_mnist_full --config.dataset=mnist \
      --config.data_dir=../shared/data/mnist --config.num_epochs=30
  python -m experiments.visualize --workdir=workdirs/autoencoder_mnist

Denoising: --config.noise=masking --config.noise_level=0.3 (or gaussian / salt_and_pepper).
Anomaly detection: --config.exclude_class=7 trains without the 7s and reports the ROC AUC of the
reconstruction error for spotting them among the test digits (eval_anomaly_auc, report.json).
"""

import ml_collections
from ml_collections import config_dict

from mlfun_jax.data import config as image_data


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "autoencoder"
  config.seed = 0

  # Data, as for the classifiers (see cnn_mnist.py): labels only colour the pictures.
  image_data.add_image_data_fields(config, dataset="embedded_mnist", channels=1)

  config.model = ml_collections.ConfigDict()
  config.model.name = "autoencoder"  # Or 'vae'.
  config.model.architecture = "dense"  # Or 'conv': widths are then channels of stride-2 convs.
  config.model.widths = (512, 256)
  config.model.bottleneck = 2  # Units of the code (autoencoder).
  config.model.latent = 20  # Units of the latent code (vae).

  # p(x | code): 'bernoulli' (cross-entropy on grey levels in [0, 1]) or 'gaussian' with a fixed
  # standard deviation gaussian_scale (squared error).
  config.likelihood = "bernoulli"
  config.gaussian_scale = 0.1
  # 'dynamic': train on binary digits drawn afresh each step (test digits binarized once, seeded).
  config.binarize = "none"
  # Denoising: corrupt the input ('gaussian', 'masking', 'salt_and_pepper'), reconstruct the clean.
  config.noise = "none"
  config.noise_level = 0.0
  # >= 0: leave this class out of training and report the anomaly AUC of reconstruction errors.
  config.exclude_class = -1

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "constant"
  config.optimizer.warmup_steps = 0
  config.optimizer.momentum = 0.9
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.weight_decay = 0.0
  config.optimizer.grad_clip_norm = 0.0

  config.batch_size = 128
  config.num_epochs = 50.0
  config.num_steps = config_dict.placeholder(int)  # Overrides num_epochs when set.

  config.log_every = 50
  config.eval_every = 500  # Also writes samples/reconstructions_step_*.png.
  config.checkpoint_every = 1000
  config.keep_checkpoints = 3
  config.max_inflight_steps = 4
  return config
