"""A small residual network with BatchNorm for 32x32 photos (ResNet-9 layout, narrower).

stem conv -> per stage: conv -> 2x2 max-pool (-> residual block of two convs) -> global max-pool ->
dense. Every conv is conv3x3 (no bias) -> BatchNorm -> ReLU. With the default widths
(16; 32, 64, 128) a 32x32x3 image costs ~24M multiply-adds forward.

BatchNorm in training mode averages its batch statistics over the pmap axis `bn_axis_name`, so every
device normalises with the statistics of the whole global batch: results match one device holding
that batch, and the running averages (collection 'batch_stats') are the same on every device.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlfun_jax.core import parallel
from mlfun_jax.models.cnn import max_pool_2x2


class ConvBN(nn.Module):
  """conv3x3 (no bias) -> BatchNorm -> ReLU."""

  features: int
  bn_axis_name: str | None = parallel.AXIS
  bn_momentum: float = 0.9
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nn.Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, epsilon=1e-5,
                     axis_name=self.bn_axis_name, dtype=self.dtype)(x)
    return nn.relu(x)


class ResNet(nn.Module):
  """ResNet-9-style classifier.

  Attributes:
    num_outputs: logits per image.
    stem_features: channels of the first conv.
    stage_features: channels of each stage; each stage halves the spatial size.
    residual_stages: per stage, whether it ends with a residual block of two convs.
    output_scale: logits are multiplied by this (small values help the early steps).
    bn_axis_name: pmap axis over which BatchNorm averages batch statistics (None: this device only,
      for use outside pmap).
    bn_momentum: decay of BatchNorm's running averages.
    dtype: computation dtype (parameters are always float32).
  """

  num_outputs: int = 10
  stem_features: int = 16
  stage_features: Sequence[int] = (32, 64, 128)
  residual_stages: Sequence[bool] = (True, False, True)
  output_scale: float = 0.125
  bn_axis_name: str | None = parallel.AXIS
  bn_momentum: float = 0.9
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
    """Maps images [B, H, W, C] (normalised floats) to float32 logits [B, num_outputs].

    `train=True` normalises with batch statistics and needs `mutable=['batch_stats']` in `apply`.
    """
    if len(self.residual_stages) != len(self.stage_features):
      raise ValueError(f"residual_stages {tuple(self.residual_stages)} needs one entry per stage "
                       f"of stage_features {tuple(self.stage_features)}")
    conv = lambda features: ConvBN(features, self.bn_axis_name, self.bn_momentum, self.dtype)
    x = conv(self.stem_features)(images.astype(self.dtype), train=train)
    for features, residual in zip(self.stage_features, self.residual_stages):
      x = max_pool_2x2(conv(features)(x, train=train))
      if residual:
        x = x + conv(features)(conv(features)(x, train=train), train=train)
    x = x.max(axis=(1, 2))
    self.sow("intermediates", "features", x)  # Pooled features, e.g. for Frechet distances.
    x = nn.Dense(self.num_outputs, dtype=self.dtype)(x) * self.output_scale
    return x.astype(jnp.float32)
