"""Every config field of the classification family, with its default, and the fields added later.

Experiment configs (experiments/configs/cnn_mnist.py, cnn_cifar10.py, bird_or_not.py,
resnet_cifar10.py, cnn_mnist_adversarial.py) start from `defaults()` and set what differs.
"""

import ml_collections

from mlfun_jax.core import config as core_config
from mlfun_jax.core import config_checks as cc
from mlfun_jax.data import augment
from mlfun_jax.data import config as image_data

# Fields a config saved by an older run may lack, with the value that reproduces how it ran.
FIELDS_ADDED_LATER = {
    **core_config.FIELDS_ADDED_LATER,
    # Image-folder fields and channels came with image folders (old runs: the loader's defaults).
    "image_size": None,
    "channels": 3,
    "validation_fraction": 0.1,
    "split_seed": 0,
    "bad_images": "error",
    "cache_dir": None,
    **image_data.INPUT_FIELDS_ADDED_LATER,
    # Runs from before on-device augmentation, label smoothing, model.name and test-time flips.
    "augment": {"shift": 0, "flip": False, "rotate_degrees": 0.0, "blur_probability": 0.0,
                "blur_max_sigma": 0.0},
    "label_smoothing": 0.0,
    "test_time_flip": False,
    "model.name": "cnn",
    # A run saved with one model's fields lacks the other model's (they are not read).
    "model.conv_features": (32, 64),
    "model.convs_per_block": 1,
    "model.kernel_size": 3,
    "model.dense_features": (256,),
    "model.dropout_rate": 0.5,
    "model.stem_features": 16,
    "model.stage_features": (32, 64, 128),
    "model.residual_stages": (True, False, True),
    "model.output_scale": 0.125,
    "model.bn_momentum": 0.9,
    # A run without an `adversarial` block trained plainly; one with a block trained adversarially.
    "adversarial": {"enabled": False, "epsilon": 0.3, "num_steps": 5, "relative_step_size": 0.5,
                    "random_start": True, "warmup_steps": 938, "eval_steps": 20},
    "adversarial.enabled": True,
    # Runs from before the CIFAR-10 speedrun's pieces: none of them.
    "augment.alternate_flips": False,
    "augment.shift_fill": "zeros",
    "test_time_shift": 0,
    "model.whiten_bias_epochs": 3.0,
    "optimizer.warmup_fraction": 0.0,
    "optimizer.initial_factor": 0.0,
    "optimizer.final_factor": 0.0,
    "optimizer.norm_lr_scale": 1.0,
    "optimizer.decay_all": False,
    "optimizer.lookahead_every": 0,
    "optimizer.lookahead_decay": 0.0,
}

# Start-up checks of every field (core.config_checks): ranges, types, finite numbers.
FIELD_RULES = {
    **cc.LOOP_RULES,
    **image_data.IMAGE_DATA_RULES,
    **image_data.INPUT_RULES,
    "augment.shift": cc.Integer(0),
    "augment.shift_fill": cc.Text(augment.SHIFT_FILLS),
    "augment.flip": cc.Boolean(),
    "augment.alternate_flips": cc.Boolean(),
    "augment.rotate_degrees": cc.Number(0, 180),
    "augment.blur_probability": cc.Number(0, 1),
    "augment.blur_max_sigma": cc.NonNegative(),
    "head": cc.Text(("softmax", "sigmoid")),
    "positive_class": cc.Integer(0),
    "label_smoothing": cc.Fraction(),
    "test_time_flip": cc.Boolean(),
    "test_time_shift": cc.Integer(0, 8),
    "model.name": cc.Text(("cnn", "resnet", "speedrun")),
    "model.conv_features": cc.TupleOf(cc.Item(cc.AnyOf((cc.Integer(1), cc.Sizes(1)),
                                                       "an integer >= 1 or a tuple of them"),
                                              "integers >= 1 or tuples of them (one per block)"),
                                      min_len=1),
    "model.convs_per_block": cc.Integer(1),
    "model.kernel_size": cc.Integer(1),
    "model.dense_features": cc.Ints(1),
    "model.dropout_rate": cc.Fraction(),
    "model.stem_features": cc.Integer(1),
    "model.stage_features": cc.Sizes(1),
    "model.residual_stages": cc.Bools(),
    "model.output_scale": cc.Positive(),
    "model.bn_momentum": cc.Fraction(),
    "model.whiten_bias_epochs": cc.NonNegative(),
    "optimizer.warmup_fraction": cc.Fraction(),
    "optimizer.initial_factor": cc.NonNegative(),
    "optimizer.final_factor": cc.NonNegative(),
    "optimizer.norm_lr_scale": cc.Positive(),
    "optimizer.decay_all": cc.Boolean(),
    "optimizer.lookahead_every": cc.Integer(0),
    "optimizer.lookahead_decay": cc.Fraction(),
    "adversarial.enabled": cc.Boolean(),
    "adversarial.epsilon": cc.Number(0, 1, low_open=True),
    "adversarial.num_steps": cc.Integer(1),
    "adversarial.relative_step_size": cc.Positive(),
    "adversarial.random_start": cc.Boolean(),
    "adversarial.warmup_steps": cc.Integer(0),
    "adversarial.eval_steps": cc.Integer(0),
}


def defaults() -> ml_collections.ConfigDict:
  """The classification config: the series' digit CNN on the embedded MNIST digits."""
  config = core_config.loop_defaults("classification")
  image_data.add_image_data_fields(config, dataset="embedded_mnist", channels=3)
  image_data.add_input_fields(config)

  # On-device augmentation (see mlfun_jax/data/augment.py); the fields are its keywords.
  config.augment = ml_collections.ConfigDict()
  config.augment.shift = 2  # Translation by up to this many pixels.
  config.augment.shift_fill = "zeros"  # What shifts bring in at the borders: zeros or 'reflect'.
  config.augment.flip = False  # Random left-right mirror images (digits are not symmetric).
  config.augment.rotate_degrees = 0.0  # Random rotations by up to this many degrees.
  config.augment.blur_probability = 0.0  # Share of images blurred.
  config.augment.blur_max_sigma = 0.0  # Largest Gaussian blur sigma, in pixels.
  # With flip: each image is flipped at random in the first epoch and the other way round in every
  # next one (the CIFAR-10 speedrun's alternating flips), instead of at random in every epoch.
  config.augment.alternate_flips = False

  config.head = "softmax"  # Or 'sigmoid': one-vs-rest for positive_class ("8 or not").
  config.positive_class = 8  # The sigmoid head's positive class.
  config.label_smoothing = 0.0  # Softmax head: smoothing of the one-hot targets.
  # Evaluate and predict on each image and its mirror image, averaging the logits (photos only).
  config.test_time_flip = False
  # With test_time_flip: also average the mirror-averaged logits of the image shifted by this many
  # pixels up-left and down-right (reflected borders), as the CIFAR-10 speedrun does (0: none).
  config.test_time_shift = 0

  config.model = ml_collections.ConfigDict()
  # 'cnn' (the series' network), 'resnet' (with BatchNorm) or 'speedrun' (`models.speedrun`).
  config.model.name = "cnn"
  config.model.conv_features = (32, 64)  # cnn: channels per block (an int or a tuple per block).
  config.model.convs_per_block = 1  # cnn: convolutions per block (int entries).
  config.model.kernel_size = 3  # cnn: convolution kernel side.
  config.model.dense_features = (256,)  # cnn: hidden dense layers.
  config.model.dropout_rate = 0.5  # cnn: dropout before the output layer.
  config.model.stem_features = 16  # resnet: channels of the stem convolution.
  config.model.stage_features = (32, 64, 128)  # resnet, speedrun: channels of each stage.
  config.model.residual_stages = (True, False, True)  # resnet: a residual block after the stage.
  config.model.output_scale = 0.125  # resnet, speedrun: scale of the logits.
  config.model.bn_momentum = 0.9  # resnet, speedrun: BatchNorm running-average momentum.
  # speedrun: epochs the whitening layer's bias trains (its kernel comes from the training images
  # and never trains).
  config.model.whiten_bias_epochs = 3.0

  # Adversarial training (mlfun_jax/classification/adversarial_training.py), when enabled.
  config.adversarial = ml_collections.ConfigDict()
  config.adversarial.enabled = False  # Train on PGD examples of each batch.
  config.adversarial.epsilon = 0.3  # L-infinity bound, pixels in [0, 1].
  config.adversarial.num_steps = 5  # PGD steps per train step.
  config.adversarial.relative_step_size = 0.5  # PGD step size / epsilon.
  config.adversarial.random_start = True  # Start at a random point of the epsilon-ball.
  config.adversarial.warmup_steps = 938  # Epsilon grows from 0 over these steps (0: none).
  config.adversarial.eval_steps = 20  # PGD steps of eval_adversarial_accuracy (0: none).

  config.optimizer.learning_rate = 3e-3
  config.optimizer.schedule = "onecycle"
  config.optimizer.weight_decay = 1e-4
  # The CIFAR-10 speedrun's optimizer pieces (`core.optim`; all off here): warm-up as a share of
  # the steps; 'warmup_linear' starts at initial_factor x and ends at final_factor x the rate;
  # sgd/momentum: normalisation parameters' learning rate x norm_lr_scale, weight decay on every
  # parameter (decay_all); Lookahead-style averaging every lookahead_every updates.
  config.optimizer.warmup_fraction = 0.0
  config.optimizer.initial_factor = 0.0
  config.optimizer.final_factor = 0.0
  config.optimizer.norm_lr_scale = 1.0
  config.optimizer.decay_all = False
  config.optimizer.lookahead_every = 0
  config.optimizer.lookahead_decay = 0.0
  config.num_epochs = 30.0
  return config
