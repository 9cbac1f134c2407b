"""Train-step throughput of the image classifiers: mlfun_jax (pmap, jit) vs PyTorch eager.

  python benchmarks/cnn_step.py                          # the digit CNN, 28x28x1, batch 128
  python benchmarks/cnn_step.py --network=cifar_cnn      # the series' CIFAR network, 32x32x3
  python benchmarks/cnn_step.py --network=resnet --batch_size=256   # the small ResNet with BatchNorm
  python benchmarks/cnn_step.py --steps=300 --cpu_devices=2 --torch_threads=2
  python benchmarks/cnn_step.py --dtype=bfloat16         # bfloat16 compute, float32 parameters

Networks (the same on both sides; softmax cross-entropy, SGD with Nesterov momentum, no dropout):
- mnist_cnn: conv32 -> pool -> conv64 -> pool -> dense256 -> dense10 (experiments/configs/cnn_mnist.py);
- cifar_cnn: conv32 -> pool -> conv64 -> conv64 -> pool -> dense512 -> dense10 (cnn_cifar10.py);
- resnet: ResNet-9 layout, widths 16/32/64/128, BatchNorm (resnet_cifar10.py); mlfun_jax averages
  BatchNorm statistics across devices, as in training;
- speedrun: the CIFAR-10 speedrun network (mlfun_jax/models/speedrun.py: frozen 2x2 whitening
  conv, conv groups of 64/256/256 channels with BatchNorm and GELU); its PyTorch twin is
  benchmarks/speedrun_torch.py's (channels-last, as there).
--dtype=bfloat16: mlfun_jax with config.dtype='bfloat16' (bfloat16 convolutions and matmuls,
float32 parameters, optimizer state and loss), PyTorch under torch.autocast with bfloat16 (the same
split).
Prints compile time and steady-state images/s, and the floating-point operations per second that
rate sustains (XLA's count of the forward and backward pass per image x images/s, the same count
for every row); run on an otherwise idle machine.
PyTorch is optional (`pip install -e '.[bench]'` or `pip install torch==2.13.0`).
"""

import os
import sys
import time

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_STEPS = flags.DEFINE_integer("steps", 200, "Timed steps per variant (after warm-up).")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Global batch size.")
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "XLA CPU devices for pmap (0: one per core).")
_TORCH_THREADS = flags.DEFINE_integer("torch_threads", 0, "PyTorch threads (0: one per core).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Timed repeats per variant; the best is reported.")
_NETWORK = flags.DEFINE_enum("network", "mnist_cnn",
                             ["mnist_cnn", "cifar_cnn", "resnet", "speedrun"],
                             "Which network to time.")
_JAX_ONLY = flags.DEFINE_bool("jax_only", False, "Time only the pmapped mlfun_jax step (no "
                              "1-device run, no PyTorch): benchmarks/xla_cpu_flags.py's unit.")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"],
                           "Compute dtype of both sides (parameters stay float32).")

# network -> (config file, image shape); the speedrun network takes the CIFAR config's loop.
NETWORKS = {
    "mnist_cnn": ("cnn_mnist", (28, 28, 1)),
    "cifar_cnn": ("cnn_cifar10", (32, 32, 3)),
    "resnet": ("resnet_cifar10", (32, 32, 3)),
    "speedrun": ("cnn_cifar10", (32, 32, 3)),
}


def timed_network(network, dtype="float32", augmentation=False):
  """(config, model, image shape) of the timed step: the network's config with dropout, label
  smoothing and (unless `augmentation`) augmentation off, plain SGD with Nesterov momentum, compute
  in `dtype`; the model is the config's, or `speedrun.SpeedrunNet` in that dtype."""
  import importlib  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from mlfun_jax.classification import model as model_lib  # pylint: disable=g-import-not-at-top
  from mlfun_jax.models import speedrun  # pylint: disable=g-import-not-at-top

  config_name, shape = NETWORKS[network]
  config = importlib.import_module(f"mlfun_jax.experiments.configs.{config_name}").get_config()
  if "dropout_rate" in config.model:
    config.model.dropout_rate = 0.0
  if not augmentation:
    for field in config.augment:
      config.augment[field] = type(config.augment[field])(0)
  config.label_smoothing = 0.0
  config.optimizer.name = "momentum"
  config.optimizer.learning_rate = 0.01
  config.optimizer.weight_decay = 0.0
  config.optimizer.schedule = "constant"
  config.dtype = dtype
  if network == "speedrun":
    model = speedrun.SpeedrunNet(num_outputs=10, dtype=jnp.dtype(dtype))
  else:
    model = model_lib.create_model(config, 10)
  return config, model, shape


def _batches(num, batch_size, shape, seed=0):
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num, batch_size, *shape), dtype=np.uint8)
  labels = rng.integers(0, 10, (num, batch_size), dtype=np.int32)
  return images, labels


def bench_jax(network, devices, batch_size, steps, repeats, augmentation=False,
              dtype="float32"):
  """(compile seconds, best images/s) of the mlfun_jax train step pmapped over `devices`.

  augmentation: keep the config's on-device augmentation (off for the PyTorch comparison).
  dtype: config.dtype, the compute dtype ('float32' or 'bfloat16').
  """
  import jax  # pylint: disable=g-import-not-at-top
  from mlfun_jax import data  # pylint: disable=g-import-not-at-top
  from mlfun_jax.core import train  # pylint: disable=g-import-not-at-top
  from mlfun_jax.classification import model as model_lib  # pylint: disable=g-import-not-at-top
  from mlfun_jax.classification import task as classification  # pylint: disable=g-import-not-at-top
  import flax.jax_utils  # pylint: disable=g-import-not-at-top

  config, model, shape = timed_network(network, dtype, augmentation)
  n = len(devices)
  data.check_batch_size(batch_size, process_count=1, local_device_count=n)
  state = model_lib.create_state(model, config, shape, steps, jax.random.key(0))
  channels = shape[-1]
  step = classification.make_train_step(model, config, [0.5] * channels, [0.25] * channels)
  p_step = train.pmap_train_step(step, jax.random.key(1), devices=devices)
  replicated = flax.jax_utils.replicate(state, devices)
  images, labels = _batches(8, batch_size, shape)
  batches = [{"image": images[i].reshape(n, -1, *shape), "label": labels[i].reshape(n, -1)}
             for i in range(len(images))]

  start = time.perf_counter()
  replicated, metrics = p_step(replicated, batches[0])
  jax.block_until_ready(metrics)
  compile_seconds = time.perf_counter() - start
  best = 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    pending = []
    for i in range(steps):
      replicated, metrics = p_step(replicated, batches[i % len(batches)])
      pending.append(metrics)
      if len(pending) >= 4:  # The training loop's bound on in-flight steps.
        jax.block_until_ready(pending.pop(0))
    jax.block_until_ready((replicated, pending))
    best = max(best, steps * batch_size / (time.perf_counter() - start))
  return compile_seconds, best


def flops_per_image(network, batch_size=128, dtype="float32"):
  """XLA's count of floating-point operations per image of the timed network's (`timed_network`)
  training forward and backward pass (the gradient of the softmax cross-entropy; the optimizer
  update left out), from the compiled program's cost analysis on one device."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  _, model, shape = timed_network(network, dtype)
  if hasattr(model, "bn_axis_name"):  # One device: batch statistics of the batch itself.
    model = model.clone(bn_axis_name=None)
  variables = model.init(jax.random.key(0), jnp.zeros((1, *shape)), train=False)

  def loss(params, images, labels):
    logits, _ = model.apply({**variables, "params": params}, images, train=True,
                            rngs={"dropout": jax.random.key(1)}, mutable=["batch_stats"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  compiled = jax.jit(jax.grad(loss)).lower(
      variables["params"], jnp.zeros((batch_size, *shape)),
      jnp.zeros((batch_size,), jnp.int32)).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return float(cost["flops"]) / batch_size


def torch_network(network):
  """The PyTorch twin of `network` (NCHW input)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  if network == "mnist_cnn":
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 256), nn.ReLU(), nn.Linear(256, 10))
  if network == "speedrun":
    from benchmarks import speedrun_torch  # pylint: disable=g-import-not-at-top
    return speedrun_torch.make_net()
  if network == "cifar_cnn":
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(8 * 8 * 64, 512), nn.ReLU(), nn.Linear(512, 10))

  def conv_bn(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())

  class Residual(nn.Module):

    def __init__(self, c):
      super().__init__()
      self.body = nn.Sequential(conv_bn(c, c), conv_bn(c, c))

    def forward(self, x):
      return x + self.body(x)

  class ResNet(nn.Module):

    def __init__(self):
      super().__init__()
      self.features = nn.Sequential(
          conv_bn(3, 16), conv_bn(16, 32), nn.MaxPool2d(2), Residual(32),
          conv_bn(32, 64), nn.MaxPool2d(2), conv_bn(64, 128), nn.MaxPool2d(2), Residual(128))
      self.head = nn.Linear(128, 10)

    def forward(self, x):
      return self.head(torch.amax(self.features(x), dim=(2, 3))) * 0.125

  return ResNet()


def bench_torch(network, batch_size, steps, repeats, threads, dtype="float32"):
  """(first-step seconds, best images/s) of the same network in PyTorch eager mode; dtype
  'bfloat16' runs the forward pass under CPU autocast (bfloat16 convolutions and matmuls, float32
  parameters and loss)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(threads)
  torch.manual_seed(0)
  model = torch_network(network)
  optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
  loss_fn = nn.CrossEntropyLoss()
  images, labels = _batches(8, batch_size, NETWORKS[network][1])
  batches = [(torch.from_numpy(images[i]).permute(0, 3, 1, 2).float().div(255.0),
              torch.from_numpy(labels[i]).long()) for i in range(len(images))]

  def step(x, y):
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
      loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss

  start = time.perf_counter()
  step(*batches[0])
  first = time.perf_counter() - start
  best = 0.0
  for _ in range(repeats):
    start = time.perf_counter()
    for i in range(steps):
      step(*batches[i % len(batches)])
    best = max(best, steps * batch_size / (time.perf_counter() - start))
  return first, best


def main(argv):
  del argv
  from mlfun_jax.core import parallel  # pylint: disable=g-import-not-at-top
  parallel.configure_cpu_devices(_CPU_DEVICES.value)
  import jax  # pylint: disable=g-import-not-at-top
  devices = jax.local_devices()
  batch, steps, repeats, network = _BATCH.value, _STEPS.value, _REPEATS.value, _NETWORK.value
  dtype = _DTYPE.value
  print(f"{network}: jax {jax.__version__} on {len(devices)} {devices[0].platform} devices, "
        f"{os.cpu_count()} cores; batch {batch}, {steps} steps x {repeats} repeats (best); "
        f"compute dtype {dtype}")
  rows = []
  compile_s, rate = bench_jax(network, devices, batch, steps, repeats, dtype=dtype)
  rows.append((f"mlfun_jax pmap over {len(devices)} devices", compile_s, rate))
  if len(devices) > 1 and not _JAX_ONLY.value:
    compile_s, rate = bench_jax(network, devices[:1], batch, steps, repeats, dtype=dtype)
    rows.append(("mlfun_jax on 1 device", compile_s, rate))
  try:
    if _JAX_ONLY.value:
      raise ImportError
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    if not _JAX_ONLY.value:
      print("(PyTorch not installed: pip install torch==2.13.0 for the side-by-side number)")
  else:
    threads = _TORCH_THREADS.value or os.cpu_count()
    first_s, rate = bench_torch(network, batch, steps, repeats, threads, dtype)
    rows.append((f"PyTorch {torch.__version__} eager, {threads} threads", first_s, rate))
  gflop = flops_per_image(network, batch, dtype) / 1e9
  print(f"XLA's count of the training forward + backward pass: {gflop:.4f} GFLOP per image")
  print(f"{'variant':<44} {'compile/first step s':>20} {'images/s':>10} {'GFLOP/s':>8}")
  for name, seconds, rate in rows:
    print(f"{name:<44} {seconds:>20.2f} {rate:>10.0f} {rate * gflop:>8.1f}")
  torch_rows = [r for r in rows if r[0].startswith("PyTorch")]
  if torch_rows:
    print(f"mlfun_jax pmap / PyTorch eager: {rows[0][2] / torch_rows[0][2]:.2f}x")


if __name__ == "__main__":
  app.run(main)
