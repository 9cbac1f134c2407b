"""Time to 94% on CIFAR-10: `mlfun-train --config=cifar10_speedrun` vs the PyTorch reference.

  python benchmarks/speedrun_race.py --data_dir=$MLFUN_DATA_DIR                 # 1 seed each
  python benchmarks/speedrun_race.py --data_dir=... --seeds=3 --target=0.94
  python benchmarks/speedrun_race.py --data_dir=... --epochs=1 --target=0.5     # a quick check

Runs, on this machine and one after the other (alternating which goes first from seed to seed),
the whole command of each side: this project's `mlfun-train` with the speedrun config (on the CPU
as 8 parts of 128 images per 1,024-image update, `--jax_overrides`), and
`benchmarks/speedrun_torch.py` (PyTorch eager, the same recipe, images and split). Both train
9.9 epochs (`--epochs`) on the 45,000 training images and measure the 5,000 held out with the
recipe's 6 test-time views. A side reaches the target when the mean of its seeds' accuracies
does; its time to the target is then the mean wall time of its whole command (data loading,
compilation, training and the final evaluation), as the recipe trains a fixed number of epochs.
Prints a line per run and a table with the ratio of the wall times (PyTorch / mlfun_jax: above 1,
mlfun_jax is faster). Run it on an otherwise idle machine.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

_DATA_DIR = flags.DEFINE_string("data_dir", os.environ.get("MLFUN_DATA_DIR"),
                                "Folder with cifar10/train.zip.")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Seeds 0..N-1, each run by both sides.")
_EPOCHS = flags.DEFINE_float("epochs", 9.9, "Training epochs of both sides.")
_TARGET = flags.DEFINE_float("target", 0.94, "Validation accuracy to reach (mean of the seeds).")
_THREADS = flags.DEFINE_integer("threads", 0, "PyTorch threads (0: one per core).")
_JAX_OVERRIDES = flags.DEFINE_list(
    "jax_overrides", ["batch_size=128", "grad_accum_steps=8"],
    "mlfun-train config overrides (without --config.) for the mlfun_jax side.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where runs write (default: a temporary folder).")

HERE = os.path.dirname(os.path.abspath(__file__))


def run_jax(seed, workdir):
  """(validation accuracy, wall seconds) of `mlfun-train --config=cifar10_speedrun`."""
  command = [sys.executable, "-m", "mlfun_jax.experiments.train", "--config=cifar10_speedrun",
             f"--workdir={workdir}", f"--config.seed={seed}",
             f"--config.num_epochs={_EPOCHS.value}"]
  command += [f"--config.data_dir={_DATA_DIR.value}"] if _DATA_DIR.value else []
  command += [f"--config.{o}" for o in _JAX_OVERRIDES.value]
  start = time.perf_counter()
  with open(os.path.join(workdir, "race.log"), "w") as log:
    subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
  wall = time.perf_counter() - start
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    evals = [m for m in map(json.loads, f) if "eval_accuracy" in m]
  return evals[-1]["eval_accuracy"], wall


def run_torch(seed, workdir):
  """(validation accuracy, wall seconds) of `benchmarks/speedrun_torch.py`."""
  command = [sys.executable, os.path.join(HERE, "speedrun_torch.py"), f"--seed={seed}",
             f"--epochs={_EPOCHS.value}", f"--threads={_THREADS.value}"]
  command += [f"--data_dir={_DATA_DIR.value}"] if _DATA_DIR.value else []
  start = time.perf_counter()
  out = subprocess.run(command, check=True, capture_output=True, text=True)
  wall = time.perf_counter() - start
  with open(os.path.join(workdir, "race.log"), "w") as log:
    log.write(out.stdout + out.stderr)
  return json.loads(out.stdout.strip().splitlines()[-1])["accuracy"], wall


def main(argv):
  del argv
  root = _WORKDIR.value or tempfile.mkdtemp(prefix="speedrun_race_")
  sides = {"mlfun_jax": run_jax, "PyTorch": run_torch}
  results = {name: [] for name in sides}
  for seed in range(_SEEDS.value):
    order = list(sides) if seed % 2 == 0 else list(sides)[::-1]
    for name in order:
      workdir = os.path.join(root, f"{name}_seed{seed}")
      os.makedirs(workdir, exist_ok=True)
      accuracy, wall = sides[name](seed, workdir)
      results[name].append((accuracy, wall))
      print(f"{name:<10} seed {seed}: validation accuracy {accuracy:.4f}, whole command "
            f"{wall / 60:.1f} min", flush=True)

  print(f"\n{'side':<10} {'accuracy (mean)':>16} {'wall min (mean)':>16} "
        f"{'time to ' + format(_TARGET.value, '.0%'):>14}")
  means = {}
  for name, runs in results.items():
    accuracy = sum(a for a, _ in runs) / len(runs)
    wall = sum(w for _, w in runs) / len(runs)
    means[name] = wall
    reached = f"{wall / 60:.1f} min" if accuracy >= _TARGET.value else "not reached"
    print(f"{name:<10} {accuracy:>16.4f} {wall / 60:>16.1f} {reached:>14}")
  print(f"wall time PyTorch / mlfun_jax: {means['PyTorch'] / means['mlfun_jax']:.2f}x "
        f"({_SEEDS.value} seed(s), {_EPOCHS.value} epochs, {os.cpu_count()} cores)")


if __name__ == "__main__":
  app.run(main)
