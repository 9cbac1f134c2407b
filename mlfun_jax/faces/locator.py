"""An eye locator: a small CNN that finds both eyes of a face in a detector's box, trained
self-supervised on ORL-framed faces (no landmark labels).

Training (`train_locator`): each example is a training face under a random similarity (rotation
+-25 degrees, scale 0.8-1.25, shift +-12% of the face side; mirrored half the time about the
eyes' midline, which keeps ORL_EYES the target), seen through the box a detector would give (the
moved FACE_BOX square, axis-aligned, jittered by a few percent) and photometric jitter (gamma,
contrast, brightness, noise). The target is where the ORL mean face's eyes (ORL_EYES) went. The
examples are drawn inside the jitted step from explicit PRNG keys, so training is one pure
function of (faces, key).

The network sees the square crop `margin` x the box side around the box centre, resampled to
crop_size x crop_size and standardised per crop, and predicts the eyes in box-relative
coordinates ((x, y) - box centre) / box side, where the box side is the mean of its width and
height (as in `alignment.box_frames`).

Also here: `place_faces`, the same random similarities on whole photos (numpy, for measuring), and
`orl_eye_errors`, the eye error of an alignment in pixels of the ORL frame.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import functools
import math
import time
from typing import Any

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlfun_jax.core import array_files
from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import alignment
from mlfun_jax.faces.face_box import ORL_EYES
from mlfun_jax.faces.face_box import ORL_SHAPE
from mlfun_jax.models.cnn import max_pool_2x2

NOUN = 'face locator'
FORMAT = 1
_CENTRE = np.asarray(alignment.FACE_CENTRE_ORL, np.float32)
_SIDE = alignment.FACE_SIDE_ORL
# Box-relative ORL_EYES of an untransformed ORL face: the network's answer at zero output.
MEAN_EYES = ((np.asarray(ORL_EYES, np.float32) - _CENTRE) / _SIDE).astype(np.float32)


class EyeNet(nn.Module):
  """Conv/ReLU/2x2 max-pool blocks, one hidden dense layer, 4 outputs: box-relative eyes.

  Attributes:
    conv_features: channels of each block's 3x3 convolution.
    dense_features: width of the hidden dense layer.
  """

  conv_features: Sequence[int] = (16, 32, 64)
  dense_features: int = 64

  @nn.compact
  def __call__(self, crops: jax.Array) -> jax.Array:
    """float crops [B, S, S] (any brightness scale) -> float32 eyes [B, 2, 2] ((x, y) of the left
    and right eye, box-relative)."""
    checks.check_array(crops, name='crops', expected='float crops [B, S, S]', dtype_kinds='f',
                       rank=3)
    x = crops.astype(jnp.float32)
    x = x - x.mean(axis=(1, 2), keepdims=True)
    x = x / jnp.sqrt(jnp.mean(x * x, axis=(1, 2), keepdims=True) + 1e-6)
    x = x[..., None]
    for features in self.conv_features:
      x = max_pool_2x2(nn.relu(nn.Conv(features, (3, 3))(x)))
    x = nn.relu(nn.Dense(self.dense_features)(x.reshape(x.shape[0], -1)))
    out = nn.Dense(4, kernel_init=nn.initializers.zeros)(x)
    return out.reshape(-1, 2, 2) + jnp.asarray(MEAN_EYES)


@functools.partial(jax.jit, static_argnums=0)
def _apply(model: EyeNet, params, crops: jax.Array) -> jax.Array:
  """model.apply, compiled once per architecture and crop batch shape (locators share it)."""
  return model.apply({'params': params}, crops)


def crop_frames(boxes: np.ndarray, crop_size: int, margin: float) -> np.ndarray:
  """float64 [N, 2, 3] frames of the locator's square crops (side margin x box side, centred on
  the box; crop_size pixels) of boxes [N, 4] (checked)."""
  boxes = alignment.check_face_boxes(boxes).astype(np.float64)
  centre = (boxes[:, :2] + boxes[:, 2:]) / 2
  pitch = margin * ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2 / crop_size
  frames = np.zeros((len(boxes), 2, 3))
  frames[:, 0, 0] = frames[:, 1, 1] = pitch
  frames[:, :, 2] = centre - pitch[:, None] * crop_size / 2
  return frames


@dataclasses.dataclass(eq=False)
class Locator:
  """A trained eye locator: EyeNet parameters and the meta to rebuild and feed it.

  meta: conv_features, dense_features, crop_size, margin, and a 'training' record.
  """
  params: Any
  meta: dict

  def __post_init__(self):
    self.model = EyeNet(tuple(self.meta['conv_features']), int(self.meta['dense_features']))

  def predict_relative(self, crops: np.ndarray) -> np.ndarray:
    """Box-relative eyes float32 [N, 2, 2] of uint8 crops [N, S, S] (S = meta['crop_size'])."""
    size = int(self.meta['crop_size'])
    if hasattr(crops, 'dtype') and np.dtype(crops.dtype) != np.uint8:
      raise checks.InputConventionError(f'crops: expected uint8 crops [N, {size}, {size}], got '
                                        f'{np.dtype(crops.dtype).name}')
    checks.check_array(crops, name='crops', expected=f'uint8 crops [N, {size}, {size}]',
                       dtype_kinds='u', rank=3, shape=(size, size))
    if not len(crops):
      return np.zeros((0, 2, 2), np.float32)
    padded = np.zeros((1 << (len(crops) - 1).bit_length(), size, size), np.float32)
    padded[:len(crops)] = crops  # Batches padded to a power of 2: few compilations.
    return np.asarray(_apply(self.model, self.params, jnp.asarray(padded)))[:len(crops)]

  def locate(self, image: np.ndarray, boxes) -> np.ndarray:
    """Eyes float32 [N, 2, 2] ((x, y) of the left and right eye, in the image's pixels) of the
    faces in boxes [N, 4] (left, top, right, bottom; positive sizes) of a grey photo uint8 [H, W].

    Raises:
      InputConventionError: a bad image or boxes (one line).
    """
    image = alignment.check_image(image)
    boxes = alignment.check_face_boxes(boxes)
    if not len(boxes):
      return np.zeros((0, 2, 2), np.float32)
    size, margin = int(self.meta['crop_size']), float(self.meta['margin'])
    crops = alignment.warp(image, crop_frames(boxes, size, margin), (size, size))
    relative = self.predict_relative(crops).astype(np.float64)
    centre = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2
    side = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1]))[:, None, None] / 2
    return (centre + relative * side).astype(np.float32)

  def save(self, path) -> str:
    """Writes the parameters and meta to `path` (.npz, atomic, checksummed); returns `path`."""
    arrays = {k: np.asarray(v) for k, v in
              traverse_util.flatten_dict(jax.device_get(self.params), sep='.').items()}
    return array_files.save(path, arrays, {'format': FORMAT, **self.meta})

  @classmethod
  def load(cls, path) -> Locator:
    """The locator saved at `path`.

    Raises:
      UserError: the file is missing, damaged, or not a face locator (one line naming it).
    """
    arrays, meta = array_files.load(path, NOUN)
    if meta.get('format') != FORMAT or not {'conv_features', 'dense_features', 'crop_size',
                                            'margin'} <= set(meta):
      raise UserError(f'{NOUN} {str(path)!r} is not a face locator file (format {FORMAT})')
    meta = {k: v for k, v in meta.items() if k != 'format'}
    params = traverse_util.unflatten_dict({tuple(k.split('.')): jnp.asarray(v)
                                           for k, v in arrays.items()})
    shapes = lambda tree: jax.tree_util.tree_map(lambda x: tuple(x.shape), tree)  # noqa: E731
    try:
      expected = jax.eval_shape(
          EyeNet(tuple(meta['conv_features']), int(meta['dense_features'])).init,
          jax.random.key(0), jnp.zeros((1, meta['crop_size'], meta['crop_size'])))['params']
      same = shapes(params) == shapes(expected)
    except (TypeError, ValueError, KeyError):
      same = False
    if not same:
      raise UserError(f'{NOUN} {str(path)!r} holds parameters that do not fit its meta')
    return cls(params, meta)


def _rotation(theta: jax.Array) -> jax.Array:
  c, s = jnp.cos(theta), jnp.sin(theta)
  return jnp.stack([jnp.stack([c, -s]), jnp.stack([s, c])])


def _bilinear(face: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """face float [H, W] at pixel-index points (x: column, y: row), edge-clamped (as
  `alignment.warp` samples): four gathers from the flattened face."""
  height, width = face.shape
  x, y = jnp.clip(x, 0, width - 1), jnp.clip(y, 0, height - 1)
  x0 = jnp.minimum(jnp.floor(x).astype(jnp.int32), width - 2)
  y0 = jnp.minimum(jnp.floor(y).astype(jnp.int32), height - 2)
  fx, fy = x - x0, y - y0
  flat, corner = face.reshape(-1), y0 * width + x0
  top = flat[corner] * (1 - fx) + flat[corner + 1] * fx
  bottom = flat[corner + width] * (1 - fx) + flat[corner + width + 1] * fx
  return top * (1 - fy) + bottom * fy


def _example(face: jax.Array, u: jax.Array, noise: jax.Array, settings: dict
             ) -> tuple[jax.Array, jax.Array]:
  """One training example of a float face [112, 92] (0..255) from 12 uniform numbers u in [-1, 1]
  and standard normal noise [S, S]: (crop float32 [S, S] in 0..1, box-relative target eyes
  float32 [2, 2])."""
  size, margin, jitter = settings['crop_size'], settings['margin'], settings['box_jitter']
  theta = jnp.radians(settings['rotate_degrees']) * u[0]
  low, high = math.log(settings['scale_range'][0]), math.log(settings['scale_range'][1])
  sigma = jnp.exp(low + (high - low) * (u[1] + 1) / 2)
  shift = settings['shift'] * _SIDE * sigma * u[2:4]
  flip = u[4] > 0
  side = _SIDE * sigma * jnp.exp(jitter * u[5])
  box_centre = _CENTRE + shift + jitter * side * u[6:8]
  rotation = _rotation(theta)
  # Crop pixel centres with 2 x 2 sub-samples -> photo points q -> face points p (undo the move).
  grid = (jnp.arange(2 * size) + 0.5) / 2  # Sub-sample positions in crop pixels.
  gx, gy = jnp.meshgrid(grid, grid)
  q = box_centre + (jnp.stack([gx, gy], -1) - size / 2) * (margin * side / size)
  p = _CENTRE + (q - _CENTRE - shift) @ rotation / sigma  # R^T (q - c - t) / sigma, row-wise.
  mid_x = float(np.mean(np.asarray(ORL_EYES, np.float32)[:, 0]))  # Mirror axis: eyes swap.
  px = jnp.where(flip, 2 * mid_x - p[..., 0], p[..., 0])
  values = _bilinear(face, px - 0.5, p[..., 1] - 0.5)
  crop = values.reshape(size, 2, size, 2).mean(axis=(1, 3)) / 255.0
  eyes = jnp.asarray(ORL_EYES, jnp.float32)
  mirrored = jnp.stack([2 * mid_x - eyes[::-1, 0], eyes[::-1, 1]], -1)
  eyes = jnp.where(flip, mirrored, eyes)
  moved = _CENTRE + sigma * (eyes - _CENTRE) @ rotation.T + shift
  target = (moved - box_centre) / side
  # Photometric jitter: gamma 0.67-1.5, contrast 0.6-1.4, brightness +-0.2, noise sigma <= 0.04.
  gamma = jnp.exp(0.4 * u[8])
  contrast, brightness, amplitude = 1 + 0.4 * u[9], 0.2 * u[10], 0.02 * (u[11] + 1)
  crop = jnp.clip((crop ** gamma - 0.5) * contrast + 0.5 + brightness + amplitude * noise, 0.0,
                  1.0)
  return crop, target


def training_batch(key: jax.Array, faces: jax.Array, batch_size: int, settings: dict
                   ) -> tuple[jax.Array, jax.Array]:
  """(crops float32 [B, S, S] in 0..1, box-relative eyes float32 [B, 2, 2]): random moved faces of
  float faces [N, 112, 92] (0..255), see the module doc; `settings` as `train_locator` fills it."""
  pick, numbers, noise = jax.random.split(key, 3)
  chosen = jax.random.randint(pick, (batch_size,), 0, faces.shape[0])
  size = settings['crop_size']
  return jax.vmap(lambda f, u, n: _example(f, u, n, settings))(
      faces[chosen], jax.random.uniform(numbers, (batch_size, 12), minval=-1.0, maxval=1.0),
      jax.random.normal(noise, (batch_size, size, size)))


def check_faces(faces, name: str = 'faces') -> None:
  """Raises InputConventionError unless `faces` are ORL-framed uint8 faces [N, 112, 92]."""
  expected = f'ORL-framed uint8 faces [N, {ORL_SHAPE[0]}, {ORL_SHAPE[1]}]'
  if hasattr(faces, 'dtype') and np.dtype(faces.dtype) != np.uint8:
    raise checks.InputConventionError(f'{name}: expected {expected}, got '
                                      f'{np.dtype(faces.dtype).name} of shape {tuple(faces.shape)}')
  checks.check_array(faces, name=name, expected=expected, dtype_kinds='u', rank=3, shape=ORL_SHAPE)


def _check_train_args(faces, steps, batch_size, learning_rate, crop_size, margin, conv_features,
                      rotate_degrees, scale_range, shift, box_jitter) -> None:
  check_faces(faces)
  if not len(faces):
    raise checks.InputConventionError('faces: expected at least one ORL-framed face, got none')
  for name, value, low in (('steps', steps, 1), ('batch_size', batch_size, 1)):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
      raise checks.InputConventionError(f'{name}: expected an integer >= {low}, got {value!r}')
  blocks = 2 ** len(conv_features)
  if not isinstance(crop_size, (int, np.integer)) or crop_size < blocks or crop_size % blocks:
    raise checks.InputConventionError(f'crop_size: expected a positive multiple of {blocks} (2 to '
                                      f'the number of conv blocks), got {crop_size!r}')
  for name, value in (('learning_rate', learning_rate), ('margin', margin)):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
      raise checks.InputConventionError(f'{name}: expected a positive number, got {value!r}')
  if not 0 <= rotate_degrees <= 90:
    raise checks.InputConventionError(f'rotate_degrees: expected 0..90, got {rotate_degrees!r}')
  if not (len(scale_range) == 2 and 0 < scale_range[0] <= scale_range[1]):
    raise checks.InputConventionError(f'scale_range: expected (low, high) with 0 < low <= high, '
                                      f'got {scale_range!r}')
  for name, value in (('shift', shift), ('box_jitter', box_jitter)):
    if not 0 <= value <= 0.5:
      raise checks.InputConventionError(f'{name}: expected a fraction in [0, 0.5], got {value!r}')


def train_locator(faces: np.ndarray, key: jax.Array, *, steps: int = 1000, batch_size: int = 32,
                  learning_rate: float = 3e-3, conv_features: Sequence[int] = (16, 32, 64),
                  dense_features: int = 64, crop_size: int = 32, margin: float = 1.4,
                  rotate_degrees: float = 25.0, scale_range: tuple[float, float] = (0.8, 1.25),
                  shift: float = 0.12, box_jitter: float = 0.05) -> Locator:
  """Trains an eye locator on ORL-framed faces uint8 [N, 112, 92] (training people only) with
  Adam (cosine decay from `learning_rate`) on the mean squared eye error in pixels of a 72-pixel
  face box; `key` (a jax.random key) draws the initialisation and every example. The defaults take
  about 45 s on 2 busy CPU cores (1000 steps of 32 crops of 32 x 32).

  Returns:
    A Locator; meta['training'] holds steps, seconds and the mean eye error (box pixels) of the
    last 10% of steps.

  Raises:
    InputConventionError: bad faces or settings (one line naming the argument).
  """
  _check_train_args(faces, steps, batch_size, learning_rate, crop_size, margin,
                    tuple(conv_features), rotate_degrees, scale_range, shift, box_jitter)
  settings = {'crop_size': int(crop_size), 'margin': float(margin),
              'rotate_degrees': float(rotate_degrees),
              'scale_range': (float(scale_range[0]), float(scale_range[1])),
              'shift': float(shift), 'box_jitter': float(box_jitter)}
  model = EyeNet(tuple(int(f) for f in conv_features), int(dense_features))
  init_key, data_key = jax.random.split(key)
  params = jax.jit(model.init)(init_key, jnp.zeros((1, crop_size, crop_size)))['params']
  optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))
  faces_f = jnp.asarray(faces, jnp.float32)

  @jax.jit
  def step(params, opt_state, index):
    crops, targets = training_batch(jax.random.fold_in(data_key, index), faces_f, batch_size,
                                    settings)

    def loss_fn(params):
      error = (model.apply({'params': params}, crops) - targets) * _SIDE
      return jnp.mean(jnp.sum(error * error, -1)), jnp.mean(jnp.sqrt(jnp.sum(error * error, -1)))

    (loss, distance), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, distance

  opt_state = optimizer.init(params)
  start, tail = time.perf_counter(), []
  for i in range(steps):
    params, opt_state, distance = step(params, opt_state, np.int32(i))
    if i >= steps - max(1, steps // 10):
      tail.append(distance)
  training = {'steps': int(steps), 'batch_size': int(batch_size),
              'learning_rate': float(learning_rate), 'faces': int(len(faces)), **settings,
              'seconds': round(time.perf_counter() - start, 2),
              'final_eye_error_box_pixels': float(np.mean(jax.device_get(tail)))}
  training['scale_range'] = list(training['scale_range'])
  meta = {'conv_features': [int(f) for f in conv_features], 'dense_features': int(dense_features),
          'crop_size': int(crop_size), 'margin': float(margin), 'training': training}
  return Locator(jax.device_get(params), meta)


def place_faces(faces: np.ndarray, rng: np.random.Generator, *,
                canvas: tuple[int, int] = (176, 176), rotate_degrees: float = 25.0,
                scale: float = 1.25, shift: float = 0.12, box_noise: float = 0.03
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Each ORL-framed face uint8 [N, 112, 92] under a random similarity in its own photo.

  Rotation uniform in +-rotate_degrees about the face box centre, scale log-uniform in
  [1/scale, scale], shift uniform in +-shift x the moved face side (x and y), the face box centre
  placed at the canvas centre before the shift; borders take the face's edge values.

  Returns:
    (photos uint8 [N, h, w] with (h, w) = canvas, boxes float32 [N, 4]: the moved FACE_BOX square
    (axis-aligned, same centre and side) with its centre moved by up to box_noise x side and its
    side scaled by up to exp(+-box_noise), true eyes float32 [N, 2, 2]: ORL_EYES moved).
  """
  check_faces(faces)
  n = len(faces)
  theta = np.radians(rotate_degrees) * rng.uniform(-1, 1, n)
  sigma = np.exp(rng.uniform(-np.log(scale), np.log(scale), n))
  moves = shift * _SIDE * sigma[:, None] * rng.uniform(-1, 1, (n, 2))
  at = np.asarray(canvas[::-1], np.float64) / 2 + moves  # Face box centres [N, 2].
  photos = np.empty((n, *canvas), np.uint8)
  eyes = np.empty((n, 2, 2))
  for i in range(n):
    c, s = np.cos(theta[i]), np.sin(theta[i])
    rotation = np.asarray([[c, -s], [s, c]])
    inverse = rotation.T / sigma[i]  # Photo -> face: p = centre + R^T (q - at) / sigma.
    frame = np.concatenate([inverse, (_CENTRE - inverse @ at[i])[:, None]], 1)
    photos[i] = alignment.warp(faces[i], frame[None], canvas)[0]
    eyes[i] = at[i] + sigma[i] * (np.asarray(ORL_EYES, np.float64) - _CENTRE) @ rotation.T
  side = _SIDE * sigma * np.exp(box_noise * rng.uniform(-1, 1, n))
  centres = at + box_noise * side[:, None] * rng.uniform(-1, 1, (n, 2))
  boxes = np.concatenate([centres - side[:, None] / 2, centres + side[:, None] / 2], 1)
  return photos, boxes.astype(np.float32), eyes.astype(np.float32)


def orl_eye_errors(frames: np.ndarray, eyes: np.ndarray) -> np.ndarray:
  """float64 [N]: the mean distance (pixels of the ORL frame) between ORL_EYES and the true eyes
  float [N, 2, 2] of photos brought into the ORL frame by frames [N, 2, 3] (ORL -> photo)."""
  inverse = alignment.invert_frames(frames)
  landed = np.einsum('nij,npj->npi', inverse[:, :, :2], np.asarray(eyes, np.float64))
  landed = landed + inverse[:, None, :, 2]
  return np.linalg.norm(landed - np.asarray(ORL_EYES, np.float64), axis=-1).mean(axis=1)
