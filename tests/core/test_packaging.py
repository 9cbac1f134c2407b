"""What an install brings: the experiments as mlfun_jax.experiments, licence metadata, a lean
default install, and one line naming the extra when an optional dependency is absent.

Building a wheel and installing it into a fresh virtual environment takes minutes:
benchmarks/wheel_install.sh does that (and measures the install's size) outside the test suite.
"""

import importlib.util
import pathlib
import re
import sys
from importlib import metadata

import pytest

from mlfun_jax.core import extras
from mlfun_jax.core.errors import UserError
from tests.conftest import REPO_ROOT

# Optional dependencies: in an extra, never in the default install.
# array-record is a default requirement since the streamed input writes and reads its shards (grain
# requires it too); scikit-image since recognize finds faces in photos (its face cascade).
OPTIONAL = {'tensorflow-datasets': 'tfds', 'espeakng-loader': 'speech', 'pytest': 'test',
            'tensorflow-cpu': 'tf'}
DEFAULT = ('array-record', 'grain', 'scikit-image')
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
  for name in DEFAULT:
    assert '' in requirements.get(name, set()), f'{name} is not in the default install'


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


def test_require_names_the_package_and_extra_in_one_line(monkeypatch):
  monkeypatch.setitem(sys.modules, 'espeakng_loader', None)
  with pytest.raises(extras.MissingExtraError) as error:
    extras.require('espeakng_loader', 'synthetic voices')
  assert str(error.value) == ("synthetic voices needs espeakng-loader, which is not installed: "
                              "pip install 'mlfun_jax[speech]' (in a checkout: pip install -e "
                              "'.[speech]')")
  assert error.value.extra == 'speech'
  assert extras.available('numpy') and not extras.available('no_such_module_here')


def test_each_test_carries_its_worker_group(request):
  """`pytest -n 2 --dist loadgroup` (the README's command) keeps a family folder on one worker, so
  its shared trained fixtures are built once: the group reaches pytest-xdist's scheduler."""
  assert [mark.args[0] for mark in request.node.iter_markers('xdist_group')] == [
      'core/test_packaging.py']
  if getattr(request.config.option, 'loadgroup', False):  # In a pytest-xdist worker.
    assert request.node.nodeid.endswith('@core/test_packaging.py'), request.node.nodeid
