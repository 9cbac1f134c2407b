"""A PyTorch reference of the CIFAR-10 speed record's recipe, on this project's data and split.

  python benchmarks/speedrun_torch.py --data_dir=$MLFUN_DATA_DIR            # 9.9 epochs, seed 0
  python benchmarks/speedrun_torch.py --data_dir=... --epochs=2 --seed=1 --threads=2

Written from the paper (Jordan 2024, arXiv:2404.00498) and the facts of its published code, in
PyTorch eager mode on the CPU, so that `benchmarks/speedrun_race.py` can time it beside
`mlfun-train --config=cifar10_speedrun`. Everything that is not the framework is the same as there:
the images and the 45,000 / 5,000 split come from `experiments/configs/cifar10_speedrun.py`'s
dataset (so both train and validate on the same images), normalised with the training images'
per-channel statistics, and the whitening filters come from `models.speedrun.whitening_kernel`.

The recipe: 2x2 whitening conv (frozen; bias trained 3 epochs) -> GELU -> three groups of conv3x3,
2x2 max-pool, BatchNorm (shift only, eps 1e-12, running averages with momentum 0.6), GELU, conv3x3,
BatchNorm, GELU (64/256/256 channels; each conv's first in-channels filters start as identities)
-> 3x3 max-pool -> linear (no bias) x 1/9. Batch 1,024 (the last partial batch of an epoch is
dropped), the summed label-smoothed (0.2) cross-entropy, Nesterov SGD (momentum 0.85) at
11.5 / (1024 (1 + 1 / (1 - 0.85))) per example with the weight decay 0.0153 per 1,024 examples
decoupled from it, BatchNorm shifts at 64x the rate, the rate rising linearly from 0.2x to 1x over
23% of the steps then falling to 0.07x; every 5 steps the weights and BatchNorm statistics are
pulled towards a slow copy (Lookahead, decay 0.95^5 (t/T)^3), which the final network is. Flips
are random in the first epoch and reversed in every odd one; shifts of up to 2 pixels with
reflected borders. Evaluation averages the logits of the image and its mirror (weight 1/2) and of
the mirrored pairs shifted one pixel up-left and down-right (1/4 each; reflected borders).

Prints one JSON line per evaluation and a final JSON summary: validation accuracy with the
test-time views and with one view, training seconds (the steps alone; data loading and evaluation
left out), and the whole run's seconds.
"""

import json
import math
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FLAGS = flags.FLAGS


def define_flags():
  """This script's flags (defined only when it runs, so that benchmarks/cnn_step.py can import
  `make_net`)."""
  flags.DEFINE_string("data_dir", None, "Folder with cifar10/train.zip (default: the config's, "
                      "i.e. $MLFUN_DATA_DIR).")
  flags.DEFINE_float("epochs", 9.9, "Training epochs.")
  flags.DEFINE_integer("seed", 0, "Seed of the initialisation, flips, shifts and order.")
  flags.DEFINE_integer("threads", 0, "PyTorch threads (0: one per core).")
  flags.DEFINE_integer("batch_size", 1024, "Training batch size.")
  flags.DEFINE_float("validation_fraction", 0.1, "Held-out fraction of train.zip.")
  flags.DEFINE_integer("eval_every", 0, "Also evaluate after every this many epochs (0: at the "
                       "end only); evaluation time is not training time.")


HYPER = dict(lr=11.5, weight_decay=0.0153, momentum=0.85, bias_scaler=64.0, label_smoothing=0.2,
             whiten_bias_epochs=3, widths=(64, 256, 256), bn_momentum=0.6, scale=1 / 9,
             warmup=0.23, initial=0.2, final=0.07, lookahead_every=5, shift=2)


def make_net(whitening_oihw=None, widths=HYPER["widths"], bn_momentum=HYPER["bn_momentum"]):
  """The recipe's network in PyTorch (NCHW float32 input), its whitening conv set from
  `whitening_oihw` float [24, 3, 2, 2] (zeros when None) and frozen."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top

  def conv(cin, cout):
    layer = nn.Conv2d(cin, cout, 3, padding="same", bias=False)
    with torch.no_grad():
      nn.init.dirac_(layer.weight[:cin])
    return layer

  def norm(c):
    layer = nn.BatchNorm2d(c, eps=1e-12, momentum=1 - bn_momentum)
    layer.weight.requires_grad = False
    return layer

  def group(cin, cout):
    return nn.Sequential(conv(cin, cout), nn.MaxPool2d(2), norm(cout), nn.GELU(),
                         conv(cout, cout), norm(cout), nn.GELU())

  whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
  with torch.no_grad():
    whiten.bias.zero_()
    whiten.weight.copy_(torch.zeros_like(whiten.weight) if whitening_oihw is None
                        else torch.as_tensor(whitening_oihw))
  whiten.weight.requires_grad = False

  class Scale(nn.Module):

    def forward(self, x):
      return x * HYPER["scale"]

  channels = (24, *widths)
  net = nn.Sequential(whiten, nn.GELU(),
                      *[group(channels[i], channels[i + 1]) for i in range(len(widths))],
                      nn.MaxPool2d(3), nn.Flatten(), nn.Linear(widths[-1], 10, bias=False),
                      Scale())
  return net.to(memory_format=torch.channels_last)


def _shift_crops(padded, shifts, size):
  """Crops [B, C, size, size] of reflect-padded images [B, C, size + 2r, size + 2r] at per-image
  offsets `shifts` int [B, 2] in 0..2r."""
  import torch  # pylint: disable=g-import-not-at-top
  out = torch.empty((len(padded), padded.shape[1], size, size), dtype=padded.dtype)
  for dy in range(int(shifts[:, 0].max()) + 1):
    for dx in range(int(shifts[:, 1].max()) + 1):
      mask = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
      if mask.any():
        out[mask] = padded[mask, :, dy:dy + size, dx:dx + size]
  return out


def train_batches(images, labels, batch_size, epoch, base_flips, generator):
  """One epoch's (images, labels) batches: shuffled, whole batches only, mirrored where
  `base_flips` bool [N] says (reversed in odd epochs), shifted up to HYPER['shift'] pixels with
  reflected borders."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  r, size = HYPER["shift"], images.shape[-1]
  flips = base_flips ^ bool(epoch % 2)
  order = torch.randperm(len(images), generator=generator)
  for start in range(0, len(images) - batch_size + 1, batch_size):
    index = order[start:start + batch_size]
    batch = images[index]
    batch = torch.where(flips[index].view(-1, 1, 1, 1), batch.flip(-1), batch)
    padded = F.pad(batch, (r,) * 4, mode="reflect")
    shifts = torch.randint(0, 2 * r + 1, (len(index), 2), generator=generator)
    yield _shift_crops(padded, shifts, size).contiguous(memory_format=torch.channels_last), \
        labels[index]


def tta_logits(net, images, batch_size=2000):
  """Logits [N, 10] averaged over the recipe's 6 test-time views (eval mode)."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  net.eval()
  out = []
  with torch.no_grad():
    for start in range(0, len(images), batch_size):
      x = images[start:start + batch_size]

      def mirrored(v):
        return 0.5 * (net(v) + net(v.flip(-1)))

      padded = F.pad(x, (1,) * 4, mode="reflect")
      size = x.shape[-1]
      moved = [padded[:, :, 0:size, 0:size], padded[:, :, 2:size + 2, 2:size + 2]]
      out.append(0.5 * mirrored(x) + 0.25 * (mirrored(moved[0]) + mirrored(moved[1])))
  return torch.cat(out)


def single_view_logits(net, images, batch_size=2000):
  import torch  # pylint: disable=g-import-not-at-top
  net.eval()
  with torch.no_grad():
    return torch.cat([net(images[s:s + batch_size]) for s in range(0, len(images), batch_size)])


def lr_factor(step, total):
  """The rate's multiplier at `step` of `total`: 0.2 -> 1 over 23% of the steps, then -> 0.07."""
  warmup = int(total * HYPER["warmup"])
  if step < warmup:
    frac = step / warmup
    return HYPER["initial"] * (1 - frac) + frac
  frac = (step - warmup) / (total - warmup)
  return (1 - frac) + HYPER["final"] * frac


def load_split(data_dir, validation_fraction):
  """(train images, train labels, validation images, validation labels) as torch tensors: images
  float32 [N, 3, 32, 32] normalised with the training images' per-channel statistics."""
  import torch  # pylint: disable=g-import-not-at-top
  from mlfun_jax.data import image_stats  # pylint: disable=g-import-not-at-top
  from mlfun_jax.data import registry  # pylint: disable=g-import-not-at-top
  from mlfun_jax.experiments.configs import cifar10_speedrun  # pylint: disable=g-import-not-at-top
  config = cifar10_speedrun.get_config()
  if data_dir:
    config.data_dir = data_dir
  config.validation_fraction = validation_fraction
  dataset = registry.load_configured_dataset(config)
  mean, std = image_stats.channel_stats(dataset.train.images)

  def tensor(split):
    x = (split.images.astype(np.float32) / 255.0 - np.float32(mean)) / np.float32(std)
    return (torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
            torch.from_numpy(split.labels.astype(np.int64)))

  return (*tensor(dataset.train), *tensor(dataset.test))


def run(data_dir, epochs, seed, threads, batch_size, validation_fraction, eval_every=0, log=print):
  """Trains the recipe and returns its summary dict (see the module docstring)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  from mlfun_jax.models import speedrun  # pylint: disable=g-import-not-at-top

  wall_start = time.perf_counter()
  torch.set_num_threads(threads or os.cpu_count())
  torch.manual_seed(seed)
  generator = torch.Generator().manual_seed(seed)
  train_x, train_y, val_x, val_y = load_split(data_dir, validation_fraction)

  train_seconds = 0.0
  start = time.perf_counter()
  kernel = speedrun.whitening_kernel(train_x[:5000].permute(0, 2, 3, 1).numpy())  # HWIO
  net = make_net(kernel.transpose(3, 2, 0, 1))
  momentum = HYPER["momentum"]
  kilostep = 1024 * (1 + 1 / (1 - momentum))
  lr = HYPER["lr"] / kilostep
  decay = HYPER["weight_decay"] * batch_size / kilostep
  lr_biases = lr * HYPER["bias_scaler"]
  named = [(k, p) for k, p in net.named_parameters() if p.requires_grad]
  norm_names = {f"{name}.bias" for name, module in net.named_modules()
                if isinstance(module, nn.BatchNorm2d)}
  norm_biases = [p for k, p in named if k in norm_names]
  others = [p for k, p in named if k not in norm_names]
  optimizer = torch.optim.SGD(
      [dict(params=norm_biases, lr=lr_biases, weight_decay=decay / lr_biases, base=lr_biases),
       dict(params=others, lr=lr, weight_decay=decay / lr, base=lr)],
      momentum=momentum, nesterov=True)
  loss_fn = nn.CrossEntropyLoss(label_smoothing=HYPER["label_smoothing"], reduction="none")
  steps_per_epoch = len(train_x) // batch_size
  total = math.ceil(steps_per_epoch * epochs)
  slow = {k: v.clone() for k, v in net.state_dict().items()}

  def lookahead(decay_now):
    with torch.no_grad():
      for k, v in net.state_dict().items():
        if v.is_floating_point():
          slow[k].lerp_(v, 1 - decay_now)
          v.copy_(slow[k])

  base_flips = torch.rand(len(train_x), generator=generator) < 0.5
  train_seconds += time.perf_counter() - start
  results, step = [], 0

  def evaluate(epoch):
    views = (tta_logits(net, val_x).argmax(1) == val_y).float().mean().item()
    single = (single_view_logits(net, val_x).argmax(1) == val_y).float().mean().item()
    results.append(dict(epoch=epoch, step=step, train_seconds=round(train_seconds, 2),
                        accuracy=views, single_view_accuracy=single))
    log(json.dumps(results[-1]))

  for epoch in range(math.ceil(epochs)):
    net[0].bias.requires_grad = epoch < HYPER["whiten_bias_epochs"]
    net.train()
    start = time.perf_counter()
    for images, labels in train_batches(train_x, train_y, batch_size, epoch, base_flips,
                                        generator):
      for group in optimizer.param_groups:
        group["lr"] = group["base"] * lr_factor(step, total)
      loss = loss_fn(net(images), labels).sum()
      optimizer.zero_grad(set_to_none=True)
      loss.backward()
      optimizer.step()
      step += 1
      if step % HYPER["lookahead_every"] == 0:
        lookahead(0.95**5 * (step / total)**3)
      if step >= total:
        lookahead(1.0)
        break
    train_seconds += time.perf_counter() - start
    if step >= total or (eval_every and (epoch + 1) % eval_every == 0):
      evaluate(epoch + 1)
  final = results[-1]
  return dict(framework=f"PyTorch {torch.__version__} eager", threads=torch.get_num_threads(),
              seed=seed, epochs=epochs, steps=total, train_images=len(train_x),
              accuracy=final["accuracy"], single_view_accuracy=final["single_view_accuracy"],
              train_seconds=round(train_seconds, 2),
              images_per_second=round(total * batch_size / train_seconds, 1),
              wall_seconds=round(time.perf_counter() - wall_start, 2))


def main(argv):
  del argv
  summary = run(FLAGS.data_dir, FLAGS.epochs, FLAGS.seed, FLAGS.threads, FLAGS.batch_size,
                FLAGS.validation_fraction, FLAGS.eval_every)
  print(json.dumps(summary))


if __name__ == "__main__":
  define_flags()
  app.run(main)
