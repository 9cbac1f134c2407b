"""Compiled parameter initialisation."""

from typing import Any

import flax.linen as nn
import jax


def init_variables(model: nn.Module, rngs: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
  """`model.init(rngs, *args, **kwargs)` as one compiled program.

  Eager `init` compiles every initializer op on its own (dozens of small XLA programs, seconds of a
  run's start on CPU); under jit they compile as one. The values are bit-identical.
  `args` and `kwargs` are example inputs (their values are baked in) and static options.
  """
  return jax.jit(lambda keys: model.init(keys, *args, **kwargs))(rngs)
