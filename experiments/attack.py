r"""Attacks a trained classifier with adversarial examples: how fragile is it?

On the checkpoint's test split (the dataset of its saved config):
  mlfun-attack --workdir=workdirs/mnist_full --attack=pgd --steps=20 \
      --epsilon=0.1,0.2,0.3 --output_dir=/tmp/attack_mnist
  mlfun-attack --workdir=workdirs/mnist_full --attack=targeted --steps=100 \
      --epsilon=0.2 --output_dir=/tmp/targeted_mnist          # random target class per image
  mlfun-attack --workdir=workdirs/resnet_cifar10 --attack=pgd --steps=10 \
      --epsilon=2/255,4/255,8/255 --num_examples=1000 --output_dir=/tmp/attack_cifar
One image file toward a chosen class, as in the series (the cat that becomes a toaster):
  mlfun-attack --workdir=workdirs/resnet_cifar10 --image=cat.jpg --target=truck \
      --attack=targeted --epsilon=8/255 --steps=200 --output_dir=/tmp/cat

Attacks (mlfun_jax/adversarial/attacks.py; epsilon bounds every pixel's change, pixels in
[0, 1]): fgsm, pgd (L-infinity, random start, --steps of size --step_size, default
2.5 * epsilon / steps; --restarts; --target makes it targeted) and targeted (the series' attack: up the gradient of the target
probability until it reaches --threshold or the --steps budget runs out; without --target every image
gets a random other class). Writes to --output_dir (default WORKDIR/attack): report.json,
accuracy_curve.png (success_curve.png for targeted attacks) and examples_eps<epsilon>.png (original,
10x-amplified perturbation, adversarial image, each with the predicted class and probability); with
--image, adversarial_eps<epsilon>.png is the attacked image itself at the model's resolution.
"""

import fractions
import json
import os
import sys
import time

from absl import app
from absl import flags
from absl import logging
import jax
import numpy as np

from mlfun_jax.adversarial import pictures as attack_pictures
from mlfun_jax.core import cli
from mlfun_jax.core import files
from mlfun_jax.data import images as image_files
from mlfun_jax.core import parallel
from mlfun_jax.core import pictures
from mlfun_jax.adversarial import robustness
from mlfun_jax.core.errors import UserError

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained classifier.")
_ATTACK = flags.DEFINE_enum("attack", "pgd", robustness.ATTACKS, "Which attack.")
_EPSILON = flags.DEFINE_list("epsilon", None,
                             "L-infinity bounds (pixels in [0, 1]), e.g. 0.1,0.2,0.3 or 8/255.")
_STEPS = flags.DEFINE_integer("steps", 20, "PGD steps, or the targeted attack's step budget "
                              "(at most 100,000).", lower_bound=1, upper_bound=100_000)
_STEP_SIZE = flags.DEFINE_float("step_size", None, "Step size (default 2.5 * epsilon / steps).")
flags.register_validator("step_size", lambda value: value is None or value > 0,
                         message="must be > 0 (a negative step walks away from the attack)")
_RESTARTS = flags.DEFINE_integer("restarts", 1, "Untargeted PGD: random restarts (at most 100).",
                                 lower_bound=1, upper_bound=100)
_RANDOM_START = flags.DEFINE_bool("random_start", True, "PGD starts at a random point of the ball.")
_TARGET = flags.DEFINE_string("target", None,
                              "Target class (name or index): makes fgsm/pgd targeted; the "
                              "targeted attack's class (default: a random other class per image).")
_THRESHOLD = flags.DEFINE_float("threshold", 0.98,
                                "Targeted attack: stop once the target probability reaches this.")
flags.register_validator("threshold", lambda value: 0 < value <= 1,
                         message="must be a probability in (0, 1]")
_NUM_EXAMPLES = flags.DEFINE_integer("num_examples", 0,
                                     "Attack N test images drawn at random with --seed (0: all).",
                                     lower_bound=0)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 500, "Images per batch.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "Seed of random starts and random targets.")
_SHOW = flags.DEFINE_integer("show", 8, "Examples in each examples_*.png.", lower_bound=1)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Folder for report.json, accuracy_curve.png (success_curve.png for "
    "targeted attacks), examples_eps<epsilon>.png and, with --image, adversarial_eps<epsilon>.png; "
    "default WORKDIR/attack.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Overrides the data_dir of the saved config.")
_IMAGE = flags.DEFINE_string("image", None, "Attack this image file toward --target instead.")
_INVERT = flags.DEFINE_enum("invert", "auto", image_files.INVERT_CHOICES,
                            "--image: invert grey images (auto: when the border is light).")
_FIT = flags.DEFINE_enum("fit", "auto", ("auto",) + image_files.FIT_CHOICES,
                         "--image: fit to the model's input (auto: as recorded with the checkpoint).")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "On CPU: XLA devices to split the processor into (0: one per core).",
    lower_bound=0, upper_bound=1024)
flags.mark_flags_as_required(["workdir", "epsilon"])


def parse_epsilons(values: list[str]) -> list[float]:
  """['0.1', '8/255'] -> [0.1, 0.0313...]; UserError for anything else or outside (0, 1]."""
  epsilons = []
  for value in values:
    try:
      epsilon = float(fractions.Fraction(value.strip()))
    except OverflowError as e:
      raise UserError(f"--epsilon={value} is outside [0, 1] (pixels are in [0, 1])") from e
    except (ValueError, ZeroDivisionError) as e:
      raise UserError(f"--epsilon={value!r} is not a number or fraction like 8/255") from e
    if not 0.0 <= epsilon <= 1.0:
      raise UserError(f"--epsilon={value} is outside [0, 1] (pixels are in [0, 1])")
    epsilons.append(epsilon)
  return epsilons


def class_index(name: str, class_names: list[str]) -> int:
  """--target as a class name or index -> index; UserError naming the classes otherwise."""
  if name in class_names:
    return class_names.index(name)
  if name.isdigit() and int(name) < len(class_names):
    return int(name)
  raise UserError(f"--target={name!r} is not a class of this model: {', '.join(class_names)}")


def _test_split(config):
  """The test split of the dataset in the checkpoint's saved config (--data_dir overrides its
  data_dir)."""
  from mlfun_jax import data  # pylint: disable=g-import-not-at-top
  if _DATA_DIR.value:
    config.data_dir = cli.check_data_dir(_DATA_DIR.value)
  return data.load_configured_dataset(config).test


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  parallel.configure_cpu_devices(_CPU_DEVICES.value)
  from mlfun_jax.classification import inference  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    start_time = time.perf_counter()
    epsilons = parse_epsilons(_EPSILON.value)
    classifier = inference.Classifier(_WORKDIR.value)
    names = classifier.class_names
    target = None if _TARGET.value is None else class_index(_TARGET.value, names)
    if _IMAGE.value and target is None:
      raise UserError("--image needs --target: the class to turn the image into")
    spec = robustness.AttackSpec(
        name=_ATTACK.value, steps=_STEPS.value, step_size=_STEP_SIZE.value,
        random_start=_RANDOM_START.value, restarts=_RESTARTS.value,
        targeted=target is not None, threshold=_THRESHOLD.value)
    out = cli.make_output_dir(_OUTPUT_DIR.value or os.path.join(_WORKDIR.value, "attack"))
    if _IMAGE.value:
      images = classifier.load_image(_IMAGE.value, _INVERT.value, _FIT.value)[None]
      labels = classifier.logits(images).argmax(-1)  # The model's own answer plays the label.
      source = {"image": _IMAGE.value}
    else:
      test = _test_split(classifier.config)
      images, labels = test.images, test.labels
      if 0 < _NUM_EXAMPLES.value < len(labels):  # Splits may be sorted by class: sample them.
        rng = np.random.default_rng(_SEED.value)
        chosen = np.sort(rng.choice(len(labels), _NUM_EXAMPLES.value, replace=False))
        images, labels = images[chosen], labels[chosen]
      source = {"dataset": classifier.meta["dataset"], "split": "test"}
    targets = None if target is None else np.full(len(labels), target, np.int32)
    logging.info("Attacking %d images with %s at epsilon %s", len(images), spec, epsilons)
    outcome = robustness.run_attack(classifier, images, labels, spec, epsilons, targets=targets,
                                    seed=_SEED.value, batch_size=_BATCH_SIZE.value,
                                    keep=_SHOW.value)
    results = outcome["results"]
    report = {"workdir": _WORKDIR.value, "step": classifier.step, **source,
              "num_examples": len(images), "attack": vars(spec) | {"target": _TARGET.value},
              "results": results, "devices": len(jax.local_devices()),
              "command": " ".join(["mlfun-attack"] + sys.argv[1:])}
    with cli.writing_to(out):
      for epsilon, examples in zip(epsilons, outcome["examples"]):
        tag = f"{epsilon:.4g}"
        attack_pictures.example_grid(
            outcome["original"], examples["adversarial"], outcome["clean_probabilities"],
            examples["probabilities"], names, os.path.join(out, f"examples_eps{tag}.png"),
            labels=None if _IMAGE.value else outcome["labels"], targets=outcome["targets"],
            title=f"{spec.name} epsilon {tag}")
        if _IMAGE.value:
          pictures.save_png(pictures.to_uint8(examples["adversarial"][0]),
                            os.path.join(out, f"adversarial_eps{tag}.png"))
      if not _IMAGE.value:
        metric, ylabel = (("success_rate", "targeted success (%)") if spec.is_targeted
                          else ("accuracy", "accuracy under attack (%)"))
        name = "success_curve.png" if spec.is_targeted else "accuracy_curve.png"
        attack_pictures.curve(
            epsilons, [r[metric] for r in results], os.path.join(out, name), ylabel=ylabel,
            clean=None if spec.is_targeted else results[0]["clean_accuracy"],
            title=f"{source.get('dataset', '')} {spec.name}-{spec.steps}, {len(images)} images")
      report["wall_seconds"] = round(time.perf_counter() - start_time, 1)
      files.write_json(os.path.join(out, "report.json"), report, indent=2)
  print(json.dumps({"output_dir": out, "results": results}), flush=True)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
