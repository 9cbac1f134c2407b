"""Face embeddings on the AT&T/ORL faces: a CNN trained with CosFace (or the semi-hard triplet loss).

30 people x 10 grey 92x112 images (faces_orl/ in the data folder: `mlfun-data fetch faces_orl`;
your own faces: --config.data_dir=FOLDER of <person>/<image> files), split by identity with `split_seed`:
18 people train, 4 validation (their pairs, and their faces against the training faces, pick the
verification threshold), 8 test (never seen in training nor in picking the threshold). Faces are
halved to 46x56.

  mlfun-train --config=faces_orl --workdir=workdirs/faces_orl
  mlfun-recognize --workdir=workdirs/faces_orl KNOWN_DIR IMAGE_OR_DIR

Writes report.json (validation and test measures), test_embeddings.png and hog.png in the workdir.
Measured (docs/faces.md) on a 2-core CPU (2 devices; 4.1-4.7 min wall a run), test people of
the fresh split seeds 6-11: verification accuracy at the picked threshold 96.5 +- 1.1% (95.2-98.2%),
identification top-1 with one enrolled image 96.9 +- 1.9% (nearest neighbour) and 96.8% (logistic
regression), AUC 0.991; split seeds 0-5 (on which test-time augmentation and the impostor pairs
were chosen): 96.7% / 95.4% / 96.0%. With the threshold of validation pairs alone
(threshold_impostors='validation') verification fell to 65.4% and 84.4% on two splits of twelve.
The triplet loss (--config.loss=triplet, margin 0.6, (32, 64, 128), 800 steps, no test-time
augmentation): verification 94.8%, nearest neighbour 92.7% over seeds 0-2.
"""

import ml_collections

from mlfun_jax.data import sources
from mlfun_jax.faces import config as faces_config


def get_config() -> ml_collections.ConfigDict:
  config = faces_config.defaults()
  config.data_dir = sources.dataset_dir("faces_orl")
  return config
