"""Image datasets, in memory or streamed, and deterministic batching.

Importing this package imports neither TensorFlow nor tensorflow_datasets, parses no flags and
touches no jax device.
"""

from mlfun_jax.data.arrays import ArraySplit
from mlfun_jax.data.arrays import Batch
from mlfun_jax.data.arrays import check_batch_size
from mlfun_jax.data.arrays import eval_batches
from mlfun_jax.data.arrays import ImageDataset
from mlfun_jax.data.arrays import num_eval_batches
from mlfun_jax.data.arrays import train_batches
from mlfun_jax.data.image_folder import load_image_folder
from mlfun_jax.data.inputs import Inputs
from mlfun_jax.data.inputs import load_configured_input
from mlfun_jax.data.registry import load_configured_dataset
from mlfun_jax.data.registry import load_image_dataset
from mlfun_jax.data.sources import DatasetMissing
from mlfun_jax.data.sources import default_data_dir

__all__ = ['ArraySplit', 'Batch', 'DatasetMissing', 'ImageDataset', 'Inputs', 'check_batch_size',
           'default_data_dir', 'eval_batches', 'load_configured_dataset', 'load_configured_input',
           'load_image_dataset', 'load_image_folder', 'num_eval_batches', 'train_batches']
