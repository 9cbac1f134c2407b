"""What an autoencoder learned, as pictures in WORKDIR/samples/ and numbers in WORKDIR/report.json.

- reconstructions: test inputs (corrupted ones for a denoising model) above their reconstructions;
- for 2-D codes: the test set's codes as a scatter coloured by class, and a grid decoded from a
  regular lattice of codes (for a VAE, at standard normal quantiles);
- for a VAE: samples decoded from the prior N(0, I);
- report.json: the accuracy of a 5-nearest-neighbour classifier on the test codes (fit on the
  training codes) and, when a class was left out of training, the exact ROC AUC of the
  reconstruction error for spotting it.
"""

import functools
import json
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlfun_jax.autoencoder import model as models
from mlfun_jax.core import checks
from mlfun_jax.core import files
from mlfun_jax.core import pictures
from mlfun_jax.data import augment

SAMPLES_DIR = "samples"
REPORT_FILE = "report.json"
NUM_SHOWN = 16  # Test images in a reconstruction picture (two rows of 8 pairs).
LATTICE = 20  # Lattice pictures are LATTICE x LATTICE decoded codes.
NUM_PRIOR_SAMPLES = 64
PICTURE_SEED = 0
_CHUNK = 2000


@functools.partial(jax.jit, static_argnums=0)
def _encode(model, params, images):
  """float [B, H, W, C] in [0, 1] -> codes [B, code size]."""
  if models.is_vae(model):
    return model.apply({"params": params}, images, method=model.encode)[0]
  return model.apply({"params": params}, images, method=model.encode)


@functools.partial(jax.jit, static_argnums=0)
def _decode(model, params, codes):
  return jax.nn.sigmoid(model.apply({"params": params}, codes, method=model.decode))


def check_codes(model, codes) -> None:
  """Raises InputConventionError unless `codes` is a float batch [N, code size] of `model`."""
  checks.check_array(codes, name="codes", expected=f"float codes [N, {models.code_size(model)}]",
                     dtype_kinds="f", rank=2, shape=(models.code_size(model),))


def _encode_scaled(model, params, images: np.ndarray, scale: float) -> np.ndarray:
  """Codes float32 [N, code size] of images [N, H, W, C] divided by `scale`, in chunks."""
  return np.concatenate([
      np.asarray(_encode(model, params, np.asarray(images[i:i + _CHUNK], np.float32) / scale))
      for i in range(0, len(images), _CHUNK)])


def encode_images(model, params, images: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W, C] with values 0..255 (the model's image shape) -> codes float32
  [N, code size] (the VAE's posterior means).

  Raises:
    InputConventionError: images of another dtype, rank or shape (e.g. floats, or one image).
  """
  checks.check_images(images, name="images", dtype_kind="u", shape=model.image_shape)
  return _encode_scaled(model, params, images, 255.0)


def decode_codes(model, params, codes: np.ndarray) -> np.ndarray:
  """codes float [N, code size] -> images float32 [N, H, W, C] in [0, 1].

  Raises:
    InputConventionError: codes that are not a float batch [N, code size] (e.g. one code).
  """
  check_codes(model, codes)
  codes = np.asarray(codes, np.float32)
  return np.concatenate([np.asarray(_decode(model, params, codes[i:i + _CHUNK]))
                         for i in range(0, len(codes), _CHUNK)])


def model_inputs(config: ml_collections.ConfigDict, images: np.ndarray) -> np.ndarray:
  """What the model sees of uint8 images [N, H, W, C] (0..255): float32 [N, H, W, C] in [0, 1],
  corrupted (seeded) for a denoising config.

  Raises:
    InputConventionError: images that are not a uint8 batch [N, H, W, C].
  """
  checks.check_images(images, name="images", dtype_kind="u")
  images = jnp.asarray(images, jnp.float32) / 255.0
  keys = jax.random.split(jax.random.key(PICTURE_SEED), len(images))
  return np.asarray(augment.corrupt(keys, images, config.noise, config.noise_level))


def reconstructions(model, params, config, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """uint8 images [N, H, W, C] (0..255, the model's image shape) -> (inputs, reconstructions),
  float32 [N, H, W, C] in [0, 1]; the VAE decodes its mean code.

  Raises:
    InputConventionError: images of another dtype, rank or shape.
  """
  checks.check_images(images, name="images", dtype_kind="u", shape=model.image_shape)
  inputs = model_inputs(config, images)
  codes = _encode_scaled(model, params, inputs, 1.0)
  return inputs, decode_codes(model, params, codes)


def _shown(dataset) -> tuple[np.ndarray, np.ndarray]:
  """NUM_SHOWN test images: the first of each class in class order, then the second, ..."""
  labels = dataset.test.labels
  rank = np.zeros(len(labels), np.int64)  # How many earlier test images share the class.
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    rank[members] = np.arange(len(members))
  chosen = np.lexsort((labels, rank))[:NUM_SHOWN]
  return dataset.test.images[chosen], labels[chosen]


def write_reconstructions(model, params, config, dataset, path: str) -> str:
  inputs, outputs = reconstructions(model, params, config, _shown(dataset)[0])
  return pictures.save_png(pictures.reconstruction_grid(inputs, outputs, columns=8, scale=2), path)


def write_prior_samples(model, params, path: str) -> str:
  """NUM_PRIOR_SAMPLES VAE samples: codes ~ N(0, I) (seeded) through the decoder."""
  codes = np.random.default_rng(PICTURE_SEED).standard_normal((NUM_PRIOR_SAMPLES, model.latent))
  return pictures.save_png(pictures.image_grid(decode_codes(model, params, codes), columns=8,
                                               scale=2), path)


def write_lattice(model, params, test_codes: np.ndarray, path: str) -> str:
  """Images decoded from a LATTICE x LATTICE grid of 2-D codes: N(0, 1) quantiles for a VAE, else
  the 1st-99th percentile range of the test codes."""
  if models.is_vae(model):
    lattice = pictures.gaussian_lattice(LATTICE)
  else:
    low, high = np.percentile(test_codes, [1, 99])
    lattice = pictures.lattice_codes(float(low), float(high), LATTICE)
  return pictures.save_png(pictures.image_grid(decode_codes(model, params, lattice),
                                               columns=LATTICE, pad=0), path)


def knn_accuracy(train_codes, train_labels, test_codes, test_labels, k: int = 5) -> float:
  """Accuracy of a k-nearest-neighbour classifier (Euclidean) fit on the training codes.

  Codes float [N, code size]; labels integer class ids [N].
  """
  for name, labels in (("train_labels", train_labels), ("test_labels", test_labels)):
    checks.check_ids(labels, name=name, rank=1)
  from sklearn.neighbors import KNeighborsClassifier  # pylint: disable=g-import-not-at-top
  classifier = KNeighborsClassifier(n_neighbors=k).fit(train_codes, train_labels)
  return float((classifier.predict(test_codes) == test_labels).mean())


def reconstruction_errors(model, params, config, images: np.ndarray) -> np.ndarray:
  """Per-image mean squared error of the reconstruction against the clean image, float64 [N], of
  uint8 images [N, H, W, C] (0..255).

  Raises:
    InputConventionError: images of another dtype, rank or shape.
  """
  checks.check_images(images, name="images", dtype_kind="u", shape=model.image_shape)
  errors = []
  for start in range(0, len(images), _CHUNK):
    chunk = images[start:start + _CHUNK]
    _, outputs = reconstructions(model, params, config, chunk)
    clean = chunk.astype(np.float32) / 255.0
    errors.append(np.square(outputs - clean).reshape(len(chunk), -1).mean(axis=1))
  return np.concatenate(errors).astype(np.float64)


def progress_pictures(model, config, params, dataset, workdir: str, step: int) -> None:
  """Pictures during training, named by step: reconstructions (and VAE prior samples)."""
  directory = os.path.join(workdir, SAMPLES_DIR)
  write_reconstructions(model, params, config, dataset,
                        os.path.join(directory, f"reconstructions_step_{step:07d}.png"))
  if models.is_vae(model):
    write_prior_samples(model, params, os.path.join(directory, f"prior_samples_step_{step:07d}.png"))


def final_pictures_and_report(model, config, params, dataset, workdir: str) -> dict[str, Any]:
  """Writes every picture of the module docstring and report.json; returns the report."""
  directory = os.path.join(workdir, SAMPLES_DIR)
  written = [write_reconstructions(model, params, config, dataset,
                                   os.path.join(directory, "reconstructions.png"))]
  test_codes = encode_images(model, params, dataset.test.images)
  train_codes = encode_images(model, params, dataset.train.images)
  report = {"code_size": models.code_size(model),
            "knn5_accuracy": knn_accuracy(train_codes, dataset.train.labels, test_codes,
                                          dataset.test.labels)}
  if models.code_size(model) == 2:
    written.append(pictures.scatter_codes(
        test_codes, dataset.test.labels, dataset.class_names,
        os.path.join(directory, "codes.png"), title=f"{dataset.name} test codes"))
    written.append(write_lattice(model, params, test_codes, os.path.join(directory, "lattice.png")))
  if models.is_vae(model):
    written.append(write_prior_samples(model, params, os.path.join(directory, "prior_samples.png")))
  if config.exclude_class >= 0:
    from sklearn.metrics import roc_auc_score  # pylint: disable=g-import-not-at-top
    errors = reconstruction_errors(model, params, config, dataset.test.images)
    unseen = dataset.test.labels == config.exclude_class
    report["anomaly_class"] = dataset.class_names[config.exclude_class]
    report["anomaly_auc"] = float(roc_auc_score(unseen, errors))
  report["pictures"] = sorted(os.path.basename(p) for p in written)
  files.write_json(os.path.join(workdir, REPORT_FILE), report, indent=1, sort_keys=True)
  logging.info("Report: %s", json.dumps({k: v for k, v in report.items() if k != "pictures"}))
  return report
