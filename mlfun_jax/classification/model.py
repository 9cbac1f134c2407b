"""The classifier's network and train state, and its logits (and features) of images.

Input conventions: `inference_logits` takes uint8 images 0..255 (the datasets' and files' pixels),
`unit_range_logits` float images in [0, 1] (the attacks' range) and `features_and_logits` float
pixel values in [0, 255] (e.g. a GAN's samples rescaled); each normalises with the training set's
channel stats inside.
"""

from typing import Any

import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core import optim
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import image_stats
from mlfun_jax.models import cnn
from mlfun_jax.models import resnet
from mlfun_jax.models import speedrun
from mlfun_jax.models.init import init_variables

HEADS = ("softmax", "sigmoid")
MODELS = ("cnn", "resnet", "speedrun")
WHITENING_IMAGES = 5000  # Training images the speedrun's whitening layer is computed from.


class TrainState(train_state.TrainState):
  """flax TrainState plus BatchNorm running averages (an empty dict for models without them)."""
  batch_stats: Any = flax.struct.field(default_factory=dict)


def _as_tuple(value):
  return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def create_model(config: ml_collections.ConfigDict, num_classes: int):
  """The network of `config.model` with one output per class (softmax) or one logit (sigmoid).

  model.name 'cnn': the series' `cnn.CNN`; 'resnet': `resnet.ResNet` with BatchNorm; 'speedrun':
  `speedrun.SpeedrunNet` (widths model.stage_features). All compute in config.dtype ('bfloat16': convolutions, matmuls and activations; parameters, BatchNorm
  statistics and the float32 logits stay float32).
  """
  if config.head not in HEADS:
    raise UserError(f"unknown config field head={config.head!r}; choose one of {', '.join(HEADS)}")
  num_outputs = num_classes if config.head == "softmax" else 1
  name = config.model.name
  dtype = jnp.dtype(config.dtype)
  if name == "cnn":
    return cnn.CNN(
        num_outputs=num_outputs,
        conv_features=_as_tuple(config.model.conv_features),
        convs_per_block=config.model.convs_per_block,
        kernel_size=config.model.kernel_size,
        dense_features=tuple(config.model.dense_features),
        dropout_rate=config.model.dropout_rate,
        dtype=dtype)
  if name == "resnet":
    return resnet.ResNet(
        num_outputs=num_outputs,
        stem_features=config.model.stem_features,
        stage_features=tuple(config.model.stage_features),
        residual_stages=tuple(bool(r) for r in config.model.residual_stages),
        output_scale=config.model.output_scale,
        bn_momentum=config.model.bn_momentum,
        dtype=dtype)
  if name == "speedrun":
    return speedrun.SpeedrunNet(
        num_outputs=num_outputs,
        widths=tuple(config.model.stage_features),
        bn_momentum=config.model.bn_momentum,
        output_scale=config.model.output_scale,
        dtype=dtype)
  raise UserError(f"unknown config field model.name={name!r}; choose one of {', '.join(MODELS)}")


def create_state(model, config: ml_collections.ConfigDict, image_shape: tuple[int, ...],
                 num_steps: int, rng: jax.Array, whitening_images: Any = None) -> TrainState:
  """Fresh train state: parameters (and BatchNorm averages) from `rng`, optimizer from config.

  whitening_images: the speedrun network's whitening kernel is computed from these normalised
  training images float [N, H, W, C] (`speedrun.whitening_kernel`); None leaves it at zero (a
  state about to be restored).
  """
  variables = init_variables(model, {"params": rng}, jnp.zeros((1, *image_shape), jnp.float32),
                             train=False)
  if isinstance(model, speedrun.SpeedrunNet) and whitening_images is not None:
    params = dict(variables["params"])
    params["whiten_kernel"] = jnp.asarray(speedrun.whitening_kernel(np.asarray(whitening_images)))
    variables = {**variables, "params": params}
  tx = optim.create_optimizer(config.optimizer, num_steps, config.grad_accum_steps)
  return TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx,
                           batch_stats=variables.get("batch_stats", {}))


def variables_of(state: TrainState) -> dict[str, Any]:
  """The model variables of `state`: params, and batch_stats when the model has BatchNorm."""
  return ({"params": state.params, "batch_stats": state.batch_stats} if state.batch_stats
          else {"params": state.params})


def _pixel_logits(model, state: TrainState, pixels: jax.Array, mean: Any, std: Any,
                  test_time_flip: bool = False, test_time_shift: int = 0) -> jax.Array:
  """Eval-mode logits of pixel values 0..255 (uint8 or float), optionally averaged over views
  (`averaged_with_mirror`, `averaged_with_shifts`)."""
  logits = model.apply(variables_of(state), image_stats.normalise(pixels, mean, std), train=False)
  if not test_time_flip:
    return logits
  logits = averaged_with_mirror(model, state, pixels, mean, std, logits)
  if test_time_shift:
    logits = averaged_with_shifts(model, state, pixels, mean, std, logits, test_time_shift)
  return logits


def averaged_with_mirror(model, state: TrainState, pixels: jax.Array, mean: Any, std: Any,
                         logits: jax.Array) -> jax.Array:
  """The mean of `logits` (of `pixels`, values 0..255 [B, H, W, C]) and the logits of the
  left-right mirrored pixels."""
  return 0.5 * (logits + _pixel_logits(model, state, pixels[:, :, ::-1], mean, std))


def shifted(pixels: jax.Array, dy: int, dx: int) -> jax.Array:
  """pixels [B, H, W, C] moved by (dy, dx) pixels (down, right), borders reflected."""
  s = max(abs(dy), abs(dx))
  padded = jnp.pad(pixels, ((0, 0), (s, s), (s, s), (0, 0)), mode="reflect")
  h, w = pixels.shape[1:3]
  return padded[:, s - dy:s - dy + h, s - dx:s - dx + w]


def averaged_with_shifts(model, state: TrainState, pixels: jax.Array, mean: Any, std: Any,
                         mirrored_logits: jax.Array, shift: int) -> jax.Array:
  """The CIFAR-10 speedrun's test-time augmentation: half `mirrored_logits` (mirror-averaged
  logits of `pixels`), half the mean of the mirror-averaged logits of `pixels` moved `shift`
  pixels up-left and down-right (reflected borders)."""
  moved = [_pixel_logits(model, state, shifted(pixels, d, d), mean, std, test_time_flip=True)
           for d in (-shift, shift)]
  return 0.5 * mirrored_logits + 0.25 * (moved[0] + moved[1])


def inference_logits(model, state: TrainState, images: jax.Array, mean: Any, std: Any,
                     test_time_flip: bool = False, test_time_shift: int = 0) -> jax.Array:
  """float32 logits [B, outputs] of uint8 images [B, H, W, C] 0..255 (eval mode).

  test_time_flip: average the logits of each image and its left-right mirror image;
  test_time_shift (with it): also those of the image shifted (`averaged_with_shifts`).

  Raises:
    checks.InputConventionError: `images` are not uint8 [B, H, W, C].
  """
  checks.check_images(images, name="images", dtype_kind="u")
  return _pixel_logits(model, state, images, mean, std, test_time_flip, test_time_shift)


def unit_range_logits(model, state: TrainState, images01: jax.Array, mean: Any, std: Any,
                      test_time_flip: bool = False) -> jax.Array:
  """`inference_logits` of float images [B, H, W, C] in [0, 1] (the attacks' range), differentiable
  in the images.

  Raises:
    checks.InputConventionError: `images01` are not float [B, H, W, C] (concrete: in [0, 1]).
  """
  checks.check_images(images01, name="images01", dtype_kind="f", value_range=(0.0, 1.0))
  return _pixel_logits(model, state, 255.0 * images01, mean, std, test_time_flip)


def features_and_logits(model, state: TrainState, images: jax.Array, mean: Any, std: Any
                        ) -> tuple[jax.Array, jax.Array]:
  """(last hidden layer float32 [B, F], logits float32 [B, outputs]) in eval mode, of float images
  [B, H, W, C] with pixel values in [0, 255] (not rounded: e.g. a generator's samples rescaled).

  Raises:
    checks.InputConventionError: `images` are not float [B, H, W, C] (concrete: in [0, 255]).
  """
  checks.check_images(images, name="images", dtype_kind="f", value_range=(0.0, 255.0))
  logits, sown = model.apply(variables_of(state), image_stats.normalise(images, mean, std),
                             train=False, mutable=["intermediates"])
  return sown["intermediates"]["features"][0].astype(jnp.float32), logits
