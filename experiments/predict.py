"""Classifies image files with the latest checkpoint of a trained classifier.

  mlfun-predict --workdir=workdirs/cnn_mnist digit.png photo.jpg

Prints one JSON line per image: {"path": ..., "top": [[class name, probability], ...]} (top 5 by
default; a sigmoid one-vs-rest model gives [["bird", p], ["not bird", 1 - p]] ordered by p).
Images of any size and format are converted to the model's input: grey or RGB, then
- photo models (trained on image folders or colour images): the shorter side is scaled to the
  model's size (LANCZOS) and the centre square is cropped, exactly as the training images were;
- digit models: padded to a square with the border colour and resized, and dark-on-light images
  are inverted (see --invert).
--fit overrides the choice recorded in the checkpoint. A file that is not a readable image (or
has more than 8192 x 8192 pixels) gets one `error:` line on stderr, the others are still answered,
and the exit status is then 2.
"""

import json

from absl import app
from absl import flags
import numpy as np

from mlfun_jax.core import cli
from mlfun_jax.data import images

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained classifier.")
_TOP_K = flags.DEFINE_integer("top_k", 5, "How many classes to print per image.", lower_bound=1)
_INVERT = flags.DEFINE_enum("invert", "auto", images.INVERT_CHOICES,
                            "Invert grey images: auto (when the border is light), yes or no.")
_FIT = flags.DEFINE_enum("fit", "auto", ("auto",) + images.FIT_CHOICES,
                         "How an image is fitted to the model's input: auto (as recorded with the "
                         "checkpoint), crop (centre crop) or pad (pad to a square).")
_BATCH = 256
flags.mark_flag_as_required("workdir")


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError("give one or more image files to classify")
  from mlfun_jax.classification import inference  # pylint: disable=g-import-not-at-top
  failures = 0
  with cli.user_errors():
    classifier = inference.Classifier(_WORKDIR.value)
    for start in range(0, len(paths), _BATCH):
      chunk, failed = cli.load_each(
          paths[start:start + _BATCH],
          lambda path: classifier.load_image(path, _INVERT.value, _FIT.value))
      failures += failed
      if not chunk:
        continue
      batch = np.stack([image for _, image in chunk])
      for (path, _), top in zip(chunk, classifier.predict(batch, _TOP_K.value)):
        print(json.dumps({"path": path, "top": [[label, round(p, 6)] for label, p in top]}),
              flush=True)
  cli.exit_if_failed(failures)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
