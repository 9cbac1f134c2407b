"""Input wait of the CIFAR-10 ResNet: streamed from array_record shards vs read into memory.

  python benchmarks/input_wait.py --data_dir=$MLFUN_DATA_DIR/cifar10 --steps=300 --repeats=2

Trains experiments/configs/resnet_cifar10.py for --steps steps in fresh processes, alternating the
pipelines (memory, stream, memory, stream, ...), and prints each run's share of wall time the loop
waited for its next batch (`input_wait_share` in metrics.jsonl, first log interval left out: it
holds the compilation) and its images/s. The first streamed run decodes train.zip into shards
(in --out), the others read them. Run it on an otherwise idle machine.
"""

import json
import os
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with cifar10's train.zip.", required=True)
_OUT = flags.DEFINE_string("out", "/tmp/mlfun_input_wait", "Folder for the shards and the runs.")
_STEPS = flags.DEFINE_integer("steps", 300, "Train steps per run.")
_REPEATS = flags.DEFINE_integer("repeats", 2, "Runs of each pipeline (interleaved).")
_CONFIG = flags.DEFINE_string("config", "resnet_cifar10", "Experiment config.")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(pipeline: str, index: int) -> dict:
  workdir = os.path.join(_OUT.value, f"{pipeline}_{index}_{time.time_ns()}")
  command = [sys.executable, "-m", "mlfun_jax.experiments.train", f"--config={_CONFIG.value}",
             f"--workdir={workdir}", f"--config.data_dir={_DATA_DIR.value}",
             f"--config.input_pipeline={pipeline}",
             f"--config.cache_dir={os.path.join(_OUT.value, 'cache')}",
             f"--config.num_steps={_STEPS.value}", "--config.eval_every=0",
             "--config.log_every=50", f"--config.checkpoint_every={_STEPS.value}"]
  began = time.perf_counter()
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
  if result.returncode != 0:
    raise RuntimeError(result.stderr[-3000:])
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  logged = [r for r in records if "input_wait_share" in r][1:]
  return {"wait": float(np.mean([r["input_wait_share"] for r in logged])),
          "images_per_s": float(np.mean([r["examples_per_sec"] for r in logged])),
          "wall_s": time.perf_counter() - began}


def main(argv):
  del argv
  os.makedirs(_OUT.value, exist_ok=True)
  results = {"memory": [], "stream": []}
  for i in range(_REPEATS.value):
    for pipeline in ("memory", "stream"):
      result = run(pipeline, i)
      results[pipeline].append(result)
      print(f"{pipeline:<7} run {i}: input wait {result['wait']:.2%} | "
            f"{result['images_per_s']:.0f} images/s | {result['wall_s']:.0f} s wall", flush=True)
  for pipeline, runs in results.items():
    print(f"{pipeline:<7} mean: input wait {np.mean([r['wait'] for r in runs]):.2%}, "
          f"{np.mean([r['images_per_s'] for r in runs]):.0f} images/s")
  ratio = (np.mean([r["images_per_s"] for r in results["stream"]]) /
           np.mean([r["images_per_s"] for r in results["memory"]]))
  print(f"stream / memory images/s: {ratio:.2f}x")


if __name__ == "__main__":
  app.run(main)
