"""dlib's face-recognition ResNet in Flax, with its trained weights: the network the series'
author's `face_recognition` library names faces with (trained by dlib on ~3 million faces of
~7,500 people; 99.38% on the LFW benchmark).

Input: 150x150 RGB face chips, the face framed as dlib's `get_face_chip` frames it (padding 0.25:
its 5 landmarks land on `CHIP_POINTS`). Output: a 128-d descriptor; two faces are the same person
when their descriptors lie within `DLIB_TOLERANCE` (Euclidean), dlib's own threshold.

The architecture (dlib's `anet_type`): a 7x7/2 convolution, max-pool 3x3/2, then residual
blocks of two 3x3 convolutions (32 x3; 64: a down-sampling block + 3; 128: down + 2; 256: down +
2; 256: down), each convolution followed by a per-channel affine (batch norm folded), global
average pooling and a 128-unit dense layer without bias. A down-sampling block's first
convolution has stride 2 and no padding, its shortcut is a 2x2/2 average pool, and the two are
added over the larger of their shapes (the smaller padded with zeros at the end), as dlib adds.
"""

import functools
import os

from flax import traverse_util
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import dlib_file

CHIP_SIZE = 150
CHIP_PADDING = 0.25
# dlib's 5-point face template (unit square; outer and inner corner of the right-hand eye in the
# image, of the left-hand one, the nose tip), from dlib's get_face_chip_details.
_TEMPLATE = np.array([(0.8595674595992, 0.2134981538014), (0.6460604764104, 0.2289674387677),
                      (0.1205750620789, 0.2137274526848), (0.3340850613712, 0.2290642403242),
                      (0.4901123135679, 0.6277975316475)])
# The template in a chip's continuous pixels (pixel centres at +0.5).
CHIP_POINTS = (CHIP_PADDING + _TEMPLATE) / (2 * CHIP_PADDING + 1) * CHIP_SIZE + 0.5
MEAN_RGB = (122.782, 117.001, 104.298)  # dlib's input_rgb_image: (pixel - mean) / 256.
DLIB_TOLERANCE = 0.6
# (features, residual blocks, first block down-samples) per stage, input to output.
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
MODEL_PACKAGE = "face_recognition_models"
MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class Affine(nn.Module):
  """x * scale + shift per channel (dlib's affine layer: batch norm folded)."""

  @nn.compact
  def __call__(self, x):
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    shift = self.param("shift", nn.initializers.zeros, (x.shape[-1],))
    return x * scale + shift


def add_padded(a: jax.Array, b: jax.Array) -> jax.Array:
  """a + b [N, H, W, C] over the larger of their shapes, the smaller zero-padded at the end."""
  shape = tuple(max(x, y) for x, y in zip(a.shape, b.shape))
  pad = lambda x: jnp.pad(x, [(0, s - d) for s, d in zip(shape, x.shape)])
  return pad(a) + pad(b)


class DlibFaceResNet(nn.Module):
  """float32 RGB chips [N, 150, 150, 3] (0..255) -> float32 descriptors [N, 128]."""

  @nn.compact
  def __call__(self, chips: jax.Array) -> jax.Array:
    count = iter(range(1000))

    def conv_affine(x, features, kernel, stride, padding):
      i = next(count)
      x = nn.Conv(features, (kernel, kernel), (stride, stride),
                  padding=((padding, padding), (padding, padding)), name=f"conv_{i}")(x)
      return Affine(name=f"affine_{i}")(x)

    x = (chips - jnp.asarray(MEAN_RGB, chips.dtype)) / 256.0
    x = nn.relu(conv_affine(x, 32, 7, 2, 0))
    x = nn.max_pool(x, (3, 3), (2, 2), padding="VALID")
    for features, blocks, down in STAGES:
      for block in range(blocks):
        stride = 2 if down and block == 0 else 1
        y = nn.relu(conv_affine(x, features, 3, stride, 0 if stride == 2 else 1))
        y = conv_affine(y, features, 3, 1, 1)
        shortcut = nn.avg_pool(x, (2, 2), (2, 2), padding="VALID") if stride == 2 else x
        x = nn.relu(add_padded(y, shortcut))
    x = x.mean(axis=(1, 2))
    return nn.Dense(128, use_bias=False, name="dense")(x)


def model_path() -> str:
  """The trained weights' file in the installed `face_recognition_models` package."""
  try:
    import face_recognition_models  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise UserError(f"the dlib face ResNet needs the {MODEL_PACKAGE} package (pip install "
                    f"{MODEL_PACKAGE})") from e
  return os.path.join(os.path.dirname(face_recognition_models.__file__), "models", MODEL_FILE)


def check_params(params: dict) -> dict:
  """`params` as jax arrays when their tree and shapes are `DlibFaceResNet`'s; else UserError."""
  expected = jax.eval_shape(DlibFaceResNet().init, jax.random.key(0),
                            jnp.zeros((1, CHIP_SIZE, CHIP_SIZE, 3)))["params"]
  want = jax.tree.map(lambda s: tuple(s.shape), expected)
  try:
    got = jax.tree.map(np.shape, params)
  except (TypeError, ValueError):
    got = None
  if got != want:
    raise UserError(f"the dlib model file does not hold {MODEL_FILE}'s layers")
  return jax.tree.map(jnp.asarray, params)


def params_from_layers(layers: list[dlib_file.Layer]) -> dict:
  """`DlibFaceResNet` params from the file's layers (`dlib_file.read_layers`), checked against
  the architecture's shapes."""
  convs = [l for l in layers if l.kind == "conv"]
  affines = [l for l in layers if l.kind == "affine"]
  dense = [l for l in layers if l.kind == "dense"]
  params = {"dense": {"kernel": dense[0].arrays["kernel"]}} if len(dense) == 1 else {}
  for i, (conv, affine) in enumerate(zip(convs, affines)):
    params[f"conv_{i}"] = {"kernel": conv.arrays["kernel"], "bias": conv.arrays["bias"]}
    params[f"affine_{i}"] = {"scale": affine.arrays["scale"], "shift": affine.arrays["shift"]}
  return check_params(params)


def _read_flat(path: str) -> dict[str, np.ndarray]:
  params = params_from_layers(dlib_file.read_layers(path))
  return {"/".join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}


def pretrained_params(path: str | None = None) -> dict:
  """The trained `DlibFaceResNet` params (read once per process, kept in the cache folder:
  `dlib_file.cached`) from `path` (default: the `face_recognition_models` package's file)."""
  return _pretrained_params(path or model_path())


@functools.cache
def _pretrained_params(path: str) -> dict:
  flat = dlib_file.cached(path, _read_flat)
  params = traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})
  return check_params(params)


@jax.jit
def _describe(params, chips):
  return DlibFaceResNet().apply({"params": params}, chips.astype(jnp.float32))


def describe(chips: np.ndarray, params: dict | None = None, batch_size: int = 64) -> np.ndarray:
  """float32 descriptors [N, 128] of uint8 RGB chips [N, 150, 150, 3] (batches of `batch_size`,
  the last one padded so that one compiled shape serves all)."""
  chips = np.asarray(chips)
  if chips.ndim != 4 or chips.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
    raise ValueError(f"chips: expected [N, {CHIP_SIZE}, {CHIP_SIZE}, 3], got {chips.shape}")
  params = pretrained_params() if params is None else params
  out = []
  for start in range(0, len(chips), batch_size):
    batch = chips[start:start + batch_size]
    size = batch_size if len(chips) > batch_size else max(1, len(batch))
    padded = np.zeros((size, *batch.shape[1:]), np.uint8)
    padded[:len(batch)] = batch
    out.append(np.asarray(_describe(params, padded))[:len(batch)])
  return np.concatenate(out) if out else np.zeros((0, 128), np.float32)
