"""Family code reads only fields its `defaults()` declares, and reads them directly.

Every `config.a.b` (or `self.config.a.b`) attribute chain in a family package must name a field of
that family's defaults(); `config.get('field', ...)` on a family config is refused: a default
belongs in defaults(), not at the place of use. tests/core/test_configs.py checks the config files'
fields against the defaults.
"""

import ast
import importlib
import pathlib

import ml_collections
import pytest

from mlfun_jax import families
from tests.conftest import REPO_ROOT

CONFIG_METHODS = frozenset({'get', 'to_dict', 'to_json', 'items', 'keys', 'values', 'lock',
                            'unlock', 'update', 'copy_and_resolve_references', 'unlocked',
                            'ignore_type', 'to_yaml'})


def _root_is_config(node: ast.AST) -> bool:
  if isinstance(node, ast.Name):
    return node.id == 'config'
  return (isinstance(node, ast.Attribute) and node.attr == 'config'
          and isinstance(node.value, ast.Name) and node.value.id == 'self')


def config_reads(source: str) -> tuple[set[tuple[str, ...]], list[str]]:
  """(field paths read as config.a.b, config...get(...) calls) in Python `source`."""
  tree = _with_parents(ast.parse(source))
  reads, gets = set(), []
  for node in ast.walk(tree):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
        node.func.attr == 'get' and node.args:
      chain = _chain(node.func.value)
      if chain is not None:
        gets.append('.'.join(('config',) + chain) + f'.get({ast.unparse(node.args[0])}, ...)')
    if isinstance(node, ast.Attribute) and not isinstance(node.parent, ast.Attribute):
      chain = _chain(node)
      if chain:
        reads.add(chain)
  return reads, gets


def _chain(node: ast.AST) -> tuple[str, ...] | None:
  """('a', 'b') for config.a.b; None when `node` is not rooted at a config."""
  names = []
  while isinstance(node, ast.Attribute) and not _root_is_config(node):
    names.append(node.attr)
    node = node.value
  if not _root_is_config(node):
    return None
  names.reverse()
  for i, name in enumerate(names):
    if name in CONFIG_METHODS:
      return tuple(names[:i])
  return tuple(names)


def missing_fields(defaults: ml_collections.ConfigDict, reads) -> list[str]:
  missing = []
  for chain in sorted(reads):
    node = defaults
    for i, name in enumerate(chain):
      if not isinstance(node, ml_collections.ConfigDict):
        break  # An attribute of a field's value (e.g. a tuple's method), not a field.
      if name not in node:
        missing.append('.'.join(chain[:i + 1]))
        break
      node = node[name]
  return missing


def _family_files(family: str) -> list[pathlib.Path]:
  package = pathlib.Path(importlib.import_module(families.FAMILIES[family]).__file__).parent
  return sorted(package.glob('*.py'))


def _with_parents(tree: ast.AST) -> ast.AST:
  for node in ast.walk(tree):
    for child in ast.iter_child_nodes(node):
      child.parent = node
  return tree


@pytest.mark.parametrize('family', sorted(families.FAMILIES))
def test_family_reads_only_declared_fields_and_never_gets_them(family):
  defaults = families.config_module(family).defaults()
  problems = []
  for path in _family_files(family):
    reads, gets = config_reads(path.read_text())
    rel = path.relative_to(REPO_ROOT)
    problems += [f'{rel}: reads config.{name}, not in defaults()'
                 for name in missing_fields(defaults, reads)]
    problems += [f'{rel}: {get}' for get in gets]
  assert not problems, problems


def test_the_scanner_finds_reads_and_gets():
  source = ('def f(config, self):\n'
            '  a = config.model.width + self.config.seed\n'
            '  b = config.get("mirror", False)\n'
            '  c = config.augment.to_dict()\n')
  reads, gets = config_reads(source)
  defaults = ml_collections.ConfigDict({'model': {'width': 1}, 'seed': 0})
  assert missing_fields(defaults, reads) == ['augment']
  assert gets == ["config.get('mirror', ...)"]
