"""The CIFAR-10 speedrun network (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU").

whitening conv (2x2, no padding, 2 x 12 channels, frozen) -> GELU -> three conv groups (conv3x3 ->
2x2 max-pool -> BatchNorm -> GELU -> conv3x3 -> BatchNorm -> GELU; 64, 256 and 256 channels) ->
global max-pool -> dense (no bias) x 1/9. The whitening kernel comes from the training images
(`whitening_kernel`): the eigenvectors of the covariance of their 2x2x3 patches, each divided by
the square root of its eigenvalue, with and without sign, so that the first layer's outputs are
decorrelated, unit-variance patch coordinates. Gradients never reach it (only its bias trains).
BatchNorm learns only its shift (scale fixed at 1, epsilon 1e-12) and, as in `resnet`, averages its
batch statistics over the pmap axis `bn_axis_name`. The other convolutions have no bias; their first
`input channels` filters start as identities, so each group starts close to passing its input on;
their other filters and the dense layer start uniform in +-1/sqrt(fan-in), as in the paper's
(PyTorch's default; Flax's default would start them sqrt(3) times larger, which under BatchNorm
lowers their effective learning rate). A 32x32x3 image costs ~0.12 G multiply-adds forward.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import parallel
from mlfun_jax.models.cnn import max_pool_2x2

WHITEN_SIZE = 2  # Side of the whitening convolution's patches.
_CHUNK = 1024  # Images whose patches `whitening_kernel` holds at once.


def whitening_kernel(images: np.ndarray, eps: float = 5e-4) -> np.ndarray:
  """float32 [2, 2, C, 2 * 4C] whitening kernel from normalised training images float [N, H, W, C].

  The covariance (about zero, as the images are normalised) of every 2x2 patch of `images` has
  eigenvectors v_k and eigenvalues l_k (largest first); filter k is v_k / sqrt(l_k + eps) and
  filter 4C + k its negation.
  """
  _, h, w, c = images.shape
  s = WHITEN_SIZE
  covariance, count = np.zeros((s * s * c, s * s * c)), 0
  for start in range(0, len(images), _CHUNK):  # The patches of all images at once can take GBs.
    chunk = np.asarray(images[start:start + _CHUNK], np.float64)
    patches = np.stack([chunk[:, dy:h - s + 1 + dy, dx:w - s + 1 + dx, :]
                        for dy in range(s) for dx in range(s)], axis=3)  # [n, h', w', s*s, C]
    flat = patches.reshape(-1, s * s * c)
    covariance += flat.T @ flat
    count += len(flat)
  covariance /= count
  eigenvalues, eigenvectors = np.linalg.eigh(covariance)
  order = np.argsort(eigenvalues)[::-1]
  filters = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + eps)  # [s*s*C, s*s*C]
  kernel = filters.reshape(s, s, c, s * s * c)  # Rows are (dy, dx, channel), as the patches.
  return np.concatenate([kernel, -kernel], axis=-1).astype(np.float32)


# Uniform in +-1/sqrt(fan-in): PyTorch's default for convolutions and linear layers.
_UNIFORM_FAN_IN = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")


def _partial_identity(key, shape, dtype=jnp.float32):
  """A conv kernel [3, 3, in, out], uniform in +-1/sqrt(9 in), its first min(in, out) filters
  identities."""
  kernel = _UNIFORM_FAN_IN(key, shape, dtype)
  k, _, cin, cout = shape
  n = min(cin, cout)
  identity = jnp.zeros((k, k, cin, n), dtype).at[k // 2, k // 2].set(jnp.eye(cin, n, dtype=dtype))
  return kernel.at[..., :n].set(identity)


class ConvGroup(nn.Module):
  """conv3x3 -> 2x2 max-pool -> BatchNorm -> GELU -> conv3x3 -> BatchNorm -> GELU."""

  features: int
  bn_momentum: float
  bn_axis_name: str | None
  dtype: jnp.dtype

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    def conv(y):
      return nn.Conv(self.features, (3, 3), use_bias=False, kernel_init=_partial_identity,
                     dtype=self.dtype)(y)

    def norm(y):
      return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                          epsilon=1e-12, use_scale=False, axis_name=self.bn_axis_name,
                          dtype=self.dtype)(y)

    x = nn.gelu(norm(max_pool_2x2(conv(x))))
    return nn.gelu(norm(conv(x)))


class SpeedrunNet(nn.Module):
  """The speedrun network.

  Attributes:
    num_outputs: logits per image.
    widths: channels of the three conv groups.
    bn_momentum: decay of BatchNorm's running averages (0.6: they follow the last few batches).
    output_scale: logits are multiplied by this.
    bn_axis_name: pmap axis over which BatchNorm averages batch statistics (None: this device).
    dtype: computation dtype (parameters are always float32).
  """

  num_outputs: int = 10
  widths: Sequence[int] = (64, 256, 256)
  bn_momentum: float = 0.6
  output_scale: float = 1 / 9
  bn_axis_name: str | None = parallel.AXIS
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
    """Maps normalised images float [B, H, W, C] to float32 logits [B, num_outputs].

    The whitening kernel (param 'whiten_kernel') starts at zero: set it with `whitening_kernel`.
    `train=True` normalises with batch statistics and needs `mutable=['batch_stats']` in `apply`.
    """
    c = images.shape[-1]
    width = 2 * WHITEN_SIZE * WHITEN_SIZE * c
    kernel = self.param("whiten_kernel", nn.initializers.zeros,
                        (WHITEN_SIZE, WHITEN_SIZE, c, width))
    bias = self.param("whiten_bias", nn.initializers.zeros, (width,))
    x = jax.lax.conv_general_dilated(
        images.astype(self.dtype), jax.lax.stop_gradient(kernel).astype(self.dtype), (1, 1),
        "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    x = nn.gelu(x + bias.astype(self.dtype))
    for features in self.widths:
      x = ConvGroup(features, self.bn_momentum, self.bn_axis_name, self.dtype)(x, train=train)
    x = x.max(axis=(1, 2))
    self.sow("intermediates", "features", x)
    x = nn.Dense(self.num_outputs, use_bias=False, kernel_init=_UNIFORM_FAN_IN,
                 dtype=self.dtype)(x) * self.output_scale
    return x.astype(jnp.float32)
