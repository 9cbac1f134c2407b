"""Redraws an autoencoder's pictures and report from the latest checkpoint in --workdir.

  mlfun-visualize --workdir=workdirs/autoencoder_mnist

Writes WORKDIR/samples/: reconstructions.png (test inputs above their reconstructions), for 2-D
codes codes.png (the test codes coloured by class) and lattice.png (decoded from a regular lattice
of codes), for a VAE prior_samples.png; and WORKDIR/report.json (5-nearest-neighbour accuracy on
the codes, anomaly AUC when a class was left out). The data is read as the run's config says
(--data_dir overrides its data_dir). Prints the report as one JSON line.
"""

import json

from absl import app
from absl import flags

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained autoencoder.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Overrides the data_dir of the run's config.")
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  # pylint: disable=g-import-not-at-top
  from mlfun_jax.autoencoder import inference as autoencoder_inference
  from mlfun_jax.autoencoder import pictures as autoencoder_pictures
  from mlfun_jax.autoencoder import task as autoencoder
  # pylint: enable=g-import-not-at-top
  with cli.user_errors():
    trained = autoencoder_inference.TrainedAutoencoder(_WORKDIR.value)
    config = trained.config
    if _DATA_DIR.value is not None:
      config.data_dir = cli.check_data_dir(_DATA_DIR.value)
    dataset = autoencoder.prepare_dataset(config)
    report = autoencoder_pictures.final_pictures_and_report(
        trained.model, config, trained.params, dataset, _WORKDIR.value)
  print(json.dumps({"step": trained.step, **report}), flush=True)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
