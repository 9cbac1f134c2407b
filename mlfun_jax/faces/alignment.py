"""Faces brought into the ORL frame (uint8 [112, 92], framed as the ORL training faces) before
they are embedded: by the detector's box alone, or by the eyes a locator finds in it.

Coordinates are continuous pixels: pixel (row i, column j) covers [j, j+1) x [i, i+1), its centre
is (j + 0.5, i + 0.5). A frame is a float64 [2, 3] matrix taking a point (x, y, 1) of the ORL
frame to the point of the photo it shows; warping samples the photo there (bilinear, with
`round(scale)`^2 sub-samples per output pixel when the photo is shrunk, borders filled by the
photo's edge values).

- `box_frames`: FACE_BOX_ORL (10, 24, 82, 96) onto the box (same centre, side = the mean of the
  box's width and height: a square box keeps its aspect; no rotation).
- `eye_frames`: the similarity (rotation, scale, shift) taking ORL_EYES onto the eyes found.
- `similarity_frames`: the least-squares similarity taking any template points onto points found
  (dlib's 5 landmarks onto its chip template).
- `align_many`: a locator's eyes where they are plausible for their box, else the box frame.

A locator is any object with `locate(image uint8 [H, W], boxes float32 [N, 4]) -> float32
[N, 2, 2]`: the (x, y) of the left and the right eye (as the image shows them) in the image's
pixels, e.g. `locator.Locator`.
"""

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.faces import face_box
from mlfun_jax.faces.face_box import FACE_BOX_ORL
from mlfun_jax.faces.face_box import ORL_EYES
from mlfun_jax.faces.face_box import ORL_SHAPE

FACE_SIDE_ORL = float(FACE_BOX_ORL[2] - FACE_BOX_ORL[0])  # 72.
FACE_CENTRE_ORL = ((FACE_BOX_ORL[0] + FACE_BOX_ORL[2]) / 2, (FACE_BOX_ORL[1] + FACE_BOX_ORL[3]) / 2)
# Eyes are trusted when their frame's scale is within this factor of the box's, its rotation within
# MAX_DEGREES and their midpoint in the box: a locator fooled by a non-face (or a bad box) falls
# back to the box.
MAX_SCALE_RATIO = 1.6
MAX_DEGREES = 50.0
MAX_SUBSAMPLES = 8  # Sub-samples per axis of one output pixel, at most (shrinking >= 8x).


def check_image(image, name: str = 'image') -> np.ndarray:
  """`image` as a grey uint8 numpy array [H, W]; raises InputConventionError otherwise."""
  checks.check_images(image, name=name, dtype_kind='u', rank=2)
  if image.shape[0] < 1 or image.shape[1] < 1:
    raise checks.InputConventionError(f'{name}: expected a non-empty image, got shape '
                                      f'{tuple(image.shape)}')
  return np.asarray(image)


def check_face_boxes(boxes, name: str = 'boxes') -> np.ndarray:
  """float32 [N, 4] boxes of positive width and height (face_box.check_boxes, then sizes)."""
  boxes = face_box.check_boxes(boxes, name=name)
  if np.any(boxes[:, 2] <= boxes[:, 0]) or np.any(boxes[:, 3] <= boxes[:, 1]):
    raise checks.InputConventionError(f'{name}: expected boxes of positive width and height')
  return boxes


def _one_box(box, name: str = 'box') -> np.ndarray:
  """float32 [1, 4] of one box [4]."""
  if not hasattr(box, 'shape'):
    box = np.asarray(box)
  checks.check_array(box, name=name, expected='one box [4] (left, top, right, bottom)',
                     dtype_kinds='fiu', rank=1, shape=(4,))
  return check_face_boxes(np.asarray(box)[None], name=name)


def box_frames(boxes) -> np.ndarray:
  """float64 [N, 2, 3] frames showing boxes [N, 4] (positive sizes) as FACE_BOX_ORL: centre on
  centre, scale (w + h) / 2 / 72, no rotation."""
  boxes = check_face_boxes(boxes).astype(np.float64)
  centre = (boxes[:, :2] + boxes[:, 2:]) / 2
  scale = ((boxes[:, 2] - boxes[:, 0]) + (boxes[:, 3] - boxes[:, 1])) / 2 / FACE_SIDE_ORL
  frames = np.zeros((len(boxes), 2, 3))
  frames[:, 0, 0] = frames[:, 1, 1] = scale
  frames[:, :, 2] = centre - scale[:, None] * np.asarray(FACE_CENTRE_ORL)
  return frames


def eye_frames(eyes) -> np.ndarray:
  """float64 [N, 2, 3] similarity frames taking ORL_EYES to `eyes` float [N, 2, 2] ((x, y) of the
  left and right eye in the photo; distinct)."""
  checks.check_floats(eyes, name='eyes', rank=3, shape=(2, 2))
  eyes = np.asarray(eyes, np.float64)
  if not np.all(np.isfinite(eyes)):
    raise checks.InputConventionError('eyes: expected finite coordinates')
  z = eyes[..., 0] + 1j * eyes[..., 1]  # [N, 2] complex.
  o = np.asarray(ORL_EYES, np.float64)
  o = o[:, 0] + 1j * o[:, 1]
  if np.any(z[:, 1] == z[:, 0]):
    raise checks.InputConventionError('eyes: expected two distinct eye positions per face')
  a = (z[:, 1] - z[:, 0]) / (o[1] - o[0])  # z = a * o + b: rotation and scale as one complex.
  b = z[:, 0] - a * o[0]
  return np.stack([np.stack([a.real, -a.imag, b.real], -1),
                   np.stack([a.imag, a.real, b.imag], -1)], 1)


def similarity_frames(template: np.ndarray, points: np.ndarray) -> np.ndarray:
  """float64 [N, 2, 3]: the least-squares similarity frames (rotation, scale, shift) taking the
  points template [P, 2] of the output frame to points [N, P, 2] of the photo (x, y)."""
  template, points = np.asarray(template, np.float64), np.asarray(points, np.float64)
  s = template[:, 0] + 1j * template[:, 1]
  t = points[..., 0] + 1j * points[..., 1]
  s_mean, t_mean = s.mean(), t.mean(axis=1)
  a = ((t - t_mean[:, None]) * np.conj(s - s_mean)).sum(axis=1) / (np.abs(s - s_mean) ** 2).sum()
  b = t_mean - a * s_mean
  return np.stack([np.stack([a.real, -a.imag, b.real], -1),
                   np.stack([a.imag, a.real, b.imag], -1)], 1)


def apply_frames(frames, points) -> np.ndarray:
  """float64 [N, P, 2]: points float [P, 2] ((x, y) in the ORL frame) in the photo, by each of
  frames [N, 2, 3]."""
  frames, points = np.asarray(frames, np.float64), np.asarray(points, np.float64)
  return np.einsum('nij,pj->npi', frames[:, :, :2], points) + frames[:, None, :, 2]


def invert_frames(frames) -> np.ndarray:
  """float64 [N, 2, 3]: the affine maps undoing frames [N, 2, 3] (photo -> ORL frame)."""
  frames = np.asarray(frames, np.float64)
  inverse = np.linalg.inv(frames[:, :, :2])
  return np.concatenate([inverse, -np.einsum('nij,nj->ni', inverse, frames[:, :, 2])[..., None]],
                        2)


def frame_scale(frames: np.ndarray) -> np.ndarray:
  """Photo pixels per ORL-frame pixel [N] of similarity frames [N, 2, 3]."""
  return np.sqrt(np.abs(np.linalg.det(frames[:, :, :2])))


def plausible_eyes(eyes: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """bool [N]: the frame of eyes [N, 2, 2] is within MAX_SCALE_RATIO of the scale of boxes
  [N, 4]'s frame, rotated by at most MAX_DEGREES, and the eyes' midpoint lies in the box."""
  by_eyes, by_box = eye_frames(eyes), box_frames(boxes)
  ratio = frame_scale(by_eyes) / frame_scale(by_box)
  degrees = np.degrees(np.abs(np.arctan2(by_eyes[:, 1, 0], by_eyes[:, 0, 0])))
  middle = np.asarray(eyes, np.float64).mean(axis=1)
  inside = np.all((middle >= boxes[:, :2]) & (middle <= boxes[:, 2:]), axis=1)
  return ((ratio <= MAX_SCALE_RATIO) & (ratio >= 1 / MAX_SCALE_RATIO) & (degrees <= MAX_DEGREES)
          & inside)


def warp(image: np.ndarray, frames, shape: tuple[int, int] = ORL_SHAPE) -> np.ndarray:
  """uint8 [N, h, w] (shape = (h, w)): output pixel centre p is the photo uint8 [H, W] at
  frames[n] @ (p, 1), bilinear, edge values outside; frames float [N, 2, 3] (affine)."""
  image = check_image(image)
  checks.check_floats(frames, name='frames', rank=3, shape=(2, 3))
  frames = np.asarray(frames, np.float64)
  if not np.all(np.isfinite(frames)):
    raise checks.InputConventionError('frames: expected finite numbers')
  h, w = shape
  source = image.astype(np.float32)
  out = np.empty((len(frames), h, w), np.uint8)
  for n, frame in enumerate(frames):  # One face at a time: memory stays one face's samples.
    pitch = np.sqrt(abs(np.linalg.det(frame[:, :2])))
    subsamples = int(np.clip(np.round(pitch), 1, MAX_SUBSAMPLES))
    offsets = (np.arange(subsamples) + 0.5) / subsamples - 0.5
    xs = (np.arange(w)[None, :] + 0.5 + offsets[:, None]).reshape(-1)  # [S * w]
    ys = (np.arange(h)[None, :] + 0.5 + offsets[:, None]).reshape(-1)  # [S * h]
    gx, gy = np.meshgrid(xs, ys)  # [S*h, S*w]
    px = frame[0, 0] * gx + frame[0, 1] * gy + frame[0, 2] - 0.5
    py = frame[1, 0] * gx + frame[1, 1] * gy + frame[1, 2] - 0.5
    values = _bilinear(source, px, py)
    # Sub-samples of output pixel (i, j) sit at rows s*h + i and columns s*w + j.
    values = values.reshape(subsamples, h, subsamples, w).mean(axis=(0, 2))
    out[n] = np.clip(np.round(values), 0, 255).astype(np.uint8)
  return out


def _bilinear(source: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
  """source float32 [H, W] at pixel-index coordinates (px, py) (x: column), edge-clamped."""
  height, width = source.shape
  px = np.clip(px, 0, width - 1)
  py = np.clip(py, 0, height - 1)
  x0 = np.minimum(np.floor(px).astype(np.int64), max(width - 2, 0))
  y0 = np.minimum(np.floor(py).astype(np.int64), max(height - 2, 0))
  x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
  fx, fy = (px - x0).astype(np.float32), (py - y0).astype(np.float32)
  top = source[y0, x0] * (1 - fx) + source[y0, x1] * fx
  bottom = source[y1, x0] * (1 - fx) + source[y1, x1] * fx
  return top * (1 - fy) + bottom * fy


def crop_to_orl_frame(image: np.ndarray, box) -> np.ndarray:
  """The ORL frame uint8 [112, 92] around `box` [4] (left, top, right, bottom; positive sizes) of
  the grey photo uint8 [H, W]: FACE_BOX_ORL lands on the box (`box_frames`), no locator.

  Raises:
    InputConventionError: an image that is not grey uint8 [H, W], or a bad box (one line).
  """
  image = check_image(image)
  return warp(image, box_frames(_one_box(box)))[0]


def crop_many_to_orl_frame(image: np.ndarray, boxes) -> np.ndarray:
  """`crop_to_orl_frame` of every box [N, 4]: uint8 [N, 112, 92]."""
  image = check_image(image)
  return warp(image, box_frames(check_face_boxes(boxes)))


def check_eyes_of(eyes, count: int) -> np.ndarray:
  """A locator's answer as float64 [count, 2, 2]; raises InputConventionError otherwise."""
  if not hasattr(eyes, 'shape'):
    eyes = np.asarray(eyes)
  checks.check_floats(eyes, name='locator.locate(...)', rank=3, shape=(2, 2))
  if len(eyes) != count:
    raise checks.InputConventionError(f'locator.locate(...): expected eyes of {count} boxes, got '
                                      f'{len(eyes)}')
  return np.asarray(eyes, np.float64)


def alignment_frames(image: np.ndarray, boxes, locator) -> tuple[np.ndarray, np.ndarray]:
  """(frames float64 [N, 2, 3], used_eyes bool [N]): the eye frame of `locator`'s eyes in each box
  [N, 4] of the grey photo uint8 [H, W] when plausible for the box (`plausible_eyes`), else the
  box frame."""
  image = check_image(image)
  boxes = check_face_boxes(boxes)
  if not hasattr(locator, 'locate'):
    raise checks.InputConventionError(f'locator: expected an object with locate(image, boxes), '
                                      f'got {type(locator).__name__}')
  if not len(boxes):
    return np.zeros((0, 2, 3)), np.zeros(0, bool)
  eyes = check_eyes_of(locator.locate(image, boxes), len(boxes))
  by_box = box_frames(boxes)
  usable = np.all(np.isfinite(eyes), axis=(1, 2)) & np.any(eyes[:, 0] != eyes[:, 1], axis=1)
  eyes = np.where(usable[:, None, None], eyes, apply_frames(by_box, ORL_EYES))
  used = usable & plausible_eyes(eyes, boxes)
  return np.where(used[:, None, None], eye_frames(eyes), by_box), used


def align_many(image: np.ndarray, boxes, locator) -> np.ndarray:
  """ORL-framed faces uint8 [N, 112, 92] of the boxes [N, 4] of a grey photo uint8 [H, W]: the
  locator finds both eyes (in a crop around each box) and the similarity taking them to ORL_EYES
  warps the photo (bilinear); implausible eyes fall back to `crop_to_orl_frame` (see
  `alignment_frames`).

  Raises:
    InputConventionError: a bad image, boxes, locator or locator answer (one line).
  """
  image = check_image(image)
  frames, _ = alignment_frames(image, boxes, locator)
  return warp(image, frames)


def align(image: np.ndarray, box, locator) -> np.ndarray:
  """`align_many` of one box [4]: uint8 [112, 92]."""
  image = check_image(image)
  return align_many(image, _one_box(box), locator)[0]
