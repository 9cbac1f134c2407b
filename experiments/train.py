"""Trains an experiment from an ml_collections config file.

  python -m experiments.train --config=experiments/configs/cnn_mnist.py --workdir=/tmp/cnn_mnist
  python -m experiments.train --config=experiments/configs/cnn_mnist.py --workdir=/tmp/full \
      --config.dataset=mnist --config.data_dir=../shared/data/mnist

Any config field can be overridden as --config.field=value. A run resumes from the latest good
checkpoint in --workdir; SIGTERM or Ctrl-C stops it after a checkpoint.
"""

import json

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from mlfun_jax import cli
from mlfun_jax import parallel

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and pictures.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "On CPU: XLA devices to split the processor into (0: one per core).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  parallel.configure_cpu_devices(_CPU_DEVICES.value)
  from mlfun_jax import train  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    _, summary = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
  logging.info("Final metrics: %s", json.dumps(summary, sort_keys=True))


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
