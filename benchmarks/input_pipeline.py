"""Input pipeline speed beside the train step's: can the data keep up with the model?

  python benchmarks/input_pipeline.py        # CIFAR-10 zip of the data folder (mlfun-data fetch cifar10)

Measures, on CIFAR-10 from train.zip (50,000 JPEGs):
1. the first load: listing and decoding every JPEG (thread pool) into the on-disk cache, images/s;
2. a cached load (memory-mapped arrays + the split), seconds;
3. host batching (`data.train_batches`: per-step gather laid out [devices, per_device, ...]) and
   batching plus the copy of each device's share onto it (`jax.device_put`), images/s;
4. the train steps (series CNN and small ResNet, with the configs' on-device augmentation), images/s;
and prints how many times faster than each step the pipeline is (the goal: at least 3x).
Shares the flags of cnn_step.py (--steps, --batch_size, --cpu_devices, --repeats).
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import cnn_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from mlfun_jax.data import sources  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
_DATA_DIR = flags.DEFINE_string("data_dir", sources.default_data_dir(),
                                "Folder holding cifar10/train.zip.")


def _rate(count, seconds):
  return count / max(seconds, 1e-9)


def main(argv):
  del argv
  from mlfun_jax.core import parallel  # pylint: disable=g-import-not-at-top
  parallel.configure_cpu_devices(FLAGS.cpu_devices)
  import jax  # pylint: disable=g-import-not-at-top
  from mlfun_jax import data  # pylint: disable=g-import-not-at-top

  devices = jax.local_devices()
  batch, steps = FLAGS.batch_size, FLAGS.steps
  print(f"{len(devices)} {devices[0].platform} devices, {os.cpu_count()} cores, batch {batch}")
  rows = []
  with tempfile.TemporaryDirectory() as cache:
    for stage in ("first load: decode 50,000 JPEGs into the cache",
                  "cached load (memory map + split)"):
      start = time.perf_counter()
      dataset = data.load_image_dataset("cifar10", _DATA_DIR.value, image_size=32,
                                        cache_dir=cache)
      rows.append((stage, dataset.info["num_images"], time.perf_counter() - start))
    assert dataset.info["from_cache"]

  layout = dict(global_batch_size=batch, seed=0, local_device_count=len(devices))
  batches = data.train_batches(dataset.train, **layout)
  next(batches)
  start = time.perf_counter()
  for _ in range(steps):
    next(batches)
  rows.append(("host batching (train_batches)", steps * batch, time.perf_counter() - start))

  batches = data.train_batches(dataset.train, start_step=1, **layout)
  start = time.perf_counter()
  pending = []
  for _ in range(steps):
    b = next(batches)
    pending.append([jax.device_put(x[i], d) for x in b.values() for i, d in enumerate(devices)])
    if len(pending) > 4:
      jax.block_until_ready(pending.pop(0))
  jax.block_until_ready(pending)
  pipeline_rate = _rate(steps * batch, time.perf_counter() - start)
  rows.append(("host batching + copy to devices", steps * batch, steps * batch / pipeline_rate))

  print(f"{'stage':<52} {'images':>8} {'seconds':>8} {'images/s':>10}")
  for name, count, seconds in rows:
    print(f"{name:<52} {count:>8} {seconds:>8.2f} {_rate(count, seconds):>10.0f}")
  for network, network_batch in (("cifar_cnn", batch), ("resnet", 2 * batch)):
    _, step_rate = cnn_step.bench_jax(network, devices, network_batch, min(steps, 50),
                                      FLAGS.repeats, augmentation=True)
    print(f"train step {network} (batch {network_batch}, with augmentation): {step_rate:.0f} "
          f"images/s; pipeline is {pipeline_rate / step_rate:.0f}x faster")


if __name__ == "__main__":
  app.run(main)
