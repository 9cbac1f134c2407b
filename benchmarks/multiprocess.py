"""What many processes cost: the same run as 1 process and as N processes (launch/multiprocess.sh).

  python benchmarks/multiprocess.py                       # series MNIST CNN, 300 steps, batch 128
  python benchmarks/multiprocess.py --layouts=1x2,2x1,1x8,2x4 --steps=300

Each layout PxD runs `mlfun_jax.experiments.train` for --steps steps in P processes with D CPU
devices each, same config and global batch, in a fresh workdir. Prints the wall time of the whole
command (start, compile, train, checkpoint), the steady throughput (steps/s over every log window
but the first, which holds the compile) and each layout's overhead against the first one.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_LAYOUTS = flags.DEFINE_list("layouts", ["1x2", "2x1"],
                             "PROCESSESxDEVICES layouts; the first is the baseline.")
_STEPS = flags.DEFINE_integer("steps", 300, "Train steps per run.")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Global batch size.")
_CONFIG = flags.DEFINE_string("config", "cnn_mnist", "Experiment config: a name or a file path.")
_REPEATS = flags.DEFINE_integer("repeats", 1, "Runs per layout (the best is kept).")


def _run(layout: str, workdir: str) -> dict[str, float]:
  processes, devices = (int(n) for n in layout.split("x"))
  args = [f"--cpu_devices={devices}", f"--config.num_steps={_STEPS.value}",
          f"--config.batch_size={_BATCH.value}", "--config.log_every=25",
          "--config.eval_every=0", f"--config.checkpoint_every={_STEPS.value}"]
  if processes == 1:
    command = [sys.executable, "-m", "mlfun_jax.experiments.train", f"--config={_CONFIG.value}",
               f"--workdir={workdir}", *args]
  else:
    command = ["bash", "launch/multiprocess.sh", str(processes), _CONFIG.value, workdir, *args]
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["PYTHON"] = sys.executable
  start = time.perf_counter()
  result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          check=False)
  wall = time.perf_counter() - start
  if result.returncode != 0:
    raise RuntimeError(f"{layout} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    rates = [r["steps_per_sec"] for r in map(json.loads, f) if "steps_per_sec" in r]
  steady = len(rates[1:]) / sum(1 / r for r in rates[1:])  # Harmonic mean: equal step counts.
  return {"wall_s": wall, "steps_per_sec": steady}


def main(argv):
  del argv
  print(f"{_CONFIG.value}, {_STEPS.value} steps, global batch {_BATCH.value}, "
        f"{os.cpu_count()} CPU cores")
  print(f"{'layout':>8} {'wall s':>8} {'steps/s':>8} {'images/s':>9} {'wall +%':>8} "
        f"{'step time +%':>13}")
  baseline = None
  for layout in _LAYOUTS.value:
    runs = []
    for _ in range(_REPEATS.value):
      with tempfile.TemporaryDirectory() as workdir:
        runs.append(_run(layout, workdir))
    best = {"wall_s": min(r["wall_s"] for r in runs),
            "steps_per_sec": max(r["steps_per_sec"] for r in runs)}
    baseline = baseline or best
    print(f"{layout:>8} {best['wall_s']:8.1f} {best['steps_per_sec']:8.2f} "
          f"{best['steps_per_sec'] * _BATCH.value:9.0f} "
          f"{100 * (best['wall_s'] / baseline['wall_s'] - 1):+8.1f} "
          f"{100 * (baseline['steps_per_sec'] / best['steps_per_sec'] - 1):+13.1f}", flush=True)


if __name__ == "__main__":
  app.run(main)
