"""Checks shared by the families' bfloat16 tests (config.dtype = 'bfloat16').

With bfloat16 the layers compute in bfloat16 while parameters, optimizer state, BatchNorm
statistics, losses and metrics stay float32; a step on 8 devices computes what it computes on 1
device up to bfloat16 rounding, within the tolerances below (float32 runs keep their exact checks).
"""

import flax.jax_utils
import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import parallel
from mlfun_jax.core import train

# Relative tolerance of the float32 losses, 1 device against 8, after a few steps. bfloat16 keeps
# 8 significant bits (a rounding moves a value by up to 2**-9 = 0.2%); the same examples meet the
# same bfloat16 roundings on 1 and 8 devices except where XLA sums in another order, and a loss
# averages many of them: measured up to 1e-4 across the families (float32: 1e-7). 2e-3 is 20x
# that and still below what a real difference gives (4 wrong labels of 64: 4e-3 to 1e-2).
BF16_METRIC_RTOL = 2e-3
# Parameters after a few steps, 1 device against 8: the norm of their difference over the norm of
# what the steps moved them. Gradients are rounded to bfloat16 per device before the mean over
# devices, and Adam turns a rounding that flips the sign of a near-zero gradient entry into a
# whole step of the other sign, so some entries end a learning rate apart: measured 0.002-0.04
# across the families (float32: ~1e-4). 0.15 leaves room for other processors and XLA versions
# and still fails a real difference (4 wrong labels of 64 give 0.5).
BF16_PARAM_DRIFT = 0.15


def assert_float32(tree, what: str) -> None:
  """Every floating-point leaf of `tree` (arrays or jax.ShapeDtypeStructs) is float32."""
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    dtype = leaf.dtype if hasattr(leaf, 'dtype') else np.asarray(leaf).dtype  # Arrays or shapes.
    if jnp.issubdtype(dtype, jnp.floating):
      assert dtype == jnp.float32, f'{what}{jax.tree_util.keystr(path)} is {dtype}'


def assert_devices_agree(initial, tree1, tree8, metrics1, metrics8, names=None) -> None:
  """bfloat16 steps on 1 and on 8 devices agree: the metrics `names` (all: None) of the dicts of
  per-device arrays within BF16_METRIC_RTOL, the parameter trees `tree1` and `tree8` (from
  `initial`) within BF16_PARAM_DRIFT of how far they moved."""
  for name in metrics1 if names is None else names:
    np.testing.assert_allclose(np.asarray(metrics1[name]).reshape(-1)[0],
                               np.asarray(metrics8[name]).reshape(-1)[0], rtol=BF16_METRIC_RTOL,
                               atol=1e-6, err_msg=name)
  squared = lambda a, b: sum(float(np.sum((np.asarray(x, np.float64) - np.asarray(y)) ** 2))
                             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
  moved = squared(tree1, initial)
  assert moved > 0
  drift = np.sqrt(squared(tree1, tree8) / moved)
  assert drift < BF16_PARAM_DRIFT, f'1 and 8 devices: parameters {drift:.3f} of their move apart'


def pmapped_steps(step, state, batch_of, num_devices: int, num_steps: int, key: int = 1):
  """([host state after each step], [host metrics of each step]) of `num_steps` steps of `step`
  (a family's train step) pmapped over the first `num_devices` devices; batch_of(n, i) is the
  global batch of step i split into n device batches."""
  devices = jax.local_devices()[:num_devices]
  p_step = train.pmap_train_step(step, jax.random.key(key), devices=devices)
  # Laid out as pmap lays out its results (an identity map): the step then compiles once, not
  # once for replicate's layout and again for its own results' (jax 0.10 keys on the layout).
  replicated = jax.pmap(lambda x: x, axis_name=parallel.AXIS, devices=devices)(
      flax.jax_utils.replicate(state, devices))
  states, metrics = [], []
  for i in range(num_steps):
    replicated, step_metrics = p_step(replicated, batch_of(num_devices, i))
    states.append(parallel.to_host(replicated))
    metrics.append(jax.device_get(step_metrics))
  return states, metrics


MATMULS = ('dot_general', 'conv_general_dilated')


def matmul_dtypes(fn, *args, **kwargs) -> dict[str, int]:
  """{input dtype name: count} of the matrix products and convolutions `fn(*args, **kwargs)` runs
  (traced, not run; those inside scans, jits and custom gradients too)."""
  counts = {}

  def visit(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name in MATMULS:
        name = str(eqn.invars[0].aval.dtype)
        counts[name] = counts.get(name, 0) + 1
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        visit(sub)

  visit(jax.make_jaxpr(lambda *a: fn(*a, **kwargs))(*args).jaxpr)
  return counts
