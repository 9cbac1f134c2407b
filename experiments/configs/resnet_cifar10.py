"""A small ResNet with BatchNorm on CIFAR-10: the stronger model beside the series' network.

ResNet-9 layout at a quarter of its usual width (stem 16; stages 32, 64, 128; residual blocks after
the first and last stage), BatchNorm averaged across devices under pmap, SGD with Nesterov momentum
on a one-cycle schedule and label smoothing. Same data and split as cnn_cifar10.py.

  python -m experiments.train --config=experiments/configs/resnet_cifar10.py --workdir=workdirs/resnet_cifar10
"""

import ml_collections

from experiments.configs import cnn_cifar10


def get_config() -> ml_collections.ConfigDict:
  config = cnn_cifar10.get_config()
  config.label_smoothing = 0.1
  config.augment.rotate_degrees = 10.0  # Flips, 2-pixel shifts and rotations up to 10 degrees.
  # eval_accuracy averages each image with its mirror; eval_single_view_accuracy is the plain one.
  config.test_time_flip = True

  config.model = ml_collections.ConfigDict()
  config.model.name = "resnet"
  config.model.stem_features = 16
  config.model.stage_features = (32, 64, 128)
  config.model.residual_stages = (True, False, True)
  config.model.output_scale = 0.125
  config.model.bn_momentum = 0.9

  config.optimizer.name = "momentum"
  config.optimizer.learning_rate = 0.2
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 5e-4
  config.optimizer.schedule = "onecycle"

  config.batch_size = 256
  config.num_epochs = 24.0
  config.eval_every = 500
  config.checkpoint_every = 500
  return config
