"""Triplet loss with online semi-hard mining (FaceNet, Schroff et al. 2015), on one or many devices.

A batch holds P people x K images. Every (anchor, positive) pair of one person is a triplet with
the negative chosen online: the semi-hard one, the closest negative that is still farther from the
anchor than the positive (d_ap < d_an); when no negative is that far, the farthest negative (as
TensorFlow Addons' `triplet_semihard_loss` does). The loss averages
max(d_ap - d_an + margin, 0) over all (anchor, positive) pairs.

Under pmap (`gathered_triplet_loss`) each device gathers the embeddings and labels of the whole
global batch, so mining sees every image of every device, and takes as anchors its own rows; the
device losses are scaled so that the pmean of their gradients is the gradient of the global-batch
loss (all_gather's transpose sends each row's cotangent back to the device that owns it).
"""

import jax
import jax.numpy as jnp

_EPSILON = 1e-12


def pairwise_distances(a: jax.Array, b: jax.Array, squared: bool = True) -> jax.Array:
  """float32 [A, B]: (squared) Euclidean distances between rows of a [A, E] and b [B, E].

  The square root has a finite gradient at 0 (distances below 1e-6 are clamped inside it).
  """
  a, b = a.astype(jnp.float32), b.astype(jnp.float32)
  d2 = (jnp.sum(a * a, axis=1)[:, None] + jnp.sum(b * b, axis=1)[None, :]
        - 2.0 * jnp.einsum('ae,be->ab', a, b, precision='highest'))
  d2 = jnp.maximum(d2, 0.0)
  return d2 if squared else jnp.sqrt(jnp.maximum(d2, _EPSILON))


def mine_semi_hard(distances: jax.Array, anchor_labels: jax.Array, labels: jax.Array,
                   anchor_index: jax.Array) -> dict[str, jax.Array]:
  """Semi-hard negatives for every (anchor, positive) pair.

  Args:
    distances: float [A, B] from each anchor to every image of the batch.
    anchor_labels: int [A] person of each anchor.
    labels: int [B] person of each image of the batch.
    anchor_index: int [A] position of each anchor in the batch (it is not its own positive).

  Returns:
    {'positive': bool [A, B] (image p is a positive of anchor a),
     'negative_index': int32 [A, B] the negative chosen for the pair (a, p),
     'negative_distance': float [A, B] its distance d_an,
     'semi_hard': bool [A, B] whether it is semi-hard (d_an > d_ap)}.
    Entries of pairs that are not positive are meaningless.
  """
  columns = jnp.arange(labels.shape[0])
  same = anchor_labels[:, None] == labels[None, :]  # [A, B]
  positive = same & (columns[None, :] != anchor_index[:, None])
  negative = ~same
  d_ap = distances[:, :, None]  # [A, P, 1]
  d_an = distances[:, None, :]  # [A, 1, N]
  semi_hard = negative[:, None, :] & (d_an > d_ap)  # [A, P, N]
  outside = jnp.where(semi_hard, d_an, jnp.inf)
  inside = jnp.where(negative[:, None, :], d_an, -jnp.inf)
  any_semi_hard = semi_hard.any(axis=2)
  index = jnp.where(any_semi_hard, jnp.argmin(outside, axis=2), jnp.argmax(inside, axis=2))
  chosen = jnp.take_along_axis(jnp.broadcast_to(d_an, semi_hard.shape), index[:, :, None],
                               axis=2)[:, :, 0]
  return {'positive': positive, 'negative_index': index.astype(jnp.int32),
          'negative_distance': chosen, 'semi_hard': any_semi_hard}


def triplet_sums(anchors: jax.Array, anchor_labels: jax.Array, anchor_index: jax.Array,
                 embeddings: jax.Array, labels: jax.Array, margin: float,
                 squared: bool = True) -> dict[str, jax.Array]:
  """Sums over the (anchor, positive) pairs of `anchors` [A, E] against the batch [B, E].

  The negatives are mined with `mine_semi_hard`; a negative's distance carries gradients (the
  choice itself does not).

  Returns:
    {'loss': sum of max(d_ap - d_an + margin, 0), 'pairs': number of pairs, 'active': pairs with
     a positive loss, 'semi_hard': pairs with a semi-hard negative, 'positive_distance': sum of
     d_ap, 'negative_distance': sum of d_an}, all float32 scalars.
  """
  distances = pairwise_distances(anchors, embeddings, squared)
  mined = mine_semi_hard(jax.lax.stop_gradient(distances), anchor_labels, labels, anchor_index)
  d_an = jnp.take_along_axis(distances, mined['negative_index'], axis=1)  # [A, B]
  weight = mined['positive'].astype(jnp.float32)
  losses = jnp.maximum(distances - d_an + margin, 0.0)
  return {'loss': (losses * weight).sum(), 'pairs': weight.sum(),
          'active': ((losses > 0) * weight).sum(),
          'semi_hard': (mined['semi_hard'] * weight).sum(),
          'positive_distance': (distances * weight).sum(),
          'negative_distance': (d_an * weight).sum()}


def _means(sums: dict[str, jax.Array]) -> dict[str, jax.Array]:
  pairs = jnp.maximum(sums['pairs'], 1.0)
  return {'loss': sums['loss'] / pairs, 'active_fraction': sums['active'] / pairs,
          'semi_hard_fraction': sums['semi_hard'] / pairs,
          'positive_distance': sums['positive_distance'] / pairs,
          'negative_distance': sums['negative_distance'] / pairs}


def triplet_loss(embeddings: jax.Array, labels: jax.Array, margin: float = 0.2,
                 squared: bool = True) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Batch-all-positives semi-hard triplet loss of one whole batch on one device.

  Args:
    embeddings: float [B, E] (L2-normalised in FaceNet).
    labels: int [B] person of each embedding.
    margin: the margin alpha.
    squared: squared Euclidean distances (FaceNet) or plain ones.

  Returns:
    (mean loss over (anchor, positive) pairs, metrics {'loss', 'active_fraction',
     'semi_hard_fraction', 'positive_distance', 'negative_distance'}).
  """
  index = jnp.arange(labels.shape[0])
  metrics = _means(triplet_sums(embeddings, labels, index, embeddings, labels, margin, squared))
  return metrics['loss'], metrics


def gathered_triplet_loss(embeddings: jax.Array, labels: jax.Array, axis_name: str,
                          margin: float = 0.2, squared: bool = True
                          ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`triplet_loss` of the global batch, inside a function mapped over `axis_name`.

  Args:
    embeddings: float [b, E], this device's share (devices hold consecutive slices of the batch).
    labels: int [b].
    axis_name: the mapped axis (e.g. `parallel.AXIS`).

  Returns:
    (this device's loss, metrics of the global batch, equal on all devices). The device loss is
    D * (sum over this device's anchors) / (pairs of the global batch): its mean over the D devices
    is the global loss, and the pmean of its gradients is the gradient of the global loss.
  """
  all_embeddings = jax.lax.all_gather(embeddings, axis_name, tiled=True)  # [B, E]
  all_labels = jax.lax.all_gather(labels, axis_name, tiled=True)
  b = labels.shape[0]
  index = jax.lax.axis_index(axis_name) * b + jnp.arange(b)
  sums = triplet_sums(embeddings, labels, index, all_embeddings, all_labels, margin, squared)
  total = jax.lax.psum(jax.lax.stop_gradient(sums), axis_name)
  devices = jax.lax.psum(1, axis_name)
  loss = devices * sums['loss'] / jnp.maximum(total['pairs'], 1.0)
  return loss, _means(total)
