"""A face-detection benchmark that needs no network: group pictures of pasted ORL faces on photos
without people, plus real photos with faces that ship inside installed packages.

Group pictures: each ORL face (92x112) is scaled so its face box (FACE_BOX_ORL) has a random side,
rotated a little about the box centre, given a random brightness and contrast, and blended into the
background through a soft ellipse around the head (no patch edges). Its ground truth is the
axis-aligned square of the face box's centre and side. Randomness comes from a JAX key only.

The photos (all grey uint8, loaded offline; keep them disjoint from the detectors' training
negatives, which use scikit-learn's china.jpg and scikit-image's coffee, chelsea, brick, grass,
coins, page, text, moon and clock):
- backgrounds (`benchmark_backgrounds`): scikit-learn's flower.jpg; scikit-image's rocket, gravel,
  hubble_deep_field, immunohistochemistry, retina, stereo_motorcycle (left), colorwheel and horse
  (a silhouette), each looked at: none shows a person; plus mosaics of CIFAR-10 images that the
  detectors never train on: the test split only (`cifar_test_source`; absent from a data folder
  that holds train.zip alone, whose every image the HOG detector may train on).
- real faces (`real_face_photos`): scikit-image's astronaut (Eileen Collins) and matplotlib's
  grace_hopper.jpg, boxes annotated by hand from the eye centres (`box_from_eyes`). Looked for and
  left out: scikit-image's camera (the cameraman's face is in profile: neither a frontal face to
  find nor a false positive when found), lfw_subset (25x25 crops, not photos; a training source),
  cat/chelsea (a cat), scikit-learn's sample images (china, flower: no person), and the datasets
  that need a download (Olivetti = ORL, LFW).
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.faces import detector_windows
from mlfun_jax.faces import face_box

BACKGROUND_PHOTOS = ('flower', 'rocket', 'gravel', 'hubble_deep_field', 'immunohistochemistry',
                     'retina', 'stereo_motorcycle', 'colorwheel', 'horse')
BACKGROUND_SHAPE = (480, 640)  # (height, width) of every benchmark background.

# The soft head mask in ORL pixels: an ellipse (centre, semi-axes), opaque inside FEATHER of its
# radius, fading to nothing at its edge; HEAD_REACH bounds its distance from the face box centre.
HEAD_CENTRE = (46.0, 58.0)
HEAD_AXES = (44.0, 54.0)
FEATHER = 0.2
HEAD_REACH = 56.0
_BOX_CENTRE = (0.5 * (face_box.FACE_BOX_ORL[0] + face_box.FACE_BOX_ORL[2]),
               0.5 * (face_box.FACE_BOX_ORL[1] + face_box.FACE_BOX_ORL[3]))
_BOX_SIDE = float(face_box.FACE_BOX_ORL[2] - face_box.FACE_BOX_ORL[0])
_EYE_DISTANCE = float(face_box.ORL_EYES[1][0] - face_box.ORL_EYES[0][0])


class Picture(NamedTuple):
  """One benchmark picture: image uint8 [H, W], its face boxes float32 [K, 4], and where it comes
  from ('group:<background>' or 'photo:<name>')."""
  image: np.ndarray
  boxes: np.ndarray
  source: str


def _check_side(name: str, value) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 8:
    raise checks.InputConventionError(f'{name}: expected a face box side >= 8 pixels, got '
                                      f'{value!r}')
  return float(value)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
  """Intersection area of two boxes [4]."""
  width = min(a[2], b[2]) - max(a[0], b[0])
  height = min(a[3], b[3]) - max(a[1], b[1])
  return max(width, 0.0) * max(height, 0.0)


def _square(centre: tuple[float, float], half: float) -> np.ndarray:
  return np.asarray([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])


def _place(rng: np.random.Generator, shape: tuple[int, int], placed: list, min_side: float,
           max_side: float, max_overlap: float, tries: int = 400) -> tuple[float, float, float]:
  """(centre x, centre y, side) of a face box inside the image whose head covers at most
  max_overlap of any placed box, and whose box at most that much is covered by a placed head.
  Later tries draw smaller sides. Raises UserError when none fits."""
  height, width = shape
  top = min(max_side, height, width)
  for attempt in range(tries):
    upper = top - (top - min_side) * attempt / tries
    side = math.exp(rng.uniform(math.log(min_side), math.log(upper)))
    cx = rng.uniform(side / 2, width - side / 2)
    cy = rng.uniform(side / 2, height - side / 2)
    box = _square((cx, cy), side / 2)
    head = _square((cx, cy), HEAD_REACH / _BOX_SIDE * side)
    if all(_overlap(head, other_box) <= max_overlap * (other_box[2] - other_box[0]) ** 2 and
           _overlap(other_head, box) <= max_overlap * side ** 2
           for other_box, other_head in placed):
      return cx, cy, side
  raise UserError(f'could not place {len(placed) + 1} faces of side >= {min_side:g} px without '
                  f'overlap on a {width}x{height} background (fewer faces or a smaller min_side)')


def paste_face(image: np.ndarray, face: np.ndarray, centre: tuple[float, float], side: float,
               degrees: float, contrast: float = 1.0, brightness: float = 0.0) -> np.ndarray:
  """`image` (float32 [H, W], changed in place and returned) with the ORL `face` (uint8 [112, 92])
  blended in through the soft head ellipse: its face box centred at `centre` (x, y) with `side`
  pixels, turned `degrees` counter-clockwise as displayed, its values v made
  (v - mean) * contrast + mean + brightness (mean over its face box), clipped to 0..255."""
  import scipy.ndimage  # pylint: disable=g-import-not-at-top
  scale = side / _BOX_SIDE
  reach = HEAD_REACH * scale
  height, width = image.shape
  x0, x1 = max(int(centre[0] - reach), 0), min(int(math.ceil(centre[0] + reach)), width)
  y0, y1 = max(int(centre[1] - reach), 0), min(int(math.ceil(centre[1] + reach)), height)
  if x1 <= x0 or y1 <= y0:
    return image
  pixels = np.asarray(face, np.float32)
  if scale < 1:  # Blur before shrinking (no aliasing).
    pixels = scipy.ndimage.gaussian_filter(pixels, 0.5 * (1 / scale - 1), mode='nearest')
  # Output pixel centres -> ORL coordinates (continuous; pixel j spans [j, j + 1)).
  dx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - centre[0])[None, :] / scale
  dy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - centre[1])[:, None] / scale
  theta = math.radians(degrees)
  cos, sin = math.cos(theta), math.sin(theta)  # Image y points down: this turns counter-clockwise.
  qx = _BOX_CENTRE[0] + cos * dx - sin * dy
  qy = _BOX_CENTRE[1] + sin * dx + cos * dy
  radius = np.hypot((qx - HEAD_CENTRE[0]) / HEAD_AXES[0], (qy - HEAD_CENTRE[1]) / HEAD_AXES[1])
  alpha = np.clip((1.0 - radius) / FEATHER, 0.0, 1.0)
  alpha = alpha * alpha * (3.0 - 2.0 * alpha)
  values = scipy.ndimage.map_coordinates(pixels, [qy - 0.5, qx - 0.5], order=1, mode='nearest')
  left, top, right, bottom = face_box.FACE_BOX_ORL
  mean = float(np.mean(face[top:bottom, left:right]))
  values = np.clip((values - mean) * contrast + mean + brightness, 0.0, 255.0)
  region = image[y0:y1, x0:x1]
  image[y0:y1, x0:x1] = alpha * values + (1.0 - alpha) * region
  return image


def group_picture(background: np.ndarray, faces: np.ndarray, key, *, min_side: float = 40,
                  max_side: float = 200, max_degrees: float = 15.0, max_overlap: float = 0.1,
                  contrast: float = 0.25, brightness: float = 30.0
                  ) -> tuple[np.ndarray, np.ndarray]:
  """A group picture: every ORL face pasted onto the background at a random place.

  Args:
    background: grey uint8 [H, W] (0..255), at least min_side in both sizes.
    faces: ORL images uint8 [K, 112, 92] (K may be 0).
    key: a JAX PRNG key; the picture is a function of it and the arrays.
    min_side, max_side: the face box side in pixels, log-uniform (capped by the image size).
    max_degrees: rotation uniform in [-max_degrees, max_degrees].
    max_overlap: the most of a face box another face's head may cover (a fraction of its area).
    contrast, brightness: the face's contrast factor is uniform in [1 - contrast, 1 + contrast],
      its brightness shift uniform in [-brightness, brightness] grey levels.

  Returns:
    (image uint8 [H, W], boxes float32 [K, 4]): the face boxes (left, top, right, bottom), each
    fully inside the image, in paste order.

  Raises:
    InputConventionError: a bad argument (one line naming it).
    UserError: the faces do not fit without overlap.
  """
  checks.check_images(background, name='background', dtype_kind='u', rank=2)
  checks.check_images(faces, name='faces', dtype_kind='u', rank=3, shape=face_box.ORL_SHAPE)
  min_side, max_side = _check_side('min_side', min_side), _check_side('max_side', max_side)
  if max_side < min_side:
    raise checks.InputConventionError(f'max_side: expected >= min_side ({min_side:g}), got '
                                      f'{max_side:g}')
  if min(background.shape) < min_side:
    raise checks.InputConventionError(f'background: expected at least min_side={min_side:g} '
                                      f'pixels each way, got shape {background.shape}')
  for name, value, high in (('max_degrees', max_degrees, 90), ('max_overlap', max_overlap, 1),
                            ('contrast', contrast, 0.99), ('brightness', brightness, 255)):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
      raise checks.InputConventionError(f'{name}: expected a number in [0, {high}], got {value!r}')
  rng = detector_windows.numpy_rng(key)
  image = np.asarray(background, np.float32).copy()
  placed, boxes = [], []
  for face in faces:
    cx, cy, side = _place(rng, image.shape, placed, min_side, max_side, max_overlap)
    degrees = rng.uniform(-max_degrees, max_degrees)
    gain = rng.uniform(1 - contrast, 1 + contrast)
    shift = rng.uniform(-brightness, brightness)
    paste_face(image, face, (cx, cy), side, degrees, gain, shift)
    box = _square((cx, cy), side / 2)
    placed.append((box, _square((cx, cy), HEAD_REACH / _BOX_SIDE * side)))
    boxes.append(box)
  boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
  return np.round(image).astype(np.uint8), boxes


def fit_photo(image: np.ndarray, shape: tuple[int, int] = BACKGROUND_SHAPE) -> np.ndarray:
  """Grey uint8 `shape` (height, width) of a photo (uint8 or bool [H, W] or [H, W, 3|4]): made
  grey (PIL's convert('L')), scaled to cover `shape` and centre-cropped."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(image)
  if image.dtype == bool:
    image = image.astype(np.uint8) * 255
  picture = Image.fromarray(image[..., :3] if image.ndim == 3 else image).convert('L')
  height, width = shape
  scale = max(height / picture.height, width / picture.width)
  size = (max(width, round(picture.width * scale)), max(height, round(picture.height * scale)))
  picture = picture.resize(size, Image.LANCZOS)
  left, top = (size[0] - width) // 2, (size[1] - height) // 2
  return np.asarray(picture.crop((left, top, left + width, top + height)), np.uint8)


def background_photo(name: str) -> np.ndarray:
  """The photo `name` of BACKGROUND_PHOTOS as shipped (uint8/bool, grey or colour)."""
  if name not in BACKGROUND_PHOTOS:
    raise UserError(f'background photo {name!r} is not one of {", ".join(BACKGROUND_PHOTOS)}')
  if name == 'flower':
    from sklearn.datasets import load_sample_image  # pylint: disable=g-import-not-at-top
    return load_sample_image('flower.jpg')
  from skimage import data  # pylint: disable=g-import-not-at-top
  photo = getattr(data, name)()
  return photo[0] if name == 'stereo_motorcycle' else photo


def cifar_test_source(data_dir: str) -> str | None:
  """The CIFAR-10 test split under data_dir (`cifar10/test.zip` or a `cifar10/test/` folder of
  class folders), or None. Only test images are mosaic material: the HOG detector may train on
  any image of cifar10/train.zip."""
  for path in (os.path.join(data_dir, 'cifar10', 'test.zip'), os.path.join(data_dir, 'cifar10',
                                                                          'test')):
    if os.path.exists(path):
      return path
  return None


def cifar_test_images(data_dir: str, count: int) -> np.ndarray:
  """uint8 [count, 32, 32, 3]: CIFAR-10 test images, evenly over the classes in file order, read
  with the project's image-folder loader.

  Raises:
    UserError: data_dir holds no CIFAR-10 test split (see `cifar_test_source`).
  """
  from mlfun_jax.data import image_folder  # pylint: disable=g-import-not-at-top
  source = cifar_test_source(data_dir)
  if source is None:
    raise UserError(f'no CIFAR-10 test split (cifar10/test.zip or cifar10/test/) under data_dir '
                    f'{data_dir!r}')
  split = image_folder.load_image_folder(source, name='cifar10_test', image_size=32, channels=3,
                                         validation_fraction=0.0).train
  per_class = [np.flatnonzero(split.labels == c) for c in np.unique(split.labels)]
  need = math.ceil(count / len(per_class))
  if min(len(p) for p in per_class) < need:
    raise UserError(f'{source!r} holds too few images for {count} mosaic cells')
  order = np.stack([p[:need] for p in per_class], 1).ravel()
  return split.images[order[:count]]


def cifar_mosaics(data_dir: str, count: int, shape: tuple[int, int] = BACKGROUND_SHAPE,
                  grid: tuple[int, int] = (3, 4)) -> list[np.ndarray]:
  """`count` grey uint8 `shape` mosaics of rows x columns (`grid`) CIFAR-10 test images
  (`cifar_test_images`), each upscaled (bicubic) to fill its cell."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rows, columns = grid
  height, width = shape
  cell_h, cell_w = height // rows, width // columns
  images = cifar_test_images(data_dir, count * rows * columns)
  mosaics = []
  for m in range(count):
    mosaic = np.zeros(shape, np.uint8)
    for k in range(rows * columns):
      cell = Image.fromarray(images[m * rows * columns + k]).convert('L').resize(
          (cell_w, cell_h), Image.BICUBIC)
      r, c = divmod(k, columns)
      mosaic[r * cell_h:(r + 1) * cell_h, c * cell_w:(c + 1) * cell_w] = np.asarray(cell)
    mosaics.append(mosaic)
  return mosaics


def benchmark_backgrounds(data_dir: str | None = None, mosaics: int = 4,
                          shape: tuple[int, int] = BACKGROUND_SHAPE) -> dict[str, np.ndarray]:
  """{name: grey uint8 `shape`}: the BACKGROUND_PHOTOS (fitted with `fit_photo`), then, when
  data_dir (the datasets folder) holds a CIFAR-10 test split (`cifar_test_source`), `mosaics`
  CIFAR-10 mosaics named 'cifar10_mosaic_<i>' (none without one)."""
  backgrounds = {name: fit_photo(background_photo(name), shape) for name in BACKGROUND_PHOTOS}
  if data_dir is not None and mosaics and cifar_test_source(data_dir) is not None:
    for i, mosaic in enumerate(cifar_mosaics(data_dir, mosaics, shape)):
      backgrounds[f'cifar10_mosaic_{i}'] = mosaic
  return backgrounds


def box_from_eyes(left_eye: tuple[float, float], right_eye: tuple[float, float]) -> np.ndarray:
  """float32 [4]: the face box of a frontal face from its eye centres (x, y) in the image, framed
  as FACE_BOX_ORL frames the ORL mean face (eyes 30 px apart; box side 72, centre 1 px left of and
  8 px below the eyes' midpoint); a tilted eye line gives the axis-aligned square of the same
  centre and side."""
  left, right = np.asarray(left_eye, np.float64), np.asarray(right_eye, np.float64)
  distance = float(np.hypot(*(right - left)))
  orl_middle = 0.5 * (np.asarray(face_box.ORL_EYES[0]) + np.asarray(face_box.ORL_EYES[1]))
  offset = (np.asarray(_BOX_CENTRE) - orl_middle) / _EYE_DISTANCE
  centre = 0.5 * (left + right) + offset * distance
  return _square(tuple(centre), 0.5 * _BOX_SIDE / _EYE_DISTANCE * distance).astype(np.float32)


# Eye centres (x, y) read off the photos at full size by hand (zoomed 3-4x).
_PHOTO_EYES = {
    'astronaut': [((202.5, 100.5), (247.0, 103.75))],  # skimage.data.astronaut(), 512x512.
    'grace_hopper': [((223.3, 190.7), (305.0, 186.7))],  # matplotlib sample data, 512x600.
}


def _real_photo(name: str) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  if name == 'astronaut':
    from skimage import data  # pylint: disable=g-import-not-at-top
    return np.asarray(Image.fromarray(data.astronaut()).convert('L'))
  from matplotlib import cbook  # pylint: disable=g-import-not-at-top
  with Image.open(cbook.get_sample_data('grace_hopper.jpg')) as photo:
    return np.asarray(photo.convert('L'))


def real_face_photos() -> list[Picture]:
  """The photos with real frontal faces that ship in installed packages (see the module
  docstring), grey uint8 at their own size, with hand-annotated face boxes float32 [K, 4]."""
  return [Picture(_real_photo(name), np.stack([box_from_eyes(*eyes) for eyes in faces]),
                  f'photo:{name}') for name, faces in _PHOTO_EYES.items()]


def benchmark(people_faces: dict[str, np.ndarray], key, pictures: int = 60,
              faces_per_picture: tuple[int, int] = (1, 6), data_dir: str | None = None,
              backgrounds: dict[str, np.ndarray] | None = None, real_photos: bool = True,
              **paste_options) -> list[Picture]:
  """The detection benchmark: `pictures` group pictures, then (real_photos) `real_face_photos()`.

  Picture i has K faces (uniform in faces_per_picture, inclusive) of K different people (drawn
  again when there are fewer people), one random image of each, on background i (cycling through
  `backgrounds`, default `benchmark_backgrounds(data_dir)`), mirrored left-right half the time.

  Args:
    people_faces: {person: ORL images uint8 [n, 112, 92]} of the people to paste (never the
      detectors' training people).
    key: a JAX PRNG key; the benchmark is a function of it and the arguments.
    paste_options: passed to `group_picture` (min_side, max_side, max_degrees, ...).

  Returns:
    [Picture(image uint8 [H, W], boxes float32 [K, 4], source)].
  """
  import jax  # pylint: disable=g-import-not-at-top
  if not isinstance(people_faces, dict) or not people_faces:
    raise checks.InputConventionError('people_faces: expected a non-empty dict {person: uint8 '
                                      '[n, 112, 92]}')
  for person, faces in people_faces.items():
    checks.check_images(faces, name=f'people_faces[{person!r}]', dtype_kind='u', rank=3,
                        shape=face_box.ORL_SHAPE)
    if not len(faces):
      raise checks.InputConventionError(f'people_faces[{person!r}]: expected at least one face')
  low, high = faces_per_picture
  if not 0 <= low <= high:
    raise checks.InputConventionError(f'faces_per_picture: expected (low, high) with 0 <= low <= '
                                      f'high, got {faces_per_picture}')
  if backgrounds is None:
    backgrounds = benchmark_backgrounds(data_dir)
  names = list(backgrounds)
  people = list(people_faces)
  choice_key, paste_key = jax.random.split(_checked_key(key))
  rng = detector_windows.numpy_rng(choice_key)
  result = []
  for i in range(pictures):
    count = int(rng.integers(low, high + 1))
    chosen = rng.choice(len(people), count, replace=count > len(people))
    faces = np.stack([people_faces[people[p]][rng.integers(len(people_faces[people[p]]))]
                      for p in chosen]).reshape(-1, *face_box.ORL_SHAPE)
    name = names[i % len(names)]
    background = backgrounds[name][:, ::-1] if rng.random() < 0.5 else backgrounds[name]
    image, boxes = group_picture(np.ascontiguousarray(background), faces,
                                 jax.random.fold_in(paste_key, i), **paste_options)
    result.append(Picture(image, boxes, f'group:{name}'))
  return result + (real_face_photos() if real_photos else [])


def _checked_key(key):
  detector_windows.numpy_rng(key)  # Raises a one-line error for anything that is not a key.
  return key
