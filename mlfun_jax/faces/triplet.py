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

`mining='batch_hard'` (Hermans et al. 2017) pairs every (anchor, positive) with the anchor's closest
negative instead (no semi-hard condition).

Also here: the CosFace loss (Wang et al. 2018, additive cosine margin), a softmax over learned
class centres of the training people on scaled cosines, the target's cosine lowered by a margin:
-log softmax(s * (cos(e, w_j) - m [j = y]))_y. Only training uses the centres; the test-time
embedding stays the L2-normalised one.
"""

import jax
import jax.numpy as jnp

from mlfun_jax.core import checks

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


MINING = ('semi_hard', 'batch_hard')


def mine_batch_hard(distances: jax.Array, anchor_labels: jax.Array, labels: jax.Array,
                    anchor_index: jax.Array) -> dict[str, jax.Array]:
  """Like `mine_semi_hard`, but every pair of anchor a gets a's closest negative (the hardest);
  'semi_hard' tells whether it is farther than the positive."""
  columns = jnp.arange(labels.shape[0])
  same = anchor_labels[:, None] == labels[None, :]
  positive = same & (columns[None, :] != anchor_index[:, None])
  closest = jnp.argmin(jnp.where(same, jnp.inf, distances), axis=1)  # [A]
  d_an = jnp.take_along_axis(distances, closest[:, None], axis=1)  # [A, 1]
  shape = distances.shape
  return {'positive': positive,
          'negative_index': jnp.broadcast_to(closest[:, None], shape).astype(jnp.int32),
          'negative_distance': jnp.broadcast_to(d_an, shape),
          'semi_hard': d_an > distances}


def triplet_sums(anchors: jax.Array, anchor_labels: jax.Array, anchor_index: jax.Array,
                 embeddings: jax.Array, labels: jax.Array, margin: float,
                 squared: bool = True, mining: str = 'semi_hard') -> dict[str, jax.Array]:
  """Sums over the (anchor, positive) pairs of `anchors` [A, E] against the batch [B, E].

  The negatives are mined with `mine_semi_hard` (or `mine_batch_hard`); a negative's distance
  carries gradients (the choice itself does not).

  Returns:
    {'loss': sum of max(d_ap - d_an + margin, 0), 'pairs': number of pairs, 'active': pairs with
     a positive loss, 'semi_hard': pairs with a semi-hard negative, 'positive_distance': sum of
     d_ap, 'negative_distance': sum of d_an}, all float32 scalars.

  Raises:
    InputConventionError: labels that are not integer person ids [A] and [B].
  """
  checks.check_ids(anchor_labels, name='anchor_labels', rank=1)
  checks.check_ids(labels, name='labels', rank=1)
  distances = pairwise_distances(anchors, embeddings, squared)
  mine = {'semi_hard': mine_semi_hard, 'batch_hard': mine_batch_hard}[mining]
  mined = mine(jax.lax.stop_gradient(distances), anchor_labels, labels, anchor_index)
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
                 squared: bool = True, mining: str = 'semi_hard'
                 ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Batch-all-positives semi-hard triplet loss of one whole batch on one device.

  Args:
    embeddings: float [B, E] (L2-normalised in FaceNet).
    labels: int [B] person of each embedding.
    margin: the margin alpha.
    squared: squared Euclidean distances (FaceNet) or plain ones.
    mining: 'semi_hard' or 'batch_hard' (see the module doc).

  Returns:
    (mean loss over (anchor, positive) pairs, metrics {'loss', 'active_fraction',
     'semi_hard_fraction', 'positive_distance', 'negative_distance'}).
  """
  index = jnp.arange(labels.shape[0])
  metrics = _means(triplet_sums(embeddings, labels, index, embeddings, labels, margin, squared,
                                mining))
  return metrics['loss'], metrics


def gathered_triplet_loss(embeddings: jax.Array, labels: jax.Array, axis_name: str,
                          margin: float = 0.2, squared: bool = True,
                          mining: str = 'semi_hard') -> tuple[jax.Array, dict[str, jax.Array]]:
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
  sums = triplet_sums(embeddings, labels, index, all_embeddings, all_labels, margin, squared,
                      mining)
  total = jax.lax.psum(jax.lax.stop_gradient(sums), axis_name)
  devices = jax.lax.psum(1, axis_name)
  loss = devices * sums['loss'] / jnp.maximum(total['pairs'], 1.0)
  return loss, _means(total)


def cosface_sums(embeddings: jax.Array, labels: jax.Array, centres: jax.Array, scale: float,
                 margin: float) -> dict[str, jax.Array]:
  """Sums of the CosFace loss over the rows of embeddings [B, E] with classes labels [B] in
  0..C-1, given class centres [C, E] (both normalised here).

  Returns:
    {'loss': sum of -log softmax(scale * (cos - margin * onehot))_label, 'examples': B,
     'correct': rows whose closest centre (plain cosine) is their own, 'target_cosine': sum of the
     cosine to the own centre}, float32 scalars.

  Raises:
    InputConventionError: labels that are not integer class ids [B] in 0..C-1 (the range is
      checked on concrete arrays only).
  """
  checks.check_ids(labels, name='labels', vocab_size=centres.shape[0], rank=1)
  def normalise(x):
    x = x.astype(jnp.float32)
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=1, keepdims=True), _EPSILON))

  cosines = jnp.einsum('be,ce->bc', normalise(embeddings), normalise(centres),
                       precision='highest')  # [B, C]
  onehot = jax.nn.one_hot(labels, centres.shape[0], dtype=jnp.float32)
  log_p = jax.nn.log_softmax(scale * (cosines - margin * onehot), axis=1)
  return {'loss': -(log_p * onehot).sum(),
          'examples': jnp.asarray(labels.shape[0], jnp.float32),
          'correct': (jnp.argmax(cosines, axis=1) == labels).sum().astype(jnp.float32),
          'target_cosine': (cosines * onehot).sum()}


def _cosface_means(sums: dict[str, jax.Array]) -> dict[str, jax.Array]:
  examples = jnp.maximum(sums['examples'], 1.0)
  return {'cosface_loss': sums['loss'] / examples,
          'class_accuracy': sums['correct'] / examples,
          'target_cosine': sums['target_cosine'] / examples}


def cosface_loss(embeddings: jax.Array, labels: jax.Array, centres: jax.Array,
                 scale: float = 30.0, margin: float = 0.35
                 ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """CosFace loss averaged over a whole batch on one device (see `cosface_sums`): embeddings
  float [B, E], labels int class ids [B] in 0..C-1 (checked), centres float [C, E].

  Returns:
    (mean loss, metrics {'cosface_loss', 'class_accuracy', 'target_cosine'}).
  """
  metrics = _cosface_means(cosface_sums(embeddings, labels, centres, scale, margin))
  return metrics['cosface_loss'], metrics


def device_cosface_loss(embeddings: jax.Array, labels: jax.Array, centres: jax.Array,
                        axis_name: str, scale: float = 30.0, margin: float = 0.35
                        ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`cosface_loss` of the global batch, inside a function mapped over `axis_name` (labels: int
  class ids [b] in 0..C-1, as `cosface_sums` checks).

  Returns:
    (D * this device's loss sum / examples of the global batch, so that the pmean of the
     gradients is the global-batch gradient; metrics of the global batch).
  """
  sums = cosface_sums(embeddings, labels, centres, scale, margin)
  total = jax.lax.psum(jax.lax.stop_gradient(sums), axis_name)
  devices = jax.lax.psum(1, axis_name)
  return devices * sums['loss'] / jnp.maximum(total['examples'], 1.0), _cosface_means(total)
