"""Autoencoders (the series' 2-neuron bottleneck, convolutional) and a variational autoencoder.

Images in, pixel logits out: `sigmoid(logits)` is the reconstruction in [0, 1]. Every model has
separately callable halves, e.g. `model.apply(variables, images, method=model.encode)`, so research
code can reuse the encoder and decoder. Also here: the likelihoods and the KL term of the VAE.

Bodies (`architecture`): 'dense' (flatten, Dense+ReLU layers of `widths`, a linear code) or 'conv'
(3x3 stride-2 convolutions+ReLU of `widths` channels, then a Dense code; the decoder mirrors it,
doubling the resolution per layer back to the image's channels, so H and W must divide by
2**len(widths)). The decoder upsamples with sub-pixel convolutions (a 3x3 convolution to 4x the
channels, then depth-to-space), which learn what a stride-2 transposed convolution learns and run
~2x faster under XLA on CPU.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlfun_jax.core import checks
from mlfun_jax.models.layers import depth_to_space

ARCHITECTURES = ("dense", "conv")


class _Encoder(nn.Module):
  """float [B, H, W, C] -> float32 [B, outputs], computed in `dtype`."""
  architecture: str
  widths: Sequence[int]
  outputs: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images.astype(self.dtype)
    if self.architecture == "dense":
      x = x.reshape(x.shape[0], -1)
      for width in self.widths:
        x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
    else:
      for width in self.widths:
        x = nn.relu(nn.Conv(width, (3, 3), strides=(2, 2), dtype=self.dtype)(x))
      x = x.reshape(x.shape[0], -1)
    return nn.Dense(self.outputs, dtype=self.dtype, name="code")(x).astype(jnp.float32)


class _Decoder(nn.Module):
  """float [B, code] -> pixel logits float32 [B, H, W, C], computed in `dtype`."""
  architecture: str
  widths: Sequence[int]
  image_shape: tuple[int, int, int]
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, codes: jax.Array) -> jax.Array:
    h, w, c = self.image_shape
    x = codes.astype(self.dtype)
    if self.architecture == "dense":
      for width in reversed(self.widths):
        x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
      x = nn.Dense(h * w * c, dtype=self.dtype, name="pixels")(x).reshape(-1, h, w, c)
      return x.astype(jnp.float32)
    factor = 2 ** len(self.widths)
    x = nn.relu(nn.Dense(h // factor * w // factor * self.widths[-1], dtype=self.dtype)(x))
    x = x.reshape(-1, h // factor, w // factor, self.widths[-1])
    for width in reversed(self.widths[:-1]):  # Mirrors the encoder: 64 -> 32 -> C channels.
      x = nn.relu(depth_to_space(nn.Conv(4 * width, (3, 3), dtype=self.dtype)(x), width))
    x = depth_to_space(nn.Conv(4 * c, (3, 3), dtype=self.dtype, name="pixels")(x), c)
    return x.astype(jnp.float32)


def check_inputs(images: jax.Array, image_shape: tuple[int, int, int]) -> None:
  """Raises InputConventionError unless `images` are float [B, H, W, C] of `image_shape` in [0, 1]
  (the range is checked on concrete arrays only)."""
  checks.check_images(images, name="images", dtype_kind="f", value_range=(0.0, 1.0),
                      shape=tuple(image_shape))


def check_codes(codes: jax.Array, size: int) -> None:
  """Raises InputConventionError unless `codes` are a float batch [B, size]."""
  checks.check_array(codes, name="codes", expected=f"float codes [B, {size}]", dtype_kinds="f",
                     rank=2, shape=(size,))


def check_architecture(architecture: str, widths: Sequence[int],
                       image_shape: tuple[int, int, int]) -> None:
  """Raises ValueError for an unknown body or an image size the conv body cannot mirror."""
  if architecture not in ARCHITECTURES:
    raise ValueError(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")
  if architecture == "conv":
    factor = 2 ** len(widths)
    if not widths or image_shape[0] % factor or image_shape[1] % factor:
      raise ValueError(f"the conv body with {len(widths)} stride-2 layers needs image sides that "
                       f"divide by {factor}; images are {image_shape[0]}x{image_shape[1]}")


class Autoencoder(nn.Module):
  """images float [B, H, W, C] in [0, 1] -> code [B, bottleneck] -> pixel logits [B, H, W, C].

  The code is linear (no activation), `bottleneck` units wide: 2 by default, the series' picture.
  `dtype`: the computation dtype (e.g. bfloat16); parameters, codes and logits stay float32.
  """
  image_shape: tuple[int, int, int]
  architecture: str = "dense"
  widths: Sequence[int] = (512, 256)
  bottleneck: int = 2
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    check_architecture(self.architecture, self.widths, self.image_shape)
    self.encoder = _Encoder(self.architecture, self.widths, self.bottleneck, self.dtype)
    self.decoder = _Decoder(self.architecture, self.widths, self.image_shape, self.dtype)

  def encode(self, images: jax.Array) -> jax.Array:
    """float [B, H, W, C] in [0, 1] (image_shape) -> codes float32 [B, bottleneck]."""
    check_inputs(images, self.image_shape)
    return self.encoder(images)

  def decode(self, codes: jax.Array) -> jax.Array:
    """codes float [B, bottleneck] -> pixel logits float32 [B, H, W, C]."""
    check_codes(codes, self.bottleneck)
    return self.decoder(codes)

  def __call__(self, images: jax.Array) -> jax.Array:
    return self.decode(self.encode(images))


class VariationalAutoencoder(nn.Module):
  """A VAE with a diagonal Gaussian posterior q(z|x) and a standard normal prior.

  `__call__(images, noise)` samples z = mean + exp(logvar / 2) * noise (the reparameterisation;
  `noise` float [B, latent] ~ N(0, 1) is drawn by the caller, so randomness stays explicit) and
  returns (pixel logits [B, H, W, C], mean [B, latent], logvar [B, latent]), all float32: with
  `dtype` bfloat16 the layers compute in bfloat16, the sampling of z and the KL in float32.
  """
  image_shape: tuple[int, int, int]
  architecture: str = "dense"
  widths: Sequence[int] = (400,)
  latent: int = 20
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    check_architecture(self.architecture, self.widths, self.image_shape)
    self.encoder = _Encoder(self.architecture, self.widths, 2 * self.latent, self.dtype)
    self.decoder = _Decoder(self.architecture, self.widths, self.image_shape, self.dtype)

  def encode(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """float [B, H, W, C] in [0, 1] (image_shape) -> (mean, logvar), each float32 [B, latent]."""
    check_inputs(images, self.image_shape)
    mean, logvar = jnp.split(self.encoder(images), 2, axis=-1)
    return mean, logvar

  def decode(self, codes: jax.Array) -> jax.Array:
    """latent codes float [B, latent] -> pixel logits float32 [B, H, W, C]."""
    check_codes(codes, self.latent)
    return self.decoder(codes)

  def __call__(self, images: jax.Array, noise: jax.Array
               ) -> tuple[jax.Array, jax.Array, jax.Array]:
    mean, logvar = self.encode(images)
    return self.decode(mean + jnp.exp(0.5 * logvar) * noise), mean, logvar


def is_vae(model: nn.Module) -> bool:
  """True for a VariationalAutoencoder (its __call__ takes noise and returns mean and logvar)."""
  return isinstance(model, VariationalAutoencoder)


def code_size(model: nn.Module) -> int:
  """Units of the code: the bottleneck of an Autoencoder, the latent size of a VAE."""
  return model.latent if is_vae(model) else model.bottleneck


def _check_targets(targets: jax.Array) -> None:
  checks.check_array(targets, name="targets", expected="float pixel targets [B, ...] in [0, 1]",
                     dtype_kinds="f", value_range=(0.0, 1.0))


def bernoulli_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """-log p(targets | logits) summed over pixels, nats: float [B, ...] x2 -> float32 [B].

  `targets` float in [0, 1] (binary for a proper likelihood; grey levels give the usual
  cross-entropy); the range is checked on concrete arrays only.
  """
  _check_targets(targets)
  per_pixel = jax.nn.softplus(logits) - targets * logits  # Stable form of the cross-entropy.
  return per_pixel.reshape(per_pixel.shape[0], -1).sum(axis=-1)


def gaussian_nll(logits: jax.Array, targets: jax.Array, scale: float) -> jax.Array:
  """-log N(targets; sigmoid(logits), scale^2) summed over pixels, nats: -> float32 [B].

  `targets` float [B, ...] in [0, 1] (checked on concrete arrays only).
  """
  _check_targets(targets)
  z = (targets - jax.nn.sigmoid(logits)) / scale
  per_pixel = 0.5 * jnp.square(z) + math.log(scale) + 0.5 * math.log(2 * math.pi)
  return per_pixel.reshape(per_pixel.shape[0], -1).sum(axis=-1)


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, 1)) summed over latent units, analytic: [B, L] -> [B]."""
  return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)
