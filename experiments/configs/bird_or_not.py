"""Bird or not: the series' CIFAR-10 network with a sigmoid one-vs-rest head (class 'bird').

Reports accuracy, precision and recall at threshold 0.5 and the ROC AUC on the 5,000 validation
images (500 birds).

  python -m experiments.train --config=experiments/configs/bird_or_not.py --workdir=workdirs/bird_or_not
  python -m experiments.predict --workdir=workdirs/bird_or_not photo.jpg   # [["bird", p], ["not bird", 1-p]]
"""

import ml_collections

from experiments.configs import cnn_cifar10


def get_config() -> ml_collections.ConfigDict:
  config = cnn_cifar10.get_config()
  config.head = "sigmoid"
  config.positive_class = 2  # 'bird' in CIFAR-10's sorted class names.
  return config
