"""Training windows of the HOG face detector: grey uint8 [N, s, s] squares at the window side s.

Positives are faces in the FACE_BOX_ORL framing (the 72x72 square of an ORL image, see
face_box.py), augmented: mirror, rotation +-10 degrees, scale +-10%, shift +-6% of the side,
brightness +-20 and contrast x0.7..1.3. Besides the caller's ORL faces, the first 100 images of
scikit-image's lfw_subset (25x25 faces) are put into the same framing: their mean face has its eyes
at about (5.7, 8.0) and (15.2, 8.1), 9.5 px apart, where the ORL mean face has them 30 px apart at
(32, 52) and (62, 52): by these eyes FACE_BOX_ORL is the lfw square of side 22.8 px centred at
(10.7, 11.0), i.e. lfw's 25 px frame is a little wider than the face box (not tighter), so the crop
needs at most 0.7 px of replicated border. They help: trained on 20 ORL people (default recipe with
CIFAR-10), on 30 faces of 10 other people pasted at 0.6..2.2x into skimage's rocket photo, 26 were
found with 8 false positives in all; without lfw, 27 with 140 false positives.

Negatives are random squares at random scales (log-uniform side from s to the photo's shorter side)
of photos without people, mirrored at random: the package photos of `package_photos` (sklearn's
china.jpg; skimage's coffee, chelsea, brick, grass, coins, page, text, moon, clock: each loads
offline and shows no human face; coins shows relief heads in profile ~20 px high on ancient coins,
kept) and, given a data folder, CIFAR-10 training photos (all ten classes, 24..32 px squares
scaled up to s). Photos another benchmark uses as backgrounds are deliberately not among these.
"""

import importlib.util
import os

import jax
import numpy as np
from PIL import Image

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import face_box

LFW_FACES = 100  # lfw_subset holds 100 faces, then 100 non-faces.
LFW_FACE_BOX_CENTRE = (10.7, 11.0)  # (x, y) of FACE_BOX_ORL in lfw_subset's 25x25 frame.
LFW_FACE_BOX_SIDE = 22.8
PACKAGE_PHOTOS = ('china', 'coffee', 'chelsea', 'brick', 'grass', 'coins', 'page', 'text', 'moon',
                  'clock')
CIFAR_ZIP = os.path.join('cifar10', 'train.zip')  # Under the data folder.


def numpy_rng(key) -> np.random.Generator:
  """A numpy generator seeded by a JAX PRNG key (typed or raw uint32 [2]), for host-side image
  work; anything else is an InputConventionError naming `key`."""
  try:
    data = np.asarray(jax.random.key_data(key), np.uint32).ravel()
  except (TypeError, ValueError) as e:
    raise checks.InputConventionError(f'key: expected a JAX PRNG key, got '
                                      f'{type(key).__name__}') from e
  return np.random.default_rng([int(v) for v in data])


def grey(rgb: np.ndarray) -> np.ndarray:
  """uint8 [..., H, W] of uint8 RGB [..., H, W, 3]: PIL's convert('L') luma (ITU-R 601-2)."""
  rgb = np.asarray(rgb, np.uint32)
  return ((rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
          ).astype(np.uint8)


def _check_side(side) -> None:
  if not isinstance(side, (int, np.integer)) or side < 8:
    raise checks.InputConventionError(f'side: expected an int >= 8, got {side!r}')


def crop_square(image: np.ndarray, centre, side: float, out: int, angle: float = 0.0,
                mirror: bool = False) -> np.ndarray:
  """uint8 [out, out]: the square of `side` px centred at `centre` = (x, y) (within the image) of
  a grey uint8 image [H, W], rotated by `angle` degrees about its centre, resized (antialiased
  when shrinking), optionally mirrored; pixels outside the image repeat its border."""
  zoom = out / side
  # Only the neighbourhood the rotated square can reach, its outside padded with the border.
  reach = int(np.ceil(side * 0.75)) + 2
  x0, y0 = int(np.floor(centre[0])) - reach, int(np.floor(centre[1])) - reach
  x1, y1 = x0 + 2 * reach + 1, y0 + 2 * reach + 1
  h, w = image.shape
  if not (0 <= centre[0] <= w and 0 <= centre[1] <= h):
    raise checks.InputConventionError(f'centre: expected a point of the {w}x{h} image, got '
                                      f'{tuple(centre)}')
  inside = image[max(0, y0):max(0, y1), max(0, x0):max(0, x1)]
  padded = np.pad(inside, ((max(0, -y0), max(0, y1 - h)), (max(0, -x0), max(0, x1 - w))),
                  mode='edge')
  picture = Image.fromarray(padded)
  cx, cy = centre[0] - x0, centre[1] - y0  # Continuous coordinates: pixel i spans [i, i + 1).
  unit = side / out  # Source px per output px.
  if zoom < 1:  # Shrink first with PIL's antialiasing filter, as the detector's pyramid does.
    size = (max(1, round(picture.width * zoom)), max(1, round(picture.height * zoom)))
    picture = picture.resize(size, Image.BILINEAR)
    zx, zy = size[0] / padded.shape[1], size[1] / padded.shape[0]
    cx, cy, unit = cx * zx, cy * zy, unit * zx
  cos, sin = np.cos(np.radians(angle)), np.sin(np.radians(angle))
  # PIL samples output pixel (u, v) at source (a, b, c; d, e, f) @ (u + 0.5, v + 0.5, 1): the
  # centre plus the rotated offset from the output's centre.
  a, b, d, e = cos * unit, -sin * unit, sin * unit, cos * unit
  c, f = cx - (a + b) * out / 2, cy - (d + e) * out / 2
  window = np.asarray(picture.transform((out, out), Image.AFFINE, (a, b, c, d, e, f),
                                        Image.BILINEAR), np.uint8)
  return window[:, ::-1].copy() if mirror else window


def _augmented(image, centre, side, out, rng, copies, *, rotation=10.0, scale=0.1, shift=0.06,
               brightness=20.0, contrast=0.3) -> list[np.ndarray]:
  windows = []
  for copy in range(copies):
    plain = copy == 0  # The first copy of each face is the face itself (mirror aside).
    zoom = 1.0 if plain else rng.uniform(1 - scale, 1 + scale)
    dx, dy = (0.0, 0.0) if plain else rng.uniform(-shift, shift, 2) * side
    window = crop_square(image, (centre[0] + dx, centre[1] + dy), side / zoom, out,
                         0.0 if plain else rng.uniform(-rotation, rotation),
                         bool(rng.integers(2)))
    if not plain:
      w = window.astype(np.float32)
      w = (w - w.mean()) * rng.uniform(1 - contrast, 1 + contrast) + w.mean() + rng.uniform(
          -brightness, brightness)
      window = np.clip(np.round(w), 0, 255).astype(np.uint8)
    windows.append(window)
  return windows


def orl_positive_windows(faces: np.ndarray, key, side: int = 48, copies: int = 8) -> np.ndarray:
  """uint8 [N * copies, side, side]: FACE_BOX_ORL of each ORL face [N, 112, 92] uint8 (grey),
  `copies` augmented versions each (the first unaugmented but for a random mirror), face-major:
  the copies of one face side by side."""
  checks.check_images(faces, name='faces', dtype_kind='u', rank=3, shape=face_box.ORL_SHAPE)
  _check_side(side)
  rng = numpy_rng(key)
  box = face_box.FACE_BOX_ORL
  centre, box_side = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), box[2] - box[0]
  windows = [w for face in faces for w in _augmented(face, centre, box_side, side, rng, copies)]
  return np.stack(windows) if windows else np.zeros((0, side, side), np.uint8)


def lfw_faces() -> np.ndarray:
  """The 100 faces of skimage.data.lfw_subset() as uint8 [100, 25, 25]."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  faces = skimage.data.lfw_subset()[:LFW_FACES]
  return np.clip(np.round(faces * 255), 0, 255).astype(np.uint8)


def lfw_positive_windows(key, side: int = 48, copies: int = 4) -> np.ndarray:
  """uint8 [100 * copies, side, side]: lfw_subset's faces in the FACE_BOX_ORL framing (see the
  module docstring), augmented as `orl_positive_windows`."""
  _check_side(side)
  rng = numpy_rng(key)
  windows = [w for face in lfw_faces() for w in _augmented(
      face, LFW_FACE_BOX_CENTRE, LFW_FACE_BOX_SIDE, side, rng, copies)]
  return np.stack(windows)


def _sklearn_sample_photo(name: str) -> np.ndarray:
  """Grey uint8 [H, W] of scikit-learn's sample photo `name` (read from the package's files, so
  sklearn itself, slow to import, is not imported)."""
  spec = importlib.util.find_spec('sklearn')
  if spec is None or not spec.submodule_search_locations:
    raise UserError(f'the sample photo {name} needs scikit-learn, which is not installed')
  path = os.path.join(spec.submodule_search_locations[0], 'datasets', 'images', name)
  with Image.open(path) as photo:
    return np.asarray(photo.convert('L'), np.uint8)


def package_photos() -> list[np.ndarray]:
  """Grey uint8 [H, W] photos without people shipped with scikit-learn / scikit-image (offline),
  in PACKAGE_PHOTOS order."""
  import skimage.data  # pylint: disable=g-import-not-at-top
  photos = []
  for name in PACKAGE_PHOTOS:
    photo = _sklearn_sample_photo('china.jpg') if name == 'china' else getattr(skimage.data,
                                                                                 name)()
    photos.append(grey(photo) if photo.ndim == 3 else np.asarray(photo, np.uint8))
  return photos


def cifar_photos(data_dir) -> np.ndarray:
  """CIFAR-10's 50,000 training photos (all ten classes) as grey uint8 [N, 32, 32], read with the
  project's image-folder loader from `<data_dir>/cifar10/train.zip` (cached after the first read).

  Raises:
    UserError: the zip is missing or unreadable (the message names it).
  """
  from mlfun_jax.data import image_folder  # pylint: disable=g-import-not-at-top
  dataset = image_folder.load_image_folder(os.path.join(os.fspath(data_dir), CIFAR_ZIP),
                                           name='cifar10', image_size=32, channels=3,
                                           validation_fraction=0.0)
  return grey(dataset.train.images)


def negative_windows(photos, count: int, key, side: int = 48,
                     min_side: int | None = None) -> np.ndarray:
  """uint8 [count, side, side]: random squares of random photos (each a grey uint8 [H, W]), of a
  log-uniform side from `min_side` (default `side`, or the photo's shorter side if smaller) to the
  photo's shorter side, resized to `side`, mirrored at random."""
  _check_side(side)
  if not len(photos):
    raise checks.InputConventionError('photos: expected at least one photo')
  for i, photo in enumerate(photos):
    checks.check_images(photo, name=f'photos[{i}]', dtype_kind='u', rank=2)
  rng = numpy_rng(key)
  windows = np.zeros((count, side, side), np.uint8)
  for n in range(count):
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape
    high = min(h, w)
    low = min(high, min_side or side)
    square = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    x = rng.uniform(0, w - square) + square / 2
    y = rng.uniform(0, h - square) + square / 2
    windows[n] = crop_square(photo, (x, y), square, side, mirror=bool(rng.integers(2)))
  return windows
