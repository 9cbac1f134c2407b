"""Importing mlfun_jax has no side effects: no TensorFlow, no flag parsing, no device set-up."""

import pathlib
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

MODULES = [
    'mlfun_jax', 'mlfun_jax.data', 'mlfun_jax.models.cnn', 'mlfun_jax.families',
    'mlfun_jax.classification.task', 'mlfun_jax.core.train', 'mlfun_jax.core.parallel',
    'mlfun_jax.core.checkpoint', 'mlfun_jax.core.metrics_writer', 'mlfun_jax.core.optim', 'mlfun_jax.data.augment',
    'mlfun_jax.data.images', 'mlfun_jax.core.cli', 'mlfun_jax.core.progress',
    'mlfun_jax.core.checks', 'mlfun_jax.classification', 'mlfun_jax.adversarial',
    'mlfun_jax.autoencoder', 'mlfun_jax.gan', 'mlfun_jax.char_rnn', 'mlfun_jax.speech',
    'mlfun_jax.translation', 'mlfun_jax.faces',
]


def test_import_has_no_side_effects(tmp_path: pathlib.Path):
  # A stand-in 'tensorflow' first on the path records any import of it, even a guarded one.
  fake = tmp_path / 'tensorflow'
  fake.mkdir()
  marker = tmp_path / 'tensorflow_was_imported'
  (fake / '__init__.py').write_text(f'open({str(marker)!r}, "w").close()\n')
  script = textwrap.dedent(f'''
      import sys
      sys.path.insert(0, {str(tmp_path)!r})
      import importlib
      for name in {MODULES!r}:
        module = importlib.import_module(name)
        for public in getattr(module, '__all__', ()):  # Every public name resolves...
          if not hasattr(module, public):  # ... as an attribute or a subpackage.
            importlib.import_module(name + '.' + public)
      from absl import flags
      from jax._src import xla_bridge
      print('flags_parsed', flags.FLAGS.is_parsed())
      print('backends_initialized', xla_bridge.backends_are_initialized())
      print('tensorflow_modules', sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))
      ''')
  process = subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT, capture_output=True,
                           text=True, check=False, timeout=120)
  assert process.returncode == 0, process.stderr
  assert 'flags_parsed False' in process.stdout
  assert 'backends_initialized False' in process.stdout
  assert 'tensorflow_modules []' in process.stdout
  assert not marker.exists()
