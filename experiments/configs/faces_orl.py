"""Face recognition on the AT&T/ORL faces: an embedding CNN (CosFace) on each face's face box, and
the photo tools recognize uses (the series' HOG detector, an eye locator).

30 people x 10 grey 92x112 images (faces_orl/ in the data folder: `mlfun-data fetch faces_orl`;
your own faces: --config.data_dir=FOLDER of <person>/<image> files), split by identity with
`split_seed`: 16 people train, 4 validation (they pick recognize's tolerance and the verification
threshold), 10 test (never seen in training nor in picking a default). The network sees each
face's 72x72 face box scaled to 48x48.

  mlfun-train --config=faces_orl --workdir=workdirs/faces_orl
  mlfun-recognize --workdir=workdirs/faces_orl KNOWN_DIR PHOTO_OR_DIR [--json] [--draw=DIR]

Writes report.json (validation and test measures), test_embeddings.png, hog.png,
face_detector_hog.npz and face_locator.npz in the workdir. Measured (docs/faces.md) on a 2-core
AMD EPYC (2 devices; 238-258 s wall a run without the photo tools, ~1.5 min more with them), split
seeds 0-9: recognize names 76.4 +- 6.1% of the unseen test people's faces with one enrolled image
each (worst split 63.7%; the goal of 95% is not met), nearest neighbour 85.0%, logistic regression
with 5 enrolled images 96.0%, AUC 0.957. Face detection (benchmarks/face_detection.py): the
default cascade AP@0.5 0.879, the HOG detector 0.529. One 1000x750 photo: 1.4 s in a running
process.
"""

import ml_collections

from mlfun_jax.data import sources
from mlfun_jax.faces import config as faces_config


def get_config() -> ml_collections.ConfigDict:
  config = faces_config.defaults()
  config.data_dir = sources.dataset_dir("faces_orl")
  return config
