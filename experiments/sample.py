"""Draws new samples from the latest checkpoint of a trained GAN.

  python -m experiments.sample --workdir=workdirs/dcgan_mnist --num=64 --out=samples.png
  python -m experiments.sample --workdir=workdirs/dcgan_cifar10 --num=64 --out=nes.png --pixel_art

The same --seed gives the same samples. --code=K draws only the categorical code K of a GAN
trained with one (model.categorical_code; e.g. one digit). --pixel_art maps colours to the NES
palette and upsizes with nearest neighbour (--scale).
"""

from absl import app
from absl import flags

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained GAN.")
_NUM = flags.DEFINE_integer("num", 64, "How many samples.", lower_bound=1)
_OUT = flags.DEFINE_string("out", None, "PNG file to write the grid of samples to.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the noise.")
_CODE = flags.DEFINE_integer("code", None, "Draw only this categorical code (GANs with one).")
_COLUMNS = flags.DEFINE_integer("columns", 8, "Samples per row of the grid.", lower_bound=1)
_PIXEL_ART = flags.DEFINE_bool("pixel_art", False, "NES palette and nearest-neighbour upsizing.")
_SCALE = flags.DEFINE_integer("scale", 4, "Upsizing factor with --pixel_art.", lower_bound=1)
flags.mark_flags_as_required(["workdir", "out"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from mlfun_jax.core import pictures  # pylint: disable=g-import-not-at-top
  from mlfun_jax.gan import inference  # pylint: disable=g-import-not-at-top
  from mlfun_jax.gan import pictures as gan_pictures  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    trained = inference.TrainedGAN(_WORKDIR.value)
    images = trained.sample(_NUM.value, _SEED.value, code=_CODE.value)
    grid = gan_pictures.sample_grid(images, pixel_art=_PIXEL_ART.value, scale=_SCALE.value,
                                    columns=_COLUMNS.value)
    try:
      path = pictures.save_png(grid, _OUT.value)
    except OSError as e:
      cli.fail(f"cannot write --out={_OUT.value!r}: {e.strerror or e}")
  print(path, flush=True)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
