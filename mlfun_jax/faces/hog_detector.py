"""The series' face detector: HOG block features and a linear classifier slid over an image pyramid.

A window is a `window` x `window` square in the FACE_BOX_ORL framing (face_box.py). Detection:
the photo is resized to one pyramid level per face size (sizes `step` apart from `min_face` to
`max_face`); each level is cut into overlapping square tiles of a fixed size (one per
`positions` x `positions` window positions, one cell apart), and one jitted program computes the
HOG block map of every tile of every level in one batch (tile counts bucketed to powers of two, so
it compiles once per bucket, whatever the photo's size) and the score of every window position as
one correlation of the block map with the weights. Scores above the threshold become boxes in the
photo, and non-maximum suppression keeps the best of overlapping ones.

Training (`train_hog_detector`): a linear classifier over a window's HOG features, the squared
hinge loss with L2 (an L2-SVM), full-batch Adam steps jitted as one loop, then rounds of
hard-negative mining (the detector's best-scoring windows on photos without faces join the
negatives and it is retrained); the score threshold is picked on held-out windows.
`train_from_faces` is the whole recipe from ORL-framed faces.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from mlfun_jax.core import array_files
from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import detector_windows
from mlfun_jax.faces import face_box
from mlfun_jax.faces import hog

NOUN = 'face detector'
MAX_CANDIDATES = 2000  # Best-scoring windows of a photo that go into non-maximum suppression.
_MAX_TILES = 32  # Tiles per call of the jitted program.


def _bucket(n: int) -> int:
  return max(4, 1 << (n - 1).bit_length())


@functools.partial(jax.jit, static_argnames=('cell',))
def _tile_scores(tiles, weights, bias, cell):
  """Scores float32 [B, P, P] of every window position of tiles float32 [B, T, T]."""
  blocks = hog.blocks_of_cells(hog.cell_histograms(tiles, cell))
  scores = jax.lax.conv_general_dilated(blocks, weights[..., None], (1, 1), 'VALID',
                                        dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return scores[..., 0] + bias


def window_features(windows, cell: int) -> jax.Array:
  """HOG block features float32 [N, D] of uint8 windows [N, s, s], in chunks of bucketed size."""
  checks.check_images(windows, name='windows', dtype_kind='u', rank=3)
  chunk = 256
  out = []
  for start in range(0, len(windows), chunk):
    part = np.asarray(windows[start:start + chunk], np.float32)
    padded = np.zeros((_bucket(len(part)) if len(part) < chunk else chunk, *part.shape[1:]),
                      np.float32)
    padded[:len(part)] = part
    out.append(hog.hog_features(padded, cell)[:len(part)])
  if not out:
    return jnp.zeros((0, hog_size(windows.shape[1], cell)), jnp.float32)
  return jnp.concatenate(out)


def hog_size(window: int, cell: int) -> int:
  """The number of HOG features of a window of side `window` with cells of `cell` px."""
  blocks = window // cell - 1
  return blocks * blocks * 4 * hog.ORIENTATIONS


@dataclasses.dataclass(frozen=True, eq=False)
class _Scan:
  """Windows of one photo scored: level images, and per window its level, row, column, score."""
  levels: list[np.ndarray]
  scales: list[tuple[float, float]]  # (x, y) level px per photo px.
  level: np.ndarray
  row: np.ndarray
  column: np.ndarray
  scores: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class HogDetector:
  """A linear HOG face detector (see the module docstring).

  Attributes:
    weights: float32 [b, b, 4 * 9]: one per block feature of a window (b = window // cell - 1).
    bias: the score's offset.
    window: the window side in px (a multiple of `cell`).
    cell: the HOG cell side in px.
    threshold: windows scoring above it are detections.
    step: the ratio of consecutive pyramid face sizes (> 1).
    min_face, max_face: the smallest and largest face sides looked for, in photo px (None: the
      window side, and the photo's shorter side).
    iou_threshold, containment_threshold: of the non-maximum suppression (see
      face_box.non_max_suppression; the latter also drops parts of a face and windows around it).
    meta: what training measured (JSON-able), saved with the weights.
  """
  weights: np.ndarray
  bias: float
  window: int = 48
  cell: int = 6
  threshold: float = 0.0
  step: float = 1.2
  min_face: float | None = None
  max_face: float | None = None
  iou_threshold: float = 0.3
  containment_threshold: float | None = 0.7
  meta: dict = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    if self.window % self.cell or self.window // self.cell < 3:
      raise UserError(f'{NOUN}: window {self.window} must be a multiple of cell {self.cell} and '
                      '>= 3 cells')
    blocks = self.window // self.cell - 1
    shape = (blocks, blocks, 4 * hog.ORIENTATIONS)
    if np.shape(self.weights) != shape:
      raise UserError(f'{NOUN}: weights of shape {np.shape(self.weights)}, expected {shape} for '
                      f'window {self.window} and cell {self.cell}')
    if not self.step > 1:
      raise UserError(f'{NOUN}: step {self.step} must be > 1')

  @property
  def positions(self) -> int:
    """Window positions per tile side (tiles are about four windows wide)."""
    return 3 * self.window // self.cell + 1

  @property
  def tile(self) -> int:
    return self.window + (self.positions - 1) * self.cell

  def score_windows(self, windows) -> np.ndarray:
    """Scores float32 [N] of uint8 windows [N, window, window] (each alone, as in training)."""
    checks.check_images(windows, name='windows', dtype_kind='u', rank=3,
                        shape=(self.window, self.window))
    features = window_features(windows, self.cell)
    return np.asarray(features @ jnp.asarray(self.weights).reshape(-1) + self.bias, np.float32)

  def _face_sizes(self, height: int, width: int) -> list[float]:
    low = float(self.min_face or self.window)
    high = float(min(self.max_face or min(height, width), min(height, width)))
    sizes = []
    while low <= high * (1 + 1e-6):
      sizes.append(low)
      low *= self.step
    return sizes

  def _scan(self, image: np.ndarray, threshold: float, max_candidates: int) -> _Scan:
    """Every window of every pyramid level scored; those above `threshold` kept (at most
    `max_candidates`, the best)."""
    height, width = image.shape
    s, c, p, t = self.window, self.cell, self.positions, self.tile
    picture = Image.fromarray(image)
    levels, scales, tiles, places = [], [], [], []
    for face in self._face_sizes(height, width):
      zoom = s / face
      size = (max(s, round(width * zoom)), max(s, round(height * zoom)))
      level = np.asarray(picture.resize(size, Image.BILINEAR), np.float32)
      ny, nx = (size[1] - s) // c + 1, (size[0] - s) // c + 1
      ty, tx = -(-ny // p), -(-nx // p)
      need_y, need_x = (ty - 1) * p * c + t, (tx - 1) * p * c + t
      padded = np.pad(level[:need_y, :need_x], ((0, max(0, need_y - size[1])),
                                                (0, max(0, need_x - size[0]))), mode='edge')
      for i in range(ty):
        for j in range(tx):
          tiles.append(padded[i * p * c:i * p * c + t, j * p * c:j * p * c + t])
          places.append((len(levels), i * p, j * p, ny, nx))
      levels.append(level)
      scales.append((size[0] / width, size[1] / height))
    weights = jnp.asarray(self.weights, jnp.float32)
    scores = []
    for start in range(0, len(tiles), _MAX_TILES):
      part = np.stack(tiles[start:start + _MAX_TILES])
      batch = np.zeros((_bucket(len(part)), t, t), np.float32)
      batch[:len(part)] = part
      scores.append(np.asarray(_tile_scores(batch, weights, jnp.float32(self.bias), c))[:len(part)])
    found = {name: [] for name in ('level', 'row', 'column', 'scores')}
    for tile_scores, (level, row, column, ny, nx) in zip(
        np.concatenate(scores) if scores else [], places):
      tile_scores = tile_scores[:ny - row, :nx - column]  # Windows inside the level only.
      rows, columns = np.nonzero(tile_scores > threshold)
      found['level'].append(np.full(len(rows), level))
      found['row'].append(rows + row)
      found['column'].append(columns + column)
      found['scores'].append(tile_scores[rows, columns])
    found = {k: np.concatenate(v) if v else np.zeros(0) for k, v in found.items()}
    best = np.argsort(-found['scores'], kind='stable')[:max_candidates]
    return _Scan(levels, scales, found['level'][best].astype(np.int64),
                 found['row'][best].astype(np.int64), found['column'][best].astype(np.int64),
                 found['scores'][best].astype(np.float32))

  def _boxes(self, scan: _Scan) -> np.ndarray:
    zoom = np.asarray(scan.scales, np.float64).reshape(-1, 2)[scan.level]
    left, top = scan.column * self.cell / zoom[:, 0], scan.row * self.cell / zoom[:, 1]
    return np.stack([left, top, left + self.window / zoom[:, 0],
                     top + self.window / zoom[:, 1]], axis=1).astype(np.float32).reshape(-1, 4)

  def detect(self, image, threshold: float | None = None,
             max_candidates: int = MAX_CANDIDATES) -> tuple[np.ndarray, np.ndarray]:
    """(boxes float32 [N, 4] (left, top, right, bottom) in photo px, in the FACE_BOX framing,
    scores float32 [N]) of the faces in a grey uint8 photo [H, W], best first, after non-maximum
    suppression; `threshold` overrides the detector's (-inf: the best windows, whatever their
    score); at most `max_candidates` best windows go into the suppression."""
    checks.check_images(image, name='image', dtype_kind='u', rank=2)
    if min(image.shape) < self.window:
      return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    scan = self._scan(np.asarray(image), self.threshold if threshold is None else threshold,
                      max_candidates)
    boxes = self._boxes(scan)
    kept = face_box.non_max_suppression(boxes, scan.scores, self.iou_threshold,
                                        self.containment_threshold)
    return boxes[kept], scan.scores[kept]

  def hard_negatives(self, photo: np.ndarray, threshold: float, count: int) -> np.ndarray:
    """uint8 [K <= count, window, window]: the best-scoring windows above `threshold` of a photo
    without faces (overlapping ones suppressed at IoU 0.5)."""
    checks.check_images(photo, name='photo', dtype_kind='u', rank=2)
    if min(photo.shape) < self.window:
      return np.zeros((0, self.window, self.window), np.uint8)
    scan = self._scan(photo, threshold, MAX_CANDIDATES)
    kept = face_box.non_max_suppression(self._boxes(scan), scan.scores, 0.5)[:count]
    s, c = self.window, self.cell
    windows = [scan.levels[scan.level[k]][scan.row[k] * c:scan.row[k] * c + s,
                                          scan.column[k] * c:scan.column[k] * c + s]
               for k in kept]
    if not windows:
      return np.zeros((0, s, s), np.uint8)
    return np.clip(np.round(np.stack(windows)), 0, 255).astype(np.uint8)

  def save(self, path) -> str:
    """Writes the detector to `path` (.npz, atomic, checksummed); returns `path`."""
    settings = {'bias': float(self.bias), 'window': int(self.window), 'cell': int(self.cell),
                'threshold': float(self.threshold), 'step': float(self.step),
                'min_face': self.min_face, 'max_face': self.max_face,
                'iou_threshold': float(self.iou_threshold),
                'containment_threshold': self.containment_threshold}
    return array_files.save(path, {'weights': np.asarray(self.weights, np.float32)},
                            {'kind': 'hog_face_detector', 'settings': settings,
                             'training': self.meta})

  @classmethod
  def load(cls, path) -> HogDetector:
    """The detector saved at `path` (UserError naming it when missing, damaged or not one)."""
    arrays, meta = array_files.load(path, NOUN)
    if meta.get('kind') != 'hog_face_detector' or 'weights' not in arrays:
      raise UserError(f'{NOUN} {str(path)!r} is not a saved HOG face detector')
    try:
      return cls(weights=arrays['weights'], meta=meta.get('training', {}), **meta['settings'])
    except (TypeError, KeyError) as e:
      raise UserError(f'{NOUN} {str(path)!r} has unexpected settings ({e})') from e


@functools.partial(jax.jit, static_argnames=('steps',))
def _fit(features, labels, sample_weights, params, steps, l2, learning_rate):
  """Full-batch Adam on the weighted squared hinge loss + l2/2 |w|^2; returns the params."""
  optimizer = optax.adam(learning_rate)

  def loss(p):
    margins = jnp.maximum(0.0, 1.0 - labels * (features @ p['w'] + p['b']))
    return jnp.sum(sample_weights * jnp.square(margins)) + 0.5 * l2 * jnp.sum(jnp.square(p['w']))

  def step(carry, _):
    p, state = carry
    grads = jax.grad(loss)(p)
    updates, state = optimizer.update(grads, state, p)
    return (optax.apply_updates(p, updates), state), None

  (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
  return params


def _class_weights(labels: np.ndarray) -> np.ndarray:
  """Each class weighs one half in total."""
  positives = max(1, int(np.sum(labels > 0)))
  negatives = max(1, int(np.sum(labels < 0)))
  return np.where(labels > 0, 0.5 / positives, 0.5 / negatives).astype(np.float32)


def _split(n: int, fraction: float) -> int:
  """The size of the training part of n items (the last round(n * fraction) are held out)."""
  return n - int(round(n * fraction))


def train_hog_detector(positives, negatives, negative_photos, key, *, cell: int = 6,
                       steps: int = 300, l2: float = 1e-4, learning_rate: float = 0.01,
                       mining_rounds: int = 2, mined_per_photo: int = 300,
                       validation_fraction: float = 0.2, held_positives: int | None = None,
                       false_positive_rate: float = 0.001,
                       step: float = 1.2, min_face: float | None = None,
                       max_face: float | None = None, iou_threshold: float = 0.3,
                       containment_threshold: float | None = 0.7,
                       log=None) -> HogDetector:
  """A linear HOG face detector trained on windows, with hard-negative mining.

  Args:
    positives: face windows uint8 [P, s, s] in the FACE_BOX_ORL framing, in source order (the
      augmented copies of one face side by side): the last `held_positives` (default: the last
      `validation_fraction`) are held out.
    negatives: windows without faces uint8 [Q, s, s]; the last `validation_fraction` are held out.
    negative_photos: grey uint8 photos [H, W] without faces, mined for hard negatives (the windows
      mined in a round scoring above -1: at most `mined_per_photo` per photo; every
      (1 / validation_fraction)-th of them is held out).
    key: a JAX PRNG key (the initial weights).
    cell: the HOG cell side (s must be a multiple).
    steps, l2, learning_rate: of each round's full-batch Adam fit of the squared hinge loss.
    mining_rounds: rounds of mining and retraining after the first fit.
    false_positive_rate: the threshold is the smallest score that at most this fraction of the
      held-out negative windows exceed (the held-out recall is reported in `meta`).
    step, min_face, max_face, iou_threshold, containment_threshold: the detector's pyramid and
      suppression settings.
    log: None or a function of one str (progress lines).

  Raises:
    InputConventionError: the windows are not uint8 [N, s, s] of one side s (a multiple of cell).
  """
  checks.check_images(positives, name='positives', dtype_kind='u', rank=3)
  side = positives.shape[1]
  checks.check_images(negatives, name='negatives', dtype_kind='u', rank=3, shape=(side, side))
  if positives.shape[2] != side or side % cell or side // cell < 3:
    raise checks.InputConventionError(f'positives: expected square windows [P, s, s] with s a '
                                      f'multiple of cell={cell} (>= 3 cells), got shape '
                                      f'{positives.shape}')
  if len(positives) < 2 or len(negatives) < 2:
    raise checks.InputConventionError('positives, negatives: expected at least 2 windows each')
  for i, photo in enumerate(negative_photos):
    checks.check_images(photo, name=f'negative_photos[{i}]', dtype_kind='u', rank=2)
  log = log or (lambda line: None)
  began = time.perf_counter()
  p_train = (_split(len(positives), validation_fraction) if held_positives is None
             else len(positives) - held_positives)
  n_train = _split(len(negatives), validation_fraction)
  train_features = jnp.concatenate([window_features(positives[:p_train], cell),
                                    window_features(negatives[:n_train], cell)])
  held_positive_features = window_features(positives[p_train:], cell)
  held_negatives = window_features(negatives[n_train:], cell)
  labels = np.concatenate([np.ones(p_train), -np.ones(n_train)]).astype(np.float32)
  blocks = side // cell - 1
  params = {'w': 0.01 * jax.random.normal(key, (train_features.shape[1],), jnp.float32),
            'b': jnp.zeros((), jnp.float32)}
  settings = dict(window=side, cell=cell, step=step, min_face=min_face, max_face=max_face,
                  iou_threshold=iou_threshold, containment_threshold=containment_threshold)
  mined_total = 0
  for round_ in range(mining_rounds + 1):
    params = _fit(train_features, jnp.asarray(labels), jnp.asarray(_class_weights(labels)),
                  params, steps, l2, learning_rate)
    detector = HogDetector(weights=np.asarray(params['w']).reshape(blocks, blocks, -1),
                           bias=float(params['b']), **settings)
    if round_ == mining_rounds:
      break
    mined = [detector.hard_negatives(photo, -1.0, mined_per_photo) for photo in negative_photos]
    mined = np.concatenate(mined) if mined else np.zeros((0, side, side), np.uint8)
    mined_total += len(mined)
    log(f'round {round_}: mined {len(mined)} hard negatives '
        f'({time.perf_counter() - began:.1f} s)')
    if not len(mined):
      break
    held = np.zeros(len(mined), bool)  # Every k-th mined window is held out.
    if validation_fraction > 0:
      held[::max(1, int(round(1 / validation_fraction)))] = True
    mined_features = window_features(mined, cell)
    train_features = jnp.concatenate([train_features, mined_features[~held]])
    labels = np.concatenate([labels, -np.ones(int(np.sum(~held)), np.float32)])
    held_negatives = jnp.concatenate([held_negatives, mined_features[held]])
  w = params['w']
  positive_scores = np.asarray(held_positive_features @ w + params['b'])
  negative_scores = np.asarray(held_negatives @ w + params['b'])
  train_scores = np.asarray(train_features @ w + params['b'])
  if len(negative_scores):
    threshold = float(np.quantile(negative_scores, 1 - false_positive_rate, method='higher'))
  else:
    threshold = 0.0
  meta = {
      'positives': int(len(positives)), 'negatives': int(len(negatives)),
      'mined_negatives': int(mined_total), 'steps': int(steps), 'l2': float(l2),
      'train_accuracy': float(np.mean((train_scores > 0) == (labels > 0))),
      'held_out_recall': float(np.mean(positive_scores > threshold)) if len(positive_scores)
                         else float('nan'),
      'held_out_false_positive_rate': float(np.mean(negative_scores > threshold))
                                      if len(negative_scores) else float('nan'),
      'held_out_negatives': int(len(negative_scores)),
      'train_seconds': round(time.perf_counter() - began, 2),
  }
  log(f'trained: {meta}')
  return dataclasses.replace(detector, threshold=threshold, meta=meta)


def train_from_faces(faces, key, data_dir=None, *, copies: int = 8, lfw: bool = True,
                     lfw_copies: int = 4, negatives: int = 8000, cifar_fraction: float = 0.3,
                     mining_photos: int | None = None, window: int = 48, cell: int = 6,
                     **options) -> HogDetector:
  """The whole recipe: a detector trained from ORL-framed faces of training people.

  Args:
    faces: grey uint8 ORL faces [N, 112, 92] of the training people (in person order: the last
      `validation_fraction` of them are held out for the threshold).
    key: a JAX PRNG key.
    data_dir: the data folder holding cifar10/train.zip (CIFAR-10 training photos join the
      negatives, `cifar_fraction` of them); None: the package photos alone.
    copies: augmented windows per ORL face; lfw, lfw_copies: whether, and how many per face, of
      scikit-image's 100 lfw_subset faces join the positives.
    negatives: random negative windows (package photos, plus CIFAR-10 given data_dir).
    mining_photos: how many of the package photos are mined for hard negatives (None: all).
    window, cell: the window side and HOG cell (px).
    options: passed on to `train_hog_detector` (steps, mining_rounds, false_positive_rate, ...).
  """
  checks.check_images(faces, name='faces', dtype_kind='u', rank=3, shape=face_box.ORL_SHAPE)
  keys = jax.random.split(key, 7)
  fraction = options.get('validation_fraction', 0.2)
  # The last faces are held out, all copies of a face on one side; lfw's likewise, spliced in.
  orl = detector_windows.orl_positive_windows(faces, keys[0], window, copies)
  cut = _split(len(faces), fraction) * copies
  parts = [orl[:cut], orl[cut:]]
  if lfw:
    lfw_windows = detector_windows.lfw_positive_windows(keys[1], window, lfw_copies)
    lfw_cut = _split(detector_windows.LFW_FACES, fraction) * lfw_copies
    parts = [orl[:cut], lfw_windows[:lfw_cut], orl[cut:], lfw_windows[lfw_cut:]]
  positives = np.concatenate(parts)
  options = {'held_positives': len(positives) - len(parts[0]) - (len(parts[1]) if lfw else 0),
             **options}
  photos = detector_windows.package_photos()
  from_cifar = int(round(negatives * cifar_fraction)) if data_dir is not None else 0
  negative_windows = detector_windows.negative_windows(photos, negatives - from_cifar, keys[2],
                                                       window)
  if from_cifar:
    cifar = detector_windows.cifar_photos(data_dir)
    chosen = detector_windows.numpy_rng(keys[3]).choice(len(cifar), from_cifar, replace=False)
    cifar_windows = detector_windows.negative_windows(list(cifar[chosen]), from_cifar, keys[4],
                                                      window, min_side=24)
    negative_windows = np.concatenate([negative_windows, cifar_windows])
    negative_windows = negative_windows[detector_windows.numpy_rng(keys[5]).permutation(
        len(negative_windows))]
  return train_hog_detector(positives, negative_windows, photos[:mining_photos], keys[6],
                            cell=cell, **options)
