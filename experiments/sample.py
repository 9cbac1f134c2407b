"""Draws new samples from the latest checkpoint of a trained GAN.

  mlfun-sample --workdir=workdirs/dcgan_mnist --num_samples=64
  mlfun-sample --workdir=workdirs/dcgan_cifar10 --num_samples=64 --output_dir=nes --pixel_art

Writes the grid of samples to OUTPUT_DIR/samples_seed<S>.png (samples_seed<S>_code<K>.png with
--code; OUTPUT_DIR defaults to WORKDIR/generated) and prints its path. The same --seed gives the
same samples. --code=K draws only the categorical code K of a GAN trained with one
(model.categorical_code; e.g. one digit). --pixel_art maps colours to the NES palette and upsizes
with nearest neighbour (--scale).
"""

import os

from absl import app
from absl import flags

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained GAN.")
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "How many samples to draw (at most 4,096).",
                                    lower_bound=1, upper_bound=4096)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Folder for the grid of samples: samples_seed<S>.png "
    "(samples_seed<S>_code<K>.png with --code); default WORKDIR/generated.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the noise.")
_CODE = flags.DEFINE_integer("code", None, "Draw only this categorical code (GANs with one).")
_COLUMNS = flags.DEFINE_integer("columns", 8, "Samples per row of the grid.", lower_bound=1)
_PIXEL_ART = flags.DEFINE_bool("pixel_art", False, "NES palette and nearest-neighbour upsizing.")
_SCALE = flags.DEFINE_integer("scale", 4, "Upsizing factor with --pixel_art (at most 32).",
                              lower_bound=1, upper_bound=32)
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from mlfun_jax.core import pictures  # pylint: disable=g-import-not-at-top
  from mlfun_jax.gan import inference  # pylint: disable=g-import-not-at-top
  from mlfun_jax.gan import pictures as gan_pictures  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    trained = inference.TrainedGAN(_WORKDIR.value)
    output_dir = cli.make_output_dir(_OUTPUT_DIR.value or os.path.join(_WORKDIR.value, "generated"))
    images = trained.sample(_NUM_SAMPLES.value, _SEED.value, code=_CODE.value)
    grid = gan_pictures.sample_grid(images, pixel_art=_PIXEL_ART.value, scale=_SCALE.value,
                                    columns=_COLUMNS.value)
    name = f"samples_seed{_SEED.value}" + ("" if _CODE.value is None else f"_code{_CODE.value}")
    with cli.writing_to(output_dir):
      path = pictures.save_png(grid, os.path.join(output_dir, name + ".png"))
  print(path, flush=True)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
