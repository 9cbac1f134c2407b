"""A GAN's pictures (WORKDIR/samples/) and its final quality report (WORKDIR/report.json).

- samples/fixed_noise_step_*.png during training and samples/fixed_noise.png at the end: the same
  noise every time, so progress is visible; with config.samples.pixel_art also a copy in the NES
  palette, upsized with nearest neighbour (the series' 8-bit look);
- samples/codes.png at the end, with a categorical code: one row per code, the same noise in each
  column (what each code learnt to draw);
- report.json, with a quality classifier: the Frechet distance to the real test images of the final
  generator and of the generator at initialisation, Inception Scores, and how many classes the
  classifier finds among 1,000 new samples (and how often each); with a categorical code, which
  class each code draws (CODE_SAMPLES samples per code) and the code-class purity.
"""

import functools
import json
import os
from typing import Any

from absl import logging
import jax
import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core import files
from mlfun_jax.core import pictures
from mlfun_jax.gan import model as gan_models
from mlfun_jax.gan import palette
from mlfun_jax.gan import sample_quality

SAMPLES_DIR = "samples"
REPORT_FILE = "report.json"
FIXED_NOISE_SEED = 1234
NUM_REPORT_SAMPLES = 1000
CODE_SAMPLES = 100  # Samples per code in the report's code -> class table.
CODE_COLUMNS = 10  # Noise vectors in samples/codes.png.
_CHUNK = 500


def sample_grid(images: np.ndarray, *, pixel_art: bool = False, scale: int = 4,
                columns: int = 8) -> np.ndarray:
  """float [N, H, W, C] in [-1, 1] (checked) -> uint8 picture: a grid, optionally in the NES
  palette."""
  checks.check_images(images, name="images", dtype_kind="f", value_range=(-1.0, 1.0))
  if pixel_art:
    return pictures.image_grid(palette.pixel_art(images, scale, signed=True), columns=columns)
  return pictures.image_grid((images + 1.0) / 2.0, columns=columns, scale=2)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _generate(generator, latent: gan_models.Latent, state, keys, codes):
  inputs, _ = latent.draw(keys, codes)
  return gan_models.generate(generator, state.ema_generator, state.ema_batch_stats, inputs)


def samples(generator, latent: gan_models.Latent, state, num: int, seed: int,
            code: int | np.ndarray | None = None) -> np.ndarray:
  """float32 [num, H, W, C] in [-1, 1] from `num` inputs drawn with `seed` by the averaged
  generator (BatchNorm running averages); the same seed gives the same samples. `code` (an int,
  or int [num], in 0..latent.codes-1: checked) fixes the categorical code; by default it is drawn
  with the noise."""
  if code is not None:
    code = np.asarray(code)
    if not latent.codes:
      raise checks.InputConventionError("code: this generator has no categorical code (give None)")
    checks.check_ids(code, name="code", vocab_size=latent.codes)
  keys = jax.random.split(jax.random.key(seed), num)
  codes = None if code is None else np.broadcast_to(np.asarray(code, np.int32), (num,))
  return np.concatenate([
      np.asarray(_generate(generator, latent, state, keys[i:i + _CHUNK],
                           None if codes is None else codes[i:i + _CHUNK]))
      for i in range(0, num, _CHUNK)])


def code_grid(generator, latent: gan_models.Latent, state) -> np.ndarray:
  """float32 [K * CODE_COLUMNS, H, W, C]: row k draws code k from the same CODE_COLUMNS noise
  vectors (the noise is drawn from keys alone, so it is the same for every code)."""
  return np.concatenate([samples(generator, latent, state, CODE_COLUMNS, FIXED_NOISE_SEED, code=k)
                         for k in range(latent.codes)])


def fixed_noise_grid(generator, config, state, workdir: str, step: int | None = None) -> list[str]:
  """Writes the fixed-noise grid (and its pixel-art copy); returns the paths."""
  images = samples(generator, gan_models.latent_of(config.model), state, config.samples.num,
                   FIXED_NOISE_SEED)
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


def quality_report(generator, latent: gan_models.Latent, state, initial_state, quality,
                   real_images: np.ndarray) -> dict[str, Any]:
  """Frechet distances (final and initial generator) against `real_images` (uint8 [N, H, W, C],
  checked), Inception Scores, and the classes among NUM_REPORT_SAMPLES new samples."""
  checks.check_images(real_images, name="real_images", dtype_kind="u")
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
  if latent.codes:
    codes = np.repeat(np.arange(latent.codes), CODE_SAMPLES)
    _, probabilities = _features(quality, samples(generator, latent, state, len(codes), seed=98,
                                                  code=codes))
    found = np.argmax(probabilities, axis=1)
    counts = np.zeros((latent.codes, quality.num_classes), np.int64)
    np.add.at(counts, (codes, found), 1)
    report["code_class_counts"] = counts.tolist()
    report["code_to_class"] = counts.argmax(axis=1).tolist()
    report["code_class_purity"] = sample_quality.code_class_purity(counts)
  return report


def final_pictures_and_report(generator, config, state, quality, workdir: str,
                              real_images: np.ndarray | None = None,
                              initial_state=None) -> dict[str, Any]:
  """The final fixed-noise grid(s) and, with a quality classifier and `real_images` (uint8
  [N, H, W, C], checked), report.json."""
  written = fixed_noise_grid(generator, config, state, workdir)
  latent = gan_models.latent_of(config.model)
  if latent.codes:
    written.append(pictures.save_png(
        sample_grid(code_grid(generator, latent, state), columns=CODE_COLUMNS),
        os.path.join(workdir, SAMPLES_DIR, "codes.png")))
  report = {"pictures": sorted(os.path.basename(p) for p in written)}
  if quality is not None and real_images is not None:
    report.update(quality_report(generator, latent, state, initial_state, quality, real_images))
    report["classifier_workdir"] = quality.workdir
    files.write_json(os.path.join(workdir, REPORT_FILE), report, indent=1, sort_keys=True)
    logging.info("Report: %s", json.dumps({k: v for k, v in report.items()
                                           if k not in ("pictures", "class_counts_in_1000",
                                                        "code_class_counts")}))
  return report
