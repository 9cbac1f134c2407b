"""The series' digit CNN trained adversarially on full MNIST (L-infinity, epsilon 0.3).

Each train step replaces its batch by attacks on the current model (mlfun_jax/adversarial_training.py):
by default "fast adversarial training" (Wong et al. 2020), FGSM from a uniformly random start in the
0.3-ball with a step of 1.25 epsilon, epsilon warmed up from 0 over the first epochs. Each evaluation
reports the clean accuracy and the accuracy under PGD-20 at 0.3 (eval_adversarial_accuracy).

  python -m experiments.train --config=experiments/configs/cnn_mnist_adversarial.py \
      --workdir=workdirs/mnist_adversarial
  python -m experiments.attack --workdir=workdirs/mnist_adversarial --attack=pgd --steps=20 \
      --epsilon=0.1,0.2,0.3 --out=workdirs/mnist_adversarial/attack

Madry-style PGD training: --config.adversarial.num_steps=7 --config.adversarial.relative_step_size=0.36
(about 4x the cost). Measured numbers: see the README section on adversarial examples.
"""

import os

import ml_collections

from experiments.configs import cnn_mnist


def get_config() -> ml_collections.ConfigDict:
  config = cnn_mnist.get_config()
  config.dataset = "mnist"
  config.data_dir = os.environ.get("MLFUN_DATA_DIR", "../shared/data")
  config.channels = 1
  config.augment.shift = 0  # The attacks are the augmentation.
  config.model.dropout_rate = 0.0

  config.adversarial = ml_collections.ConfigDict()
  config.adversarial.epsilon = 0.3  # L-infinity, pixels in [0, 1].
  config.adversarial.num_steps = 1
  config.adversarial.relative_step_size = 1.25  # Step size / epsilon.
  config.adversarial.random_start = True
  config.adversarial.warmup_steps = 938  # 2 epochs of 60,000 at batch 128.
  config.adversarial.eval_steps = 20

  config.num_epochs = 12.0
  config.eval_every = 1407  # Every 3 epochs.
  config.checkpoint_every = 1407
  return config
