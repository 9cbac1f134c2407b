"""Face recognition on the AT&T/ORL faces: an embedding CNN (CosFace) on each face's head, joined
with its texture descriptor (LBP and LPQ of the face and its mirror image), and the photo tools
recognize uses (the series' HOG detector, an eye locator).

30 people x 10 grey 92x112 images (faces_orl/ in the data folder: `mlfun-data fetch faces_orl`;
your own faces: --config.data_dir=FOLDER of <person>/<image> files), split by identity with
`split_seed`: 16 people train, 4 validation (they pick recognize's tolerance and the verification
threshold), 10 test (never seen in training nor in picking a default). The network sees each
face's head (the 72x72 face box grown by 10 pixels each side, scaled to 48x48); half the training
faces get a new background around the head.

  mlfun-train --config=faces_orl --workdir=workdirs/faces_orl
  mlfun-recognize --workdir=workdirs/faces_orl KNOWN_DIR PHOTO_OR_DIR [--json] [--draw=DIR]

Writes report.json (validation and test measures), test_embeddings.png, hog.png,
face_detector_hog.npz and face_locator.npz in the workdir. Measured (docs/faces.md) on a 2-core
AMD EPYC (2 devices; 3.4 min wall a run with the eye locator and without the HOG detector),
split seeds 0-9: recognize names 90.2 +- 5.5% of the unseen test people's faces with
one enrolled image each (worst split 83.0%; the goal of 95% is not met; 89.7% with faces found
and aligned), nearest neighbour 92.6%, logistic regression with 5 enrolled images 99.7%, AUC
0.980; strangers answered unknown_person 43.1%. Face detection (benchmarks/face_detection.py):
the default cascade AP@0.5 0.879, the HOG detector 0.529. One 1000x750 photo: 0.79 s in a running
process.
"""

import ml_collections

from mlfun_jax.data import sources
from mlfun_jax.faces import config as faces_config


def get_config() -> ml_collections.ConfigDict:
  config = faces_config.defaults()
  config.data_dir = sources.dataset_dir("faces_orl")
  return config
