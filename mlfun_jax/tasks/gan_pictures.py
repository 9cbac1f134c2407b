"""A GAN's pictures (WORKDIR/samples/) and its final quality report (WORKDIR/report.json).

- samples/fixed_noise_step_*.png during training and samples/fixed_noise.png at the end: the same
  noise every time, so progress is visible; with config.samples.pixel_art also a copy in the NES
  palette, upsized with nearest neighbour (the series' 8-bit look);
- report.json, with a quality classifier: the Frechet distance to the real test images of the final
  generator and of the generator at initialisation, Inception Scores, and how many classes the
  classifier finds among 1,000 new samples (and how often each).
"""

import functools
import json
import os
from typing import Any

from absl import logging
import jax
import numpy as np

from mlfun_jax import files
from mlfun_jax import palette
from mlfun_jax import pictures
from mlfun_jax import sample_quality
from mlfun_jax.models import gan as gan_models

SAMPLES_DIR = "samples"
REPORT_FILE = "report.json"
FIXED_NOISE_SEED = 1234
NUM_REPORT_SAMPLES = 1000
_CHUNK = 500


def sample_grid(images: np.ndarray, *, pixel_art: bool = False, scale: int = 4,
                columns: int = 8) -> np.ndarray:
  """float [N, H, W, C] in [-1, 1] -> uint8 picture: a grid, optionally in the NES palette."""
  if pixel_art:
    return pictures.image_grid(palette.pixel_art(images, scale, signed=True), columns=columns)
  return pictures.image_grid((images + 1.0) / 2.0, columns=columns, scale=2)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _generate(generator, latent: int, state, keys):
  return gan_models.generate(generator, state.ema_generator, state.ema_batch_stats,
                             gan_models.noise_from_keys(keys, latent))


def samples(generator, latent: int, state, num: int, seed: int) -> np.ndarray:
  """float32 [num, H, W, C] in [-1, 1] from `num` noise vectors drawn with `seed` by the averaged
  generator (BatchNorm running averages); the same seed gives the same samples."""
  keys = jax.random.split(jax.random.key(seed), num)
  return np.concatenate([np.asarray(_generate(generator, latent, state, keys[i:i + _CHUNK]))
                         for i in range(0, num, _CHUNK)])


def fixed_noise_grid(generator, config, state, workdir: str, step: int | None = None) -> list[str]:
  """Writes the fixed-noise grid (and its pixel-art copy); returns the paths."""
  images = samples(generator, config.model.latent, state, config.samples.num, FIXED_NOISE_SEED)
  suffix = f"_step_{step:07d}" if step is not None else ""
  directory = os.path.join(workdir, SAMPLES_DIR)
  written = [pictures.save_png(sample_grid(images),
                               os.path.join(directory, f"fixed_noise{suffix}.png"))]
  if config.samples.pixel_art:
    written.append(pictures.save_png(
        sample_grid(images, pixel_art=True, scale=config.samples.pixel_art_scale),
        os.path.join(directory, f"fixed_noise{suffix}_pixel_art.png")))
  return written


def _features(quality, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  parts = [jax.device_get(quality(images[i:i + _CHUNK])) for i in range(0, len(images), _CHUNK)]
  return (np.concatenate([f for f, _ in parts]), np.concatenate([p for _, p in parts]))


def quality_report(generator, latent: int, state, initial_state, quality,
                   real_images: np.ndarray) -> dict[str, Any]:
  """Frechet distances (final and initial generator) against `real_images` (uint8), Inception
  Scores, and the classes among NUM_REPORT_SAMPLES new samples."""
  real_features, real_probabilities = _features(quality, real_images.astype(np.float32) / 127.5 - 1)
  real_stats = sample_quality.feature_statistics(real_features)
  report = {"num_real": len(real_images),
            "real_inception_score": sample_quality.inception_score(real_probabilities)[0]}
  for name, s in (("final", state), ("initial", initial_state)):
    generated = samples(generator, latent, s, len(real_images), seed=FIXED_NOISE_SEED + 1)
    features, probabilities = _features(quality, generated)
    report[f"frechet_distance_{name}"] = sample_quality.frechet_distance(
        *sample_quality.feature_statistics(features), *real_stats)
    report[f"inception_score_{name}"] = sample_quality.inception_score(probabilities)[0]
  _, probabilities = _features(
      quality, samples(generator, latent, state, NUM_REPORT_SAMPLES, seed=99))
  report["classes_found_in_1000"] = sample_quality.classes_found(probabilities)
  report["class_counts_in_1000"] = sample_quality.class_histogram(
      probabilities, quality.num_classes).tolist()
  report["inception_score_1000"] = sample_quality.inception_score(probabilities)[0]
  return report


def final_pictures_and_report(generator, config, state, quality, workdir: str,
                              real_images: np.ndarray | None = None,
                              initial_state=None) -> dict[str, Any]:
  """The final fixed-noise grid(s) and, with a quality classifier, report.json."""
  written = fixed_noise_grid(generator, config, state, workdir)
  report = {"pictures": sorted(os.path.basename(p) for p in written)}
  if quality is not None and real_images is not None:
    report.update(quality_report(generator, config.model.latent, state, initial_state, quality,
                                 real_images))
    report["classifier_workdir"] = quality.workdir
    files.write_json(os.path.join(workdir, REPORT_FILE), report, indent=1, sort_keys=True)
    logging.info("Report: %s", json.dumps({k: v for k, v in report.items()
                                           if k not in ("pictures", "class_counts_in_1000")}))
  return report
