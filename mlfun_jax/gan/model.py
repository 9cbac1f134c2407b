"""DCGAN generator and discriminator (Radford et al. 2015), pure flax.linen, for 28x28 and 32x32.

The generator projects a noise vector to a small feature map (7x7 for 28x28 images, 4x4 for 32x32:
the image side halved while it stays even and above 4), then doubles the resolution per layer with
4x4 stride-2 transposed convolutions + BatchNorm + ReLU, ending in tanh pixels in [-1, 1]. The
discriminator mirrors it with 4x4 stride-2 convolutions + LeakyReLU(0.2) and a single logit. Under
pmap the generator's BatchNorm uses the statistics of the global batch (axis `parallel.AXIS`).

Optional, as in InfoGAN's MNIST networks (Chen et al. 2016): a hidden dense layer after the noise
(`Generator.dense_features`) and before the logit (`Discriminator.dense_features`), and BatchNorm in
the discriminator after every layer but the first (`Discriminator.norm='batch'`); and InfoGAN's
categorical code: the generator also takes a one-hot code of K classes (`Latent.codes`) and the
discriminator's Q head (`Discriminator.code_classes`) predicts it back from the image, so that each
code comes to draw one clearly recognisable kind of image (for MNIST: one digit).

`create_models` and `create_state` build both networks and the GAN's train state (`GANState`) from
a GAN config (mlfun_jax/gan/config.py).
"""

from typing import Any, NamedTuple

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from mlfun_jax.core import checks
from mlfun_jax.core import optim
from mlfun_jax.core import parallel
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import layers
from mlfun_jax.models.init import init_variables

UPSAMPLINGS = ("transpose", "subpixel")


def num_upsamplings(side: int) -> int:
  """How many times `side` halves while it stays even and above 4: 28 -> 2, 32 -> 3, 64 -> 4."""
  count = 0
  while side % 2 == 0 and side > 4:
    side //= 2
    count += 1
  if count == 0:
    raise ValueError(f"image side {side} cannot be built by doubling a smaller feature map")
  return count


class Generator(nn.Module):
  """noise float [B, latent] -> images float32 [B, H, W, C] in [-1, 1].

  Attributes:
    image_shape: (H, W, C), e.g. (28, 28, 1) or (32, 32, 3).
    features: channels of the last hidden layer; each earlier layer has twice its successor's.
    upsampling: 'transpose' (4x4 stride-2 transposed convolutions, as in the paper) or 'subpixel'
      (3x3 convolutions to 4x the channels, then depth-to-space: the same capacity, ~2x faster
      under XLA on CPU).
    dtype: computation dtype (parameters, BatchNorm statistics and the images stay float32).
  """
  image_shape: tuple[int, int, int]
  features: int = 64
  upsampling: str = "transpose"
  dense_features: int = 0  # A hidden dense layer (+ BatchNorm, ReLU) after the noise; 0: none.
  dtype: jnp.dtype = jnp.float32

  def _upsample(self, x: jax.Array, features: int, name: str, use_bias: bool) -> jax.Array:
    if self.upsampling == "transpose":
      return nn.ConvTranspose(features, (4, 4), strides=(2, 2), use_bias=use_bias,
                              dtype=self.dtype, name=name)(x)
    conv = nn.Conv(4 * features, (3, 3), use_bias=use_bias, dtype=self.dtype, name=name)
    return layers.depth_to_space(conv(x), features)

  @nn.compact
  def __call__(self, noise: jax.Array, *, train: bool) -> jax.Array:
    h, w, c = self.image_shape
    n = num_upsamplings(h)
    norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                axis_name=parallel.AXIS if train else None, dtype=self.dtype)
    dense = lambda features, **kwargs: nn.Dense(features, use_bias=False, dtype=self.dtype,
                                                **kwargs)
    widths = [self.features * 2 ** (n - 1 - i) for i in range(n)]  # e.g. 256, 128, 64.
    x = noise.astype(self.dtype)
    if self.dense_features:
      x = nn.relu(norm()(dense(self.dense_features, name="hidden")(x)))
    x = dense(h // 2**n * w // 2**n * widths[0])(x)
    x = nn.relu(norm()(x.reshape(-1, h // 2**n, w // 2**n, widths[0])))
    for i, width in enumerate(widths[1:]):
      # No bias before BatchNorm: it would cancel out (and Adam would amplify its zero gradient).
      x = nn.relu(norm()(self._upsample(x, width, f"up{i}", use_bias=False)))
    return jnp.tanh(self._upsample(x, c, "pixels", use_bias=True).astype(jnp.float32))


NORMS = ("none", "batch")


class Discriminator(nn.Module):
  """images float [B, H, W, C] in [-1, 1] -> (logits float32 [B] (real vs generated), code logits
  float32 [B, code_classes] (the Q head; [B, 0] without one)).

  Attributes:
    features: channels of the first convolution; each later one has twice its predecessor's.
    dense_features: a hidden dense layer (+ LeakyReLU) before the logit; 0: none.
    norm: 'none', or 'batch': BatchNorm after every convolution but the first and after the
      hidden dense layer (train=True: the statistics of the batch, over all devices; then the
      caller passes mutable=['batch_stats']).
    code_classes: K > 0 adds InfoGAN's Q head on the last hidden layer: dense code_features
      (+ BatchNorm with norm='batch', LeakyReLU), then K logits of the generator's code.
    dtype: computation dtype (parameters, BatchNorm statistics and both logits stay float32).
  """
  features: int = 64
  dense_features: int = 0
  norm: str = "none"
  code_classes: int = 0
  code_features: int = 128
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
    if self.norm not in NORMS:
      raise ValueError(f"unknown norm {self.norm!r}; choose one of {', '.join(NORMS)}")
    checks.check_images(images, name="images", dtype_kind="f", value_range=(-1.0, 1.0))

    def normalise(x, first=False):
      if self.norm == "none" or first:
        return x
      return nn.BatchNorm(use_running_average=not train, momentum=0.9,
                          axis_name=parallel.AXIS if train else None, dtype=self.dtype)(x)

    x = images.astype(self.dtype)
    for i in range(num_upsamplings(images.shape[1])):
      biased = self.norm == "none" or i == 0  # A bias before BatchNorm would cancel out.
      x = nn.Conv(self.features * 2**i, (4, 4), strides=(2, 2), use_bias=biased,
                  dtype=self.dtype)(x)
      x = nn.leaky_relu(normalise(x, first=i == 0), 0.2)
    x = x.reshape(x.shape[0], -1)
    if self.dense_features:
      x = nn.Dense(self.dense_features, use_bias=self.norm == "none", dtype=self.dtype,
                   name="hidden")(x)
      x = nn.leaky_relu(normalise(x), 0.2)
    logits = nn.Dense(1, dtype=self.dtype)(x)[:, 0].astype(jnp.float32)
    if not self.code_classes:
      return logits, jnp.zeros((x.shape[0], 0), jnp.float32)
    q = nn.Dense(self.code_features, use_bias=self.norm == "none", dtype=self.dtype,
                 name="code_hidden")(x)
    q = nn.leaky_relu(normalise(q), 0.2)
    code_logits = nn.Dense(self.code_classes, dtype=self.dtype, name="code_logits")(q)
    return logits, code_logits.astype(jnp.float32)


def generate(generator: Generator, params, batch_stats, noise: jax.Array) -> jax.Array:
  """float32 [B, H, W, C] in [-1, 1] from noise [B, latent], with BatchNorm's running averages."""
  return generator.apply({"params": params, "batch_stats": batch_stats}, noise, train=False)


class Latent(NamedTuple):
  """The generator's input: `noise` standard normal numbers and a one-hot code of `codes` classes
  (0: no code), concatenated into one float32 vector of `size` numbers."""
  noise: int
  codes: int = 0

  @property
  def size(self) -> int:
    return self.noise + self.codes

  def draw(self, keys: jax.Array, codes: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(inputs float32 [B, size], codes int32 [B]): one row per PRNG key of `keys` [B]; the codes
    uniform over the classes (all 0 without a code) unless given (int [B] in 0..codes-1, checked
    when the latent has a code)."""
    noise = noise_from_keys(keys, self.noise)
    if not self.codes:
      return noise, jnp.zeros(keys.shape[:1], jnp.int32)
    if codes is not None:
      checks.check_ids(codes, name="codes", vocab_size=self.codes, rank=1)
    if codes is None:
      codes = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 1), (), 0, self.codes))(
          keys)
    codes = jnp.asarray(codes, jnp.int32)
    return jnp.concatenate([noise, jax.nn.one_hot(codes, self.codes)], axis=-1), codes


def latent_of(model_config: ml_collections.ConfigDict) -> Latent:
  """The Latent of a config's `model` fields: `latent` noise numbers, `categorical_code` classes."""
  return Latent(model_config.latent, model_config.categorical_code)


def noise_from_keys(keys: jax.Array, latent: int) -> jax.Array:
  """float32 [B, latent] standard normal noise, one row per PRNG key of `keys` [B]."""
  return jax.vmap(lambda k: jax.random.normal(k, (latent,)))(keys)


class GANState(flax.struct.PyTreeNode):
  """Both networks, the generator's BatchNorm averages, the averaged generator (the one that
  samples) with its own BatchNorm averages, the discriminator's BatchNorm averages (empty without
  BatchNorm) and both optimizer states."""
  step: jax.Array
  generator: Any
  batch_stats: Any
  ema_generator: Any
  ema_batch_stats: Any
  discriminator: Any
  discriminator_stats: Any
  generator_opt_state: Any
  discriminator_opt_state: Any
  generator_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  discriminator_tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)


def create_models(config: ml_collections.ConfigDict,
                  image_shape) -> tuple[Generator, Discriminator]:
  """(generator, discriminator) of the GAN config's `model` fields for images (H, W, C), both
  computing in config.dtype."""
  if config.model.upsampling not in UPSAMPLINGS:
    raise UserError(f"config field model.upsampling={config.model.upsampling!r} must be one of "
                    f"{', '.join(UPSAMPLINGS)}")
  try:
    num_upsamplings(image_shape[0])
  except ValueError as e:
    raise UserError(f"dataset images are {image_shape}: {e}") from e
  norm = config.model.discriminator_norm
  if norm not in NORMS:
    raise UserError(f"config field model.discriminator_norm={norm!r} must be one of "
                    f"{', '.join(NORMS)}")
  dtype = jnp.dtype(config.dtype)
  return (Generator(tuple(image_shape), config.model.generator_features, config.model.upsampling,
                    dense_features=config.model.generator_dense, dtype=dtype),
          Discriminator(config.model.discriminator_features,
                        dense_features=config.model.discriminator_dense, norm=norm,
                        code_classes=latent_of(config.model).codes, dtype=dtype))


def create_state(generator: Generator, discriminator: Discriminator,
                 config: ml_collections.ConfigDict, num_steps: int, rng: jax.Array) -> GANState:
  """Fresh GANState: both networks from `rng`, the average equal to the generator, the two
  optimizers of the config."""
  g_rng, d_rng = jax.random.split(rng)
  noise = jnp.zeros((1, latent_of(config.model).size))
  g_vars = init_variables(generator, g_rng, noise, train=False)
  d_vars = init_variables(discriminator, d_rng, jnp.zeros((1, *generator.image_shape)))
  d_params = d_vars["params"]
  g_tx = optim.create_optimizer(config.generator_optimizer, num_steps, config.grad_accum_steps)
  d_tx = optim.create_optimizer(config.discriminator_optimizer, num_steps, config.grad_accum_steps)
  return GANState(step=jnp.zeros((), jnp.int32), generator=g_vars["params"],
                  batch_stats=g_vars["batch_stats"], ema_generator=g_vars["params"],
                  ema_batch_stats=g_vars["batch_stats"], discriminator=d_params,
                  discriminator_stats=d_vars.get("batch_stats", {}),
                  generator_opt_state=g_tx.init(g_vars["params"]),
                  discriminator_opt_state=d_tx.init(d_params),
                  generator_tx=g_tx, discriminator_tx=d_tx)
