"""The hand-crafted texture descriptor joined to the network's embedding: LBP and LPQ histograms
over a 4x4 grid of cells, optionally of the face and its mirror image together.

Neither descriptor is trained, so each knows people the network never saw as well as those it
did; the network, trained on 16 people, knows its own better than new ones. Joined, squared
distances add up with the weights of `Texture`.
"""

import dataclasses

import jax
import jax.numpy as jnp

from mlfun_jax.faces import lbp
from mlfun_jax.faces import lpq

GRID = (4, 4)  # Cells of both descriptors.


def join(first: jax.Array, second: jax.Array, share: float) -> jax.Array:
  """[sqrt(1 - share) x first, sqrt(share) x second] of unit-length rows [B, E1] and [B, E2]:
  unit-length rows whose squared distances are (1 - share) x first's + share x second's."""
  return jnp.concatenate([jnp.sqrt(1.0 - share) * first, jnp.sqrt(share) * second], axis=-1)


@dataclasses.dataclass(frozen=True)
class Texture:
  """How faces' texture joins their network embedding (config fields in brackets).

  weight: w in [0, 1) (lbp_weight): squared distances are (1 - w) x the network's + w x the
    descriptor's; 0: no descriptor.
  lpq_share: a in [0, 1] (lpq_share): the descriptor's squared distances are (1 - a) x LBP's +
    a x LPQ's; 0: LBP alone.
  mirror: (mirror_descriptors) each of LBP and LPQ describes the face and its mirror image: the
    unit-length sum of the two histograms, so a face turned left meets the same person turned
    right.
  """
  weight: float = 0.0
  lpq_share: float = 0.0
  mirror: bool = False

  @classmethod
  def from_config(cls, config) -> "Texture":
    return cls(float(config.lbp_weight), float(config.lpq_share), bool(config.mirror_descriptors))

  @property
  def size(self) -> int:
    """D of `describe` (0 without a descriptor)."""
    if self.weight <= 0:
      return 0
    return GRID[0] * GRID[1] * (lbp.BINS + (lpq.BINS if self.lpq_share > 0 else 0))

  def describe(self, images: jax.Array) -> jax.Array:
    """Unit-length float32 [B, D] descriptors of uint8 faces [B, H, W, 1] (0..255):
    [sqrt(1 - a) x LBP's, sqrt(a) x LPQ's] (LBP's alone when a = 0).

    Raises:
      InputConventionError: images that are not a uint8 one-channel batch [B, H, W, 1].
    """
    def both(describe):
      d = describe(images, GRID)
      if not self.mirror:
        return d
      d = d + describe(images[:, :, ::-1], GRID)
      return d / jnp.linalg.norm(d, axis=-1, keepdims=True)

    described = both(lbp.descriptors)
    if self.lpq_share <= 0:
      return described
    return join(described, both(lpq.descriptors), self.lpq_share)


NONE = Texture()
