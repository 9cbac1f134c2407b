"""mlfun_jax.gan: a DCGAN (optionally InfoGAN's categorical code) that measures its own samples in
a trained classifier's feature space.

Public API: `TrainedGAN` (a trained run restored from its workdir, for sampling), `defaults()` and
`FIELDS_ADDED_LATER` (the family's config fields), the networks (`Generator`, `Discriminator`,
`Latent`, `create_models`, `create_state`), `samples` and `sample_grid` (drawing), the sample
quality measures (`frechet_distance`, `inception_score`) and the NES look (`pixel_art`). The Task
(`task.build`) is reached through `mlfun_jax.families`.
"""

from mlfun_jax.gan.config import defaults
from mlfun_jax.gan.config import FIELDS_ADDED_LATER
from mlfun_jax.gan.inference import TrainedGAN
from mlfun_jax.gan.model import create_models
from mlfun_jax.gan.model import create_state
from mlfun_jax.gan.model import Discriminator
from mlfun_jax.gan.model import Generator
from mlfun_jax.gan.model import Latent
from mlfun_jax.gan.palette import pixel_art
from mlfun_jax.gan.pictures import sample_grid
from mlfun_jax.gan.pictures import samples
from mlfun_jax.gan.sample_quality import frechet_distance
from mlfun_jax.gan.sample_quality import inception_score

__all__ = [
    "TrainedGAN", "defaults", "FIELDS_ADDED_LATER", "create_models", "create_state",
    "Discriminator", "Generator", "Latent", "pixel_art", "sample_grid", "samples",
    "frechet_distance", "inception_score",
]
