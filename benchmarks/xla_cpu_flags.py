"""Which XLA CPU options speed up the train step: each variant times `cnn_step.py` in its own
process (XLA_FLAGS are read once per process), interleaved over rounds with the order rotated, and
is reported as its median images/s and the ratio to the default in the same run.

  python benchmarks/xla_cpu_flags.py                                   # all networks, 3 rounds
  python benchmarks/xla_cpu_flags.py --networks=mnist_cnn --rounds=5 --steps=300

Variants (the XLA options Keras and the XLA CPU backend document; an option this jaxlib does not
know aborts the process, and the variant is reported as failed):
- default: the jaxlib's own choices;
- no_xnnpack: --xla_cpu_use_xnnpack=false;
- onednn: --xla_cpu_experimental_onednn_custom_call=true --xla_cpu_use_xnnpack=false (oneDNN
  custom calls for convolutions and matmuls, as Keras documents for CPU);
- fast_math: --xla_cpu_enable_fast_math=true (reassociation, approximate functions);
- bfloat16: the default options with config.dtype='bfloat16' (cnn_step.py --dtype=bfloat16).
Run it on an otherwise idle machine; it says which processor (`lscpu`) it ran on.
"""

import os
import re
import statistics
import subprocess
import sys

from absl import app
from absl import flags

_NETWORKS = flags.DEFINE_list("networks", ["mnist_cnn", "cifar_cnn", "resnet"],
                              "cnn_step.py networks to time.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved rounds (each variant once per round).")
_STEPS = flags.DEFINE_integer("steps", 150, "Timed steps of one measurement.")
_BATCH = flags.DEFINE_integer("batch_size", 128, "Global batch size.")

VARIANTS = {
    "default": ("", []),
    "no_xnnpack": ("--xla_cpu_use_xnnpack=false", []),
    "onednn": ("--xla_cpu_experimental_onednn_custom_call=true --xla_cpu_use_xnnpack=false", []),
    "fast_math": ("--xla_cpu_enable_fast_math=true", []),
    "bfloat16": ("", ["--dtype=bfloat16"]),
}
_RATE = re.compile(r"^mlfun_jax pmap over \d+ devices\s+[\d.]+\s+([\d.]+)\s*$", re.MULTILINE)


def processor() -> str:
  """lscpu's model name, and whether it reports avx512_bf16."""
  try:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
  except OSError:
    return "unknown (no lscpu)"
  name = next((line.split(":", 1)[1].strip() for line in out.splitlines()
               if line.startswith("Model name")), "unknown")
  return f"{name}, avx512_bf16 {'yes' if 'avx512_bf16' in out else 'no'}"


def measure(network: str, variant: str) -> float | None:
  """images/s of the pmapped mlfun_jax step under a variant, or None when the process failed."""
  xla_flags, extra = VARIANTS[variant]
  env = dict(os.environ)
  env["XLA_FLAGS"] = " ".join(f for f in (env.get("XLA_FLAGS", ""), xla_flags) if f)
  script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cnn_step.py")
  result = subprocess.run(
      [sys.executable, script, f"--network={network}", f"--steps={_STEPS.value}",
       f"--batch_size={_BATCH.value}", "--repeats=1", "--jax_only", *extra],
      capture_output=True, text=True, env=env, check=False)
  found = _RATE.search(result.stdout)
  if result.returncode or not found:
    tail = (result.stderr.strip().splitlines() or ["?"])[-1]
    print(f"  {network} {variant}: failed ({tail[:160]})", flush=True)
    return None
  return float(found.group(1))


def main(argv):
  del argv
  print(f"processor: {processor()}; {os.cpu_count()} cores", flush=True)
  names = list(VARIANTS)
  for network in _NETWORKS.value:
    rates = {v: [] for v in names}
    for r in range(_ROUNDS.value):
      for variant in names[r % len(names):] + names[:r % len(names)]:  # Rotated order.
        rate = measure(network, variant)
        if rate is not None:
          rates[variant].append(rate)
    base = statistics.median(rates["default"]) if rates["default"] else None
    print(f"{network} (batch {_BATCH.value}, {_STEPS.value} steps, {_ROUNDS.value} rounds):")
    for variant in names:
      if not rates[variant]:
        print(f"  {variant:<11} failed")
        continue
      median = statistics.median(rates[variant])
      ratio = f"{median / base:.2f}x default" if base else ""
      runs = ", ".join(f"{x:.0f}" for x in rates[variant])
      print(f"  {variant:<11} {median:8.0f} images/s (runs {runs}) {ratio}", flush=True)


if __name__ == "__main__":
  app.run(main)
