"""Pictures of the face family: a 2-D projection of embeddings by person, and a HOG picture."""

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core import pictures


def pca_2d(embeddings: np.ndarray) -> np.ndarray:
  """float32 [N, 2]: embeddings [N, E] projected on their first two principal components."""
  centred = np.asarray(embeddings, np.float64) - np.mean(embeddings, axis=0)
  _, _, vt = np.linalg.svd(centred, full_matrices=False)
  return (centred @ vt[:2].T).astype(np.float32)


def embedding_scatter(embeddings: np.ndarray, labels: np.ndarray, people, path: str) -> str:
  """PNG scatter of the PCA projection of embeddings [N, E], coloured by person (labels index
  `people`; renumbered 0.. so up to 10 people get distinct colours).

  Raises:
    InputConventionError: labels that are not integer ids [N] into `people`.
  """
  checks.check_ids(np.asarray(labels), name="labels", vocab_size=len(people), rank=1)
  present, dense = np.unique(np.asarray(labels), return_inverse=True)
  names = [str(people[k]) for k in present]
  return pictures.scatter_codes(pca_2d(embeddings), dense, names, path,
                                title="test people (never seen in training): embeddings, PCA")


def hog_picture(face: np.ndarray, path: str, pixels_per_cell: int = 4) -> str:
  """The series' HOG picture: the face (uint8 [H, W]) beside its histogram of oriented gradients
  (scikit-image's `hog` with visualize=True), scaled up 3x, as one grey PNG.

  Raises:
    InputConventionError: a face that is not one uint8 grey image [H, W].
  """
  checks.check_images(face, name="face", dtype_kind="u", rank=2)
  from skimage import exposure  # pylint: disable=g-import-not-at-top
  from skimage.feature import hog  # pylint: disable=g-import-not-at-top
  _, image = hog(face, orientations=9, pixels_per_cell=(pixels_per_cell, pixels_per_cell),
                 cells_per_block=(2, 2), visualize=True)
  image = exposure.rescale_intensity(image, out_range=(0.0, 1.0))
  pair = np.stack([np.asarray(face, np.float32) / 255.0, image.astype(np.float32)])[..., None]
  return pictures.save_png(pictures.image_grid(pair, columns=2, scale=3), path)
