"""The layout's rules (docs/architecture.md), checked on the imports of every module.

- the core imports nothing of mlfun_jax outside mlfun_jax.core;
- data/ and models/ import only the core, data/ and models/;
- a family imports the core, data/, models/, itself and at most another family's inference API;
- nothing below the entry points imports the registry (mlfun_jax.families) but the registry itself;
- module-level imports have no cycles; at most 5 modules sit directly in mlfun_jax/.
Imports inside functions count for the arrows (not for cycles: they run after loading).
"""

import ast
import pathlib

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / 'mlfun_jax'
FAMILIES = ('classification', 'adversarial', 'autoencoder', 'gan', 'char_rnn', 'speech',
            'translation', 'faces')
SHARED = ('core', 'data', 'models')
# A family's API for other families: its package and its inference module (for the adversarial
# family, the attack functions that classification's adversarial training applies).
INFERENCE_API = {family: {'inference'} for family in FAMILIES}
INFERENCE_API['adversarial'] = {'attacks'}


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO_ROOT).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def all_modules() -> dict[str, pathlib.Path]:
  return {module_name(p): p for p in sorted(PACKAGE.rglob('*.py'))}


def imports_of(path: pathlib.Path, module: str, top_level_only: bool) -> set[str]:
  """Dotted mlfun_jax modules (or names inside them) that `path` imports."""
  tree = ast.parse(path.read_text())
  nodes = tree.body if top_level_only else ast.walk(tree)
  package = module if path.name == '__init__.py' else module.rpartition('.')[0]
  found = set()
  for node in nodes:
    if isinstance(node, ast.Import):
      found |= {alias.name for alias in node.names}
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ''
      if node.level:
        parent = package.split('.')
        parent = parent[:len(parent) - node.level + 1]
        base = '.'.join(parent + ([base] if base else []))
      found |= {f'{base}.{alias.name}' for alias in node.names} | {base}
  return {name for name in found if name.split('.')[0] == 'mlfun_jax'}


def resolve(name: str, modules: dict[str, pathlib.Path]) -> str:
  """The module that an imported dotted name lives in (a module, or a name inside one)."""
  while name not in modules:
    name = name.rpartition('.')[0]
  return name


def arrows() -> dict[str, set[str]]:
  modules = all_modules()
  return {module: {resolve(n, modules) for n in imports_of(path, module, False)} - {module}
          for module, path in modules.items()}


def floor(module: str) -> str:
  parts = module.split('.')
  return parts[1] if len(parts) > 1 else ''


def allowed(importer: str, imported: str) -> bool:
  source, target = floor(importer), floor(imported)
  if target == '' or source == target:
    return source == target or imported == 'mlfun_jax'
  if target == 'families':
    return False
  if source == 'core':
    return target == 'core'
  if source in ('data', 'models'):
    return target in SHARED
  if source in FAMILIES:
    if target in SHARED:
      return True
    leaf = imported.split('.')[2] if imported.count('.') >= 2 else None
    return target in FAMILIES and (leaf is None or leaf in INFERENCE_API[target])
  if source == 'families':
    return target == 'core'
  return False


def test_every_module_sits_on_a_known_floor():
  floors = {floor(m) for m in all_modules()} - {''}
  assert floors <= set(SHARED) | set(FAMILIES) | {'families'}, floors


def test_at_most_five_modules_directly_in_the_package():
  direct = [p.name for p in PACKAGE.glob('*.py')]
  assert len(direct) <= 5, direct


@pytest.mark.parametrize('floor_name', SHARED + FAMILIES + ('families',))
def test_imports_follow_the_floors(floor_name):
  bad = [f'{importer} -> {imported}' for importer, targets in arrows().items()
         if floor(importer) == floor_name for imported in sorted(targets)
         if not allowed(importer, imported)]
  assert not bad, bad


def test_the_core_imports_no_family_no_data_and_no_models():
  core_targets = {t for m, targets in arrows().items() if floor(m) == 'core' for t in targets}
  assert {floor(t) for t in core_targets} <= {'core'}, sorted(core_targets)


def test_no_import_cycles():
  modules = all_modules()
  graph = {}
  for module, path in modules.items():
    targets = set()
    for name in imports_of(path, module, top_level_only=True):
      target = resolve(name, modules)
      targets.add(target)
      # Importing a.b.c first runs the packages a and a.b, unless the importer lives inside them.
      parts = target.split('.')
      for i in range(1, len(parts)):
        parent = '.'.join(parts[:i])
        if not module.startswith(parent + '.') and module != parent:
          targets.add(parent)
    # A module's own packages are already loading when it runs: not an arrow that can cycle.
    graph[module] = {t for t in targets if t != module and not module.startswith(t + '.')}
  state, stack, cycles = {}, [], []

  def visit(node):
    state[node] = 'open'
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 'open':
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt not in state:
        visit(nxt)
    stack.pop()
    state[node] = 'done'

  for node in sorted(graph):
    if node not in state:
      visit(node)
  assert not cycles, cycles


def test_the_checker_sees_a_forbidden_arrow():
  assert not allowed('mlfun_jax.core.train', 'mlfun_jax.data.arrays')
  assert not allowed('mlfun_jax.core.train', 'mlfun_jax.families')
  assert not allowed('mlfun_jax.gan.task', 'mlfun_jax.classification.task')
  assert allowed('mlfun_jax.gan.task', 'mlfun_jax.classification.inference')
  assert not allowed('mlfun_jax.data.arrays', 'mlfun_jax.speech.audio')
  assert allowed('mlfun_jax.speech.task', 'mlfun_jax.models.rnn')
