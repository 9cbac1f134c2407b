"""What an install brings: the experiments as mlfun_jax.experiments, licence metadata, a lean
default install, and one line naming the extra when an optional dependency is absent.

Building a wheel and installing it into a fresh virtual environment takes minutes:
benchmarks/wheel_install.sh does that (and measures the install's size) outside the test suite.
"""

import importlib.util
import pathlib
import re
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

from mlfun_jax.core import extras
from mlfun_jax.core.errors import UserError
from tests.conftest import REPO_ROOT

# Optional dependencies: in an extra, never in the default install.
OPTIONAL = {'tensorflow-datasets': 'tfds', 'array-record': 'tfds', 'scikit-image': 'faces_hog',
            'espeakng-loader': 'speech', 'pytest': 'test', 'tensorflow-cpu': 'tf',
            'scikit-learn': 'test', 'mlxtend': 'test'}  # mlxtend would bring pandas.
GPL = {'espeakng-loader'}


def _requirements() -> dict[str, set[str]]:
  """{distribution name: {'' for the default install, or the extras that bring it}}."""
  found = {}
  for requirement in metadata.requires('mlfun_jax') or []:
    name = re.split(r'[\s<>=!~;\[]', requirement, maxsplit=1)[0].lower().replace('_', '-')
    extra = re.search(r'extra\s*==\s*"([^"]+)"', requirement)  # Normalised: faces_hog -> faces-hog.
    found.setdefault(name, set()).add(extra.group(1).replace('-', '_') if extra else '')
  return found


def test_experiments_install_as_mlfun_jax_experiments():
  for module, path in (('mlfun_jax.experiments.train', 'experiments/train.py'),
                       ('mlfun_jax.experiments.configs.cnn_mnist', 'experiments/configs/cnn_mnist.py')):
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    assert pathlib.Path(spec.origin).resolve() == (REPO_ROOT / path).resolve()


def test_licence_and_classifiers():
  meta = metadata.metadata('mlfun_jax')
  assert meta['License'] == 'Apache-2.0'
  assert 'License :: OSI Approved :: Apache Software License' in meta.get_all('Classifier')
  assert 'Programming Language :: Python :: 3.11' in meta.get_all('Classifier')
  assert (REPO_ROOT / 'LICENSE').read_text().lstrip().startswith('Apache License')


def test_default_install_leaves_optional_and_gpl_packages_to_extras():
  requirements = _requirements()
  for name, extra in OPTIONAL.items():
    assert '' not in requirements.get(name, set()), f'{name} is in the default install'
    assert extra in requirements.get(name, set()), f'{name} is not in the {extra} extra'
  for name in GPL:
    assert requirements[name] == {'speech'}, f'{name} (GPL) must stay in the speech extra alone'
  assert 'pytest-xdist' in requirements and 'test' in requirements['tensorflow-datasets']


def test_missing_tfds_is_one_line_naming_the_extra(monkeypatch):
  from mlfun_jax.data import registry  # pylint: disable=g-import-not-at-top
  from mlfun_jax.data import tfds_source  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  monkeypatch.setattr(tfds_source, 'available', lambda: False)
  with pytest.raises(extras.MissingExtraError) as error:
    tfds_source.load_tfds('mnist', None)
  message = str(error.value)
  assert "pip install 'mlfun_jax[tfds]'" in message and 'mnist' in message
  assert '\n' not in message
  with pytest.raises(UserError, match=r"unknown dataset 'fashion_mnist'.*mlfun_jax\[tfds\]"):
    registry.load_image_dataset('fashion_mnist')
  assert registry.load_image_dataset('digits').name == 'digits'  # Built-in data needs no TFDS.


def test_missing_scikit_image_is_one_line_and_a_faces_run_goes_on_without_its_picture(
    monkeypatch, tmp_path):
  from mlfun_jax.faces import pictures as face_pictures  # pylint: disable=g-import-not-at-top
  monkeypatch.setitem(sys.modules, 'skimage', None)
  monkeypatch.setitem(sys.modules, 'skimage.feature', None)
  with pytest.raises(extras.MissingExtraError, match=r"hog\.png.*mlfun_jax\[faces_hog\]"):
    face_pictures.hog_picture(np.zeros((16, 16), np.uint8), str(tmp_path / 'hog.png'))
  assert not (tmp_path / 'hog.png').exists()


def test_require_names_the_package_and_extra_in_one_line(monkeypatch):
  monkeypatch.setitem(sys.modules, 'espeakng_loader', None)
  with pytest.raises(extras.MissingExtraError) as error:
    extras.require('espeakng_loader', 'synthetic voices')
  assert str(error.value) == ("synthetic voices needs espeakng-loader, which is not installed: "
                              "pip install 'mlfun_jax[speech]' (in a checkout: pip install -e "
                              "'.[speech]')")
  assert error.value.extra == 'speech'
  assert extras.available('numpy') and not extras.available('no_such_module_here')


BLOCKED = ('sklearn', 'mlxtend', 'pandas', 'skimage', 'tensorflow_datasets')
WITHOUT_OPTIONAL_PACKAGES = f'''
import sys
for name in {BLOCKED!r}:
  sys.modules[name] = None  # Importing it now fails, as in a default install.
import numpy as np
from mlfun_jax import data
from mlfun_jax.autoencoder import pictures
from mlfun_jax.core import roc
from mlfun_jax.faces import measures
mnist, digits = data.load_image_dataset('embedded_mnist'), data.load_image_dataset('digits')
assert (len(mnist.train), len(mnist.test), len(digits.train), len(digits.test)) == (
    4000, 1000, 1438, 359)
codes = mnist.train.images.reshape(4000, -1)[:, ::8].astype(np.float32)
accuracy = pictures.knn_accuracy(codes[:3000], mnist.train.labels[:3000], codes[3000:],
                                 mnist.train.labels[3000:])
assert 0.5 < accuracy <= 1.0, accuracy
assert roc.auc(np.array([0, 1, 0, 1], bool), np.array([0.1, 0.9, 0.4, 0.4])) == 0.875
x = digits.train.images.reshape(len(digits.train), -1) / 255.0
assert 0.8 < measures.linear_classifier_top1(x[:400], digits.train.labels[:400], enrolled=5) <= 1.0
print('ok')
'''


def test_built_in_data_and_measures_need_no_optional_package():
  """The default install has no scikit-learn, mlxtend (pandas), scikit-image nor TFDS: the built-in
  datasets ship in the package and the measures that used scikit-learn are numpy/scipy."""
  process = subprocess.run([sys.executable, '-c', WITHOUT_OPTIONAL_PACKAGES], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=300, check=False)
  assert process.returncode == 0 and process.stdout.strip() == 'ok', process.stderr[-3000:]


def test_shipped_digits_and_measures_match_scikit_learn():
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  from sklearn import linear_model  # pylint: disable=g-import-not-at-top
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  from sklearn import neighbors  # pylint: disable=g-import-not-at-top
  from mlfun_jax.autoencoder import pictures  # pylint: disable=g-import-not-at-top
  from mlfun_jax.core import roc  # pylint: disable=g-import-not-at-top
  from mlfun_jax.data import embedded  # pylint: disable=g-import-not-at-top
  from mlfun_jax.faces import measures  # pylint: disable=g-import-not-at-top
  reference = datasets.load_digits()
  pixels, labels = embedded._read_table('digits.csv.gz')  # pylint: disable=protected-access
  np.testing.assert_array_equal(pixels.reshape(-1, 8, 8), reference.images)
  np.testing.assert_array_equal(labels, reference.target)
  rng = np.random.default_rng(0)
  train, test = rng.normal(size=(600, 6)), rng.normal(size=(300, 6))
  train_labels, test_labels = rng.integers(0, 5, 600), rng.integers(0, 5, 300)
  train[:, 0] += train_labels
  test[:, 0] += test_labels
  knn = neighbors.KNeighborsClassifier(5).fit(train, train_labels).predict(test)
  assert pictures.knn_accuracy(train, train_labels, test, test_labels) == (knn == test_labels).mean()
  scores, positive = np.round(rng.normal(size=500), 1), rng.random(500) < 0.3  # With ties.
  assert roc.auc(positive, scores) == pytest.approx(metrics.roc_auc_score(positive, scores))
  classes, w = measures.fit_logistic_regression(train, train_labels, 10.0)
  theirs = linear_model.LogisticRegression(C=10.0, max_iter=2000).fit(train, train_labels)
  np.testing.assert_array_equal(classes[np.argmax(test @ w[:, :-1].T + w[:, -1], axis=1)],
                                theirs.predict(test))
  np.testing.assert_allclose(w[:, :-1], theirs.coef_, atol=1e-3)
