"""Faces in, unit-norm embeddings out: the eval-mode forward pass, test-time augmentation, the
texture descriptor joined to the network's embedding, and a jit-compiled batched embedder (used by
evaluation, the report, inference and recognize)."""

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.data import image_stats
from mlfun_jax.faces import model as face_embedding
from mlfun_jax.faces import texture

TTA_SHIFT = 2  # Pixels of the shifted views of test-time augmentation.
_CHUNK = 256


def test_time_views(images: jax.Array, shift: int = TTA_SHIFT) -> jax.Array:
  """[6, B, H, W, C]: the images [B, H, W, C] (any dtype, kept), their mirror images, and the
  images moved `shift` pixels down, up, right and left (the edge rows or columns repeated).

  Raises:
    InputConventionError: images that are not a batch [B, H, W, C].
  """
  checks.check_array(images, name="images", expected="a batch of images [B, H, W, C]", rank=4)
  height, width = images.shape[1:3]
  padded = jnp.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
  moved = [padded[:, shift + dy:shift + dy + height, shift + dx:shift + dx + width]
           for dy, dx in ((-shift, 0), (shift, 0), (0, -shift), (0, shift))]
  return jnp.stack([images, images[:, :, ::-1]] + moved)


def embedding_size(model, described: texture.Texture = texture.NONE) -> int:
  """E of `embed`: the network's embedding, plus the texture descriptor's length when joined."""
  return model.embedding_size + described.size


def embed(model, params, images: jax.Array, mean: float, std: float,
          test_time_augmentation: bool = False,
          described: texture.Texture = texture.NONE) -> jax.Array:
  """Unit-norm float32 embeddings [B, E] of uint8 faces [B, H, W, C] (0..255), in eval mode.

  mean, std: the training faces' stats (`image_stats.channel_stats`) the network was trained with.
  test_time_augmentation: each network embedding is the L2-normalised mean of the embeddings of
  the image's `test_time_views`.
  described: with weight w > 0 the embedding is [sqrt(1 - w) x the network's, sqrt(w) x the
  face's texture descriptor (`texture.Texture.describe`)], so squared distances are (1 - w) x
  the network's + w x the descriptors' (E = `embedding_size`).

  Raises:
    InputConventionError: images that are not a uint8 batch [B, H, W, C].
  """
  checks.check_images(images, name="images", dtype_kind="u")

  def one(x):
    return model.apply({"params": params}, image_stats.normalise(x, mean, std), train=False)

  if not test_time_augmentation:
    embeddings = one(images)
  else:
    views = test_time_views(images)
    embeddings = one(views.reshape((-1,) + images.shape[1:])).reshape(views.shape[:2] + (-1,))
    embeddings = face_embedding.l2_normalise(embeddings.mean(axis=0))
  if described.weight <= 0:
    return embeddings
  return texture.join(embeddings, described.describe(images), described.weight)


class Embedder:
  """Embeds uint8 faces [N, H, W, C] (0..255) with given parameters (jit, batches of 256; see
  `embed`)."""

  def __init__(self, model, mean: float, std: float, test_time_augmentation: bool = False,
               described: texture.Texture = texture.NONE):
    self._size = embedding_size(model, described)
    self._embed = jax.jit(lambda params, images: embed(model, params, images, mean, std,
                                                       test_time_augmentation, described))

  def __call__(self, params, images: np.ndarray) -> np.ndarray:
    """uint8 faces [N, H, W, C] -> unit-norm float32 embeddings [N, E].

    Raises:
      InputConventionError: images that are not a uint8 batch [N, H, W, C] (e.g. one face).
    """
    checks.check_images(images, name="images", dtype_kind="u")
    if not len(images):  # np.concatenate needs at least one array.
      return np.zeros((0, self._size), np.float32)
    return np.concatenate([np.asarray(self._embed(params, images[i:i + _CHUNK]))
                           for i in range(0, len(images), _CHUNK)])
