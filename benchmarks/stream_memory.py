"""Peak memory of a classification run as the dataset grows: streamed vs read into memory.

  python benchmarks/stream_memory.py --out=/tmp/stream_memory              # 5k, 50k, 200k images
  python benchmarks/stream_memory.py --sizes=5000,50000 --steps=100

For each size it writes a zip of that many JPEGs (24-48 pixels a side, 10 classes; kept in --out),
then trains the digit CNN on it (image_size 32, batch 128, --steps steps) in fresh processes and
reports each process' peak resident memory (ru_maxrss) and its images/s:
- stream, first run: decodes the zip into array_record shards once, then trains;
- stream, second run: reads the shards (the steady state);
- memory (up to --memory_max images): decodes every image into one array, then trains.
The streamed runs' peaks should stay flat as the dataset grows; the in-memory run's grows with it.
"""

import io
import json
import os
import subprocess
import sys
import time
import zipfile

from absl import app
from absl import flags
import numpy as np
from PIL import Image

_OUT = flags.DEFINE_string("out", "/tmp/mlfun_stream_memory", "Folder for the zips, caches, runs.")
_SIZES = flags.DEFINE_list("sizes", ["5000", "50000", "200000"], "Dataset sizes (images).")
_STEPS = flags.DEFINE_integer("steps", 200, "Train steps per run.")
_MEMORY_MAX = flags.DEFINE_integer("memory_max", 200_000, "Largest size also run in memory.")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_zip(path: str, count: int) -> None:
  """`count` JPEGs of 24-48 pixels a side in 10 class folders (noise around a class colour)."""
  rng = np.random.default_rng(count)
  colours = rng.integers(0, 256, (10, 3))
  temporary = path + ".tmp"
  with zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED) as zf:
    for i in range(count):
      label = i % 10
      height, width = (int(v) for v in rng.integers(24, 49, size=2))
      pixels = (colours[label] + rng.integers(-40, 40, (height, width, 3))).clip(0, 255)
      out = io.BytesIO()
      Image.fromarray(pixels.astype(np.uint8)).save(out, "JPEG", quality=85)
      zf.writestr(f"train/class_{label}/{i:06d}.jpg", out.getvalue())
  os.replace(temporary, path)


_WRAPPER = ("import atexit, resource, runpy, sys\n"
            "atexit.register(lambda: print('PEAK_RSS_KIB', resource.getrusage("
            "resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr, flush=True))\n"
            "sys.argv = ['train'] + sys.argv[1:]\n"
            "runpy.run_module('mlfun_jax.experiments.train', run_name='__main__')\n")


def run(zip_path: str, workdir: str, cache: str, pipeline: str) -> dict:
  """Trains in a fresh process; returns its peak RSS (MiB), wall time and images/s."""
  command = [sys.executable, "-c", _WRAPPER, "--config=cnn_mnist",
             f"--workdir={workdir}", "--config.dataset=image_folder",
             f"--config.data_dir={zip_path}", "--config.image_size=32",
             f"--config.input_pipeline={pipeline}", f"--config.cache_dir={cache}",
             f"--config.num_steps={_STEPS.value}", "--config.eval_every=0",
             "--config.log_every=50", "--config.validation_fraction=0.02"]
  began = time.perf_counter()
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - began
  if result.returncode != 0:
    raise RuntimeError(result.stderr[-3000:])
  peak_kib = [int(line.split()[1]) for line in result.stderr.splitlines()
              if line.startswith("PEAK_RSS_KIB")][-1]
  records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
  rates = [r["examples_per_sec"] for r in records if "examples_per_sec" in r][1:]
  waits = [r["input_wait_share"] for r in records if "input_wait_share" in r][1:]
  return {"peak_mib": peak_kib / 1024, "wall_s": wall, "images_per_s": float(np.mean(rates)),
          "input_wait": float(np.mean(waits))}


def main(argv):
  del argv
  os.makedirs(_OUT.value, exist_ok=True)
  rows = []
  for size in (int(s) for s in _SIZES.value):
    zip_path = os.path.join(_OUT.value, f"images_{size}.zip")
    if not os.path.exists(zip_path):
      began = time.perf_counter()
      write_zip(zip_path, size)
      print(f"wrote {size:,} JPEGs in {time.perf_counter() - began:.0f} s", flush=True)
    cache = os.path.join(_OUT.value, f"cache_{size}")
    variants = [("stream, decoding once", "stream"), ("stream, from shards", "stream")]
    if size <= _MEMORY_MAX.value:
      variants.append(("memory", "memory"))
    for i, (name, pipeline) in enumerate(variants):
      workdir = os.path.join(_OUT.value, f"run_{size}_{i}_{time.time_ns()}")
      result = run(zip_path, workdir, cache, pipeline)
      rows.append((size, name, result))
      print(f"{size:>8,} | {name:<22} | peak RSS {result['peak_mib']:7.0f} MiB | "
            f"{result['images_per_s']:6.0f} images/s | input wait {result['input_wait']:.1%} | "
            f"{result['wall_s']:.0f} s", flush=True)
  steady = [r["peak_mib"] for _, name, r in rows if name == "stream, from shards"]
  if steady:
    print(f"streamed steady-state peak RSS: {min(steady):.0f}-{max(steady):.0f} MiB, "
          f"largest / smallest = {max(steady) / min(steady):.2f}")


if __name__ == "__main__":
  app.run(main)
