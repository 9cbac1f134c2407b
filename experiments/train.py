r"""Trains an experiment from an ml_collections config: an installed config's name or a file path.

  mlfun-train --config=cnn_mnist --workdir=/tmp/cnn_mnist
  mlfun-train --config=cnn_mnist --workdir=/tmp/full --config.dataset=mnist \
      --config.data_dir=data/mnist
  mlfun-train --config=path/to/my_config.py --workdir=/tmp/mine
  mlfun-train --config=cnn_mnist --help      # the config's fields and their defaults

--config takes a config's name (cnn_mnist, cnn_cifar10, ...: the files of experiments/configs/,
installed as mlfun_jax.experiments.configs; 'name:argument' passes an argument to get_config) or a
config file path ('path.py', 'path.py:argument'). Any config field can be overridden as
--config.field=value. Prints the final metrics as one JSON line on standard output. A run resumes
from the latest good checkpoint in --workdir (a finished run says so and prints its final metrics
again); SIGTERM or Ctrl-C stops it after a checkpoint (exit status 0), and the same command
resumes it. --init_from=OTHER_WORKDIR starts a new run (a workdir without checkpoints) from another
run's weights with a fresh step count and optimizer: fine-tuning, a decay phase.

Many processes (one per host, or several on one machine: launch/multiprocess.sh) join one run with
--coordinator_address=HOST:PORT --num_processes=N --process_id=I, or without flags where JAX detects
the cluster (Cloud TPU VM, SLURM, Open MPI). Process 0 alone logs at INFO level and prints the
final metrics.
"""

import json

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from mlfun_jax.core import cli
from mlfun_jax.core import parallel

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config: an installed config's name (cnn_mnist, ...; "
    "'name:argument') or a config file path ('path.py', 'path.py:argument'). With --help: list "
    "its fields and their defaults.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and pictures.")
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "Another run's workdir: start from its newest weights with a fresh step "
    "count and optimizer (fine-tuning, a new schedule); ignored once --workdir has a checkpoint.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "On CPU: XLA devices to split the processor into (0: one per core).",
    lower_bound=0, upper_bound=1024)
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", "", "host:port of process 0, for a multi-process run.")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", 0, "Processes in a multi-process run (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", -1, "This process' index in 0..num_processes-1 (with --coordinator_address).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  parallel.configure_cpu_devices(_CPU_DEVICES.value)
  from mlfun_jax import families  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    parallel.initialize_processes(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    if not parallel.is_chief():
      logging.set_verbosity(logging.WARNING)
    _, summary = families.train_and_evaluate(_CONFIG.value, _WORKDIR.value,
                                          init_from=_INIT_FROM.value)
  if parallel.is_chief():
    print(json.dumps(summary, sort_keys=True), flush=True)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()
