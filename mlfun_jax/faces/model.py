"""The face-embedding network: a CNN that maps a face to 128 numbers on the unit sphere.

Blocks of (conv -> ReLU) x n -> 2x2 max-pool, then dense layers, then a linear projection to
`embedding_size` values divided by their Euclidean norm (FaceNet's L2 normalisation): distances
between embeddings lie in [0, 2] and compare faces. With `num_classes` > 0 the parameters also hold
`class_centres` [num_classes, embedding_size], the training people's centres for a normalised-
softmax loss (CosFace); the network's output does not use them.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mlfun_jax.core import checks
from mlfun_jax.models.cnn import max_pool_2x2


def l2_normalise(x: jax.Array, epsilon: float = 1e-12) -> jax.Array:
  """Rows of x [B, E] divided by their Euclidean norm (float32)."""
  x = x.astype(jnp.float32)
  return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), epsilon))


class FaceEmbedding(nn.Module):
  """Conv/ReLU/max-pool blocks, dense layers with dropout, then an L2-normalised embedding.

  Attributes:
    conv_features: channels of each block (each block ends with a 2x2 max-pool).
    convs_per_block: 3x3 convolutions per block.
    dense_features: widths of the hidden dense layers after the convolutions.
    embedding_size: length of the embedding (128 as in FaceNet and dlib).
    dropout_rate: dropout before every dense layer (0 disables it).
    num_classes: rows of the `class_centres` parameter (0: none).
    dtype: computation dtype of the layers (e.g. bfloat16); parameters and the L2 normalisation
      (and so the embeddings) stay float32.
  """

  conv_features: Sequence[int] = (32, 64, 128)
  convs_per_block: int = 1
  dense_features: Sequence[int] = ()
  embedding_size: int = 128
  dropout_rate: float = 0.0
  num_classes: int = 0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
    """Maps normalised float images [B, H, W, C] to unit-norm float32 embeddings [B, E].

    train: enables dropout (needs an rng named 'dropout' in `apply` when dropout_rate > 0).

    Raises:
      InputConventionError: images that are not a float batch [B, H, W, C] (e.g. raw uint8 faces:
        normalise them first, as `embedding.embed` does).
    """
    checks.check_images(images, name='images', dtype_kind='f')
    if self.num_classes:
      self.param('class_centres', nn.initializers.normal(1.0),
                 (self.num_classes, self.embedding_size), jnp.float32)
    x = images.astype(self.dtype)
    for features in self.conv_features:
      for _ in range(self.convs_per_block):
        x = nn.relu(nn.Conv(features, (3, 3), dtype=self.dtype)(x))
      x = max_pool_2x2(x)
    x = x.reshape(x.shape[0], -1)
    for features in self.dense_features:
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
      x = nn.relu(nn.Dense(features, dtype=self.dtype)(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return l2_normalise(nn.Dense(self.embedding_size, dtype=self.dtype)(x))
