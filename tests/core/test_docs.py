"""Every shell command and Python example of README.md and docs/*.md is run here, or marked.

A fenced ```bash or ```python block is either marked on the line right before its fence,

  <!-- needs: dataset mnist -->   <!-- needs: network -->   <!-- needs: minutes -->
  <!-- needs: trained workdir from the block above -->    <!-- needs: gpu -->
  <!-- needs: pdoc (the docs extra) -->   <!-- needs: PyTorch (the bench extra) -->
  (several: comma-separated)

or run by these tests: Python blocks as a script in a fresh folder, shell blocks whose commands
are all quick (`--help`, `mlfun-data list`, `python docs/tables.py --check`) with subprocess. An
unmarked block that cannot be run fails. Every `mlfun-*` command of every block, marked or not,
must name an installed tool, flags that tool defines and, with `--config`, an existing config and
its fields. The generated tables of the pages must match the code, every table row must have as
many cells as its header, every picture a page shows must exist under 300 KB, and no page may name
a path of a development machine.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PAGES = [REPO_ROOT / 'README.md'] + sorted((REPO_ROOT / 'docs').glob('*.md'))
FENCE = re.compile(r'^```(\w*)\s*$')
MARK = re.compile(r'^<!-- needs: (.+?) -->\s*$')
NEEDS = re.compile(r'^(dataset [\w ]+|network|minutes|a short training|gpu|tpu|'
                   r'pdoc \(the docs extra\)|PyTorch \(the bench extra\)|'
                   r'eSpeak NG \(the speech extra\)|trained workdir( from .+)?)$')
# Commands an unmarked shell block may hold: quick, offline, no dataset.
QUICK_COMMANDS = [
    re.compile(r'^mlfun-[\w-]+ (--config=\w+ )?--help(full)?$'),
    re.compile(r'^mlfun-data list$'),
    re.compile(r'^python3? docs/tables\.py --check$'),
]
# absl's own flags, which every tool accepts.
ABSL_FLAGS = {'help', 'helpfull', 'helpshort', 'helpxml', 'flagfile', 'undefok', 'logtostderr',
              'alsologtostderr', 'log_dir', 'v', 'verbosity', 'logger_levels', 'stderrthreshold',
              'showprefixforinfo', 'only_check_args', 'pdb', 'pdb_post_mortem', 'run_with_pdb',
              'run_with_profiling', 'use_cprofile_for_profiling', 'profile_file'}
# What the Python examples must print (a substring of the block -> patterns of its output).
EXPECTED_OUTPUT = {
    'train.Task(': [r'learned: \$\d+ \+ \$\d+ a bedroom \+ \$(19\d|20\d) a square foot',
                    r'mean error on 512 new houses: \$([0-9]{1,4}|1[01][0-9]{3})\n'],
    'cnn.CNN(': [r'\(4, 5\)'],
    'fgsm(': [r'fgsm: largest change 0\.05\d, \d of 8 still right',
              r'pgd: largest change 0\.05\d, \d of 8 still right'],
    'greedy_decode(': [r'^hello$'],
}
PICTURE_LIMIT_BYTES = 300 * 1024


@dataclasses.dataclass(frozen=True)
class Block:
  page: pathlib.Path
  line: int
  language: str
  code: str
  needs: tuple[str, ...]

  @property
  def name(self) -> str:
    return f'{self.page.relative_to(REPO_ROOT)}:{self.line}'


def read_blocks(page: pathlib.Path) -> list[Block]:
  """The fenced code blocks of a markdown page, with the marks on the lines before them."""
  blocks = []
  lines = page.read_text(encoding='utf-8').splitlines()
  i = 0
  while i < len(lines):
    fence = FENCE.match(lines[i])
    if not fence:
      i += 1
      continue
    start = i
    i += 1
    while i < len(lines) and lines[i].rstrip() != '```':
      i += 1
    mark = MARK.match(lines[start - 1]) if start else None
    needs = tuple(n.strip() for n in mark.group(1).split(',')) if mark else ()
    blocks.append(Block(page, start + 1, fence.group(1), '\n'.join(lines[start + 1:i]) + '\n',
                        needs))
    i += 1
  return blocks


ALL_BLOCKS = [block for page in PAGES for block in read_blocks(page)]
CODE_BLOCKS = [block for block in ALL_BLOCKS if block.language in ('bash', 'python')]
RUN_BLOCKS = [block for block in CODE_BLOCKS if not block.needs]


def shell_commands(code: str) -> list[str]:
  """The commands of a shell block: continuation lines joined, comments and blank lines dropped."""
  joined = re.sub(r'\\\n\s*', ' ', code)
  commands = []
  for line in joined.splitlines():
    line = line.strip()
    if not line or line.startswith('#'):
      continue
    commands.append(shlex.split(line, comments=True))
  return [' '.join(tokens) for tokens in commands if tokens]


def _tool_name(word: str) -> str | None:
  name = word.rsplit('/', 1)[-1]
  return name if name.startswith('mlfun-') else None


def console_scripts() -> dict[str, str]:
  """Installed tool name -> module, from setup.py's console_scripts."""
  tree = ast.parse((REPO_ROOT / 'setup.py').read_text(encoding='utf-8'))
  scripts = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
      match = re.match(r'^\s*(mlfun-[\w-]+)\s*=\s*([\w.]+):\w+\s*$', node.value)
      if match:
        scripts[match.group(1)] = match.group(2)
  return scripts


def _module_file(module: str) -> pathlib.Path:
  parts = module.split('.')
  for start in range(len(parts)):  # mlfun_jax.experiments.train lives in experiments/train.py.
    path = REPO_ROOT.joinpath(*parts[start:]).with_suffix('.py')
    if path.is_file():
      return path
  raise AssertionError(f'no source file for module {module}')


def tool_flags(module: str) -> set[str]:
  """Flag names a tool defines (absl DEFINE_* or argparse add_argument) in its module or the
  shared CLI helpers."""
  names = set(ABSL_FLAGS)
  for path in (_module_file(module), REPO_ROOT / 'mlfun_jax' / 'core' / 'cli.py'):
    source = path.read_text(encoding='utf-8')
    names |= set(re.findall(r'DEFINE_\w+\(\s*["\'](\w+)["\']', source))
    names |= set(re.findall(r'add_argument\(\s*["\']--([\w-]+)["\']', source))
  return names


def test_pages_exist_and_readme_is_short():
  assert (REPO_ROOT / 'README.md').is_file()
  lines = (REPO_ROOT / 'README.md').read_text(encoding='utf-8').count('\n')
  assert lines <= 300, f'README.md has {lines} lines; at most 300'
  for family in ('classification', 'autoencoder', 'gan', 'char_rnn', 'adversarial', 'speech',
                 'translation', 'faces', 'core', 'api', 'architecture'):
    assert (REPO_ROOT / 'docs' / f'{family}.md').is_file(), family


def test_marks_are_known_and_listed(capsys):
  marked = [block for block in CODE_BLOCKS if block.needs]
  for block in ALL_BLOCKS:
    for need in block.needs:
      assert NEEDS.match(need), f'{block.name}: unknown mark "needs: {need}"'
    if block.needs:
      assert block.language in ('bash', 'python'), f'{block.name}: a mark on a {block.language} block'
  with capsys.disabled():
    print(f'\n{len(marked)} marked blocks (not run), {len(RUN_BLOCKS)} run:')
    for block in marked:
      print(f'  {block.name} [{block.language}] needs: {", ".join(block.needs)}')
  assert RUN_BLOCKS, 'no block is run'


def test_commands_live_in_fenced_blocks():
  """Indented code blocks escape these tests: commands go into ```bash fences."""
  command = re.compile(r'^ {4,}(\$ |\.venv/bin/|python3? -m |mlfun-[\w-]+ )')
  for page in PAGES:
    inside = False
    for number, line in enumerate(page.read_text(encoding='utf-8').splitlines(), 1):
      if FENCE.match(line) or line.rstrip() == '```':
        inside = not inside
      elif not inside:
        assert not command.match(line), f'{page.name}:{number}: a command outside a fenced block'


@pytest.mark.parametrize('block', RUN_BLOCKS, ids=lambda b: b.name)
def test_unmarked_block_runs(block, tmp_path):
  env = dict(os.environ)
  bin_dir = str(pathlib.Path(sys.executable).parent)
  env['PATH'] = bin_dir + os.pathsep + env.get('PATH', '')
  if block.language == 'python':
    script = tmp_path / 'example.py'
    script.write_text(block.code, encoding='utf-8')
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f'{block.name} failed:\n{result.stderr[-3000:]}'
    for key, patterns in EXPECTED_OUTPUT.items():
      if key in block.code:
        for pattern in patterns:
          assert re.search(pattern, result.stdout, re.MULTILINE), (
              f'{block.name}: output lacks /{pattern}/:\n{result.stdout}')
    return
  for command in shell_commands(block.code):
    words = command.split()
    words[0] = re.sub(r'^\.venv/bin/', '', words[0])
    command = ' '.join(words)
    assert any(p.match(command) for p in QUICK_COMMANDS), (
        f'{block.name}: "{command}" is not quick to run; mark the block '
        '(<!-- needs: ... --> on the line before its fence)')
    if words[0] in ('python', 'python3'):
      words[0] = sys.executable
    cwd = REPO_ROOT if 'docs/' in command else tmp_path
    result = subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, (
        f'{block.name}: "{command}" exited {result.returncode}:\n{result.stderr[-3000:]}')
    assert result.stdout.strip(), f'{block.name}: "{command}" printed nothing'


def _commands_of_tools() -> list[tuple[Block, str, list[str]]]:
  found = []
  for block in CODE_BLOCKS:
    if block.language != 'bash':
      continue
    for command in shell_commands(block.code):
      words = command.split()
      for i, word in enumerate(words):  # Also after `for ...; do`, `&&`, ...
        if _tool_name(word):
          end = next((j for j in range(i + 1, len(words)) if words[j] in ('&&', '||', ';', '|')),
                     len(words))
          found.append((block, _tool_name(word), words[i + 1:end]))
  return found


def test_every_tool_command_names_real_flags_configs_and_fields():
  from mlfun_jax.core import cli  # pylint: disable=import-outside-toplevel
  scripts = console_scripts()
  flags_of = {}
  problems = []
  for block, tool, args in _commands_of_tools():
    if tool not in scripts:
      problems.append(f'{block.name}: {tool} is not a console script of setup.py')
      continue
    if tool not in flags_of:
      flags_of[tool] = tool_flags(scripts[tool])
    config = None
    for arg in args:
      match = re.match(r'^--(no)?([\w-]+)(=.*)?$', arg)
      if match and match.group(2) == 'config' and match.group(3):
        spec = match.group(3)[1:]
        try:
          config = cli.load_config_file(spec)
        except Exception as e:  # pylint: disable=broad-except
          problems.append(f'{block.name}: {tool} --config={spec}: {e}')
    fields = dict(cli.flat_fields(config)) if config is not None else None
    for arg in args:
      if arg.startswith('--config.'):
        field = arg[len('--config.'):].split('=', 1)[0]
        if fields is not None and field not in fields:
          problems.append(f'{block.name}: {tool}: the config has no field {field}')
        continue
      if arg.startswith('--') and arg != '--':
        name = arg[2:].split('=', 1)[0]
        if name not in flags_of[tool] and not (name.startswith('no') and
                                               name[2:] in flags_of[tool]):
          problems.append(f'{block.name}: {tool} has no flag --{name}')
  assert not problems, '\n'.join(problems)


def test_generated_tables_match_the_code():
  sys.path.insert(0, str(REPO_ROOT / 'docs'))
  try:
    import tables  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.remove(str(REPO_ROOT / 'docs'))
  assert not tables.stale_blocks(), (
      f'stale generated tables: {tables.stale_blocks()}; run: python docs/tables.py')
  for family in ('classification', 'autoencoder', 'gan', 'char_rnn', 'speech', 'translation',
                 'faces'):
    text = (REPO_ROOT / 'docs' / f'{family}.md').read_text(encoding='utf-8')
    for kind in ('config-fields', 'config-files', 'api'):
      assert f'<!-- begin: {kind} {family} -->' in text, f'docs/{family}.md lacks its {kind} table'


def test_pictures_exist_and_are_small():
  picture = re.compile(r'!\[[^\]]*\]\(([^)]+\.png)\)')
  shown = set()
  for page in PAGES:
    for target in picture.findall(page.read_text(encoding='utf-8')):
      path = (page.parent / target).resolve()
      assert path.is_file(), f'{page.name}: missing picture {target}'
      shown.add(path)
  for path in sorted((REPO_ROOT / 'docs' / 'images').glob('*.png')):
    assert path.stat().st_size < PICTURE_LIMIT_BYTES, f'{path.name} is over 300 KB'
    assert path.resolve() in shown, f'{path.name} is shown by no page'


def test_links_between_pages_resolve():
  link = re.compile(r'\]\(((?!https?://|#)[^)#\s]+)(#[^)]*)?\)')
  for page in PAGES:
    for target, _ in link.findall(page.read_text(encoding='utf-8')):
      assert (page.parent / target).exists(), f'{page.name}: broken link {target}'


def test_no_page_names_a_development_machine():
  machine = re.compile(r'/work/|\.\./shared|/tmp/|/home/|/root/')
  for page in PAGES:
    for number, line in enumerate(page.read_text(encoding='utf-8').splitlines(), 1):
      assert not machine.search(line), f'{page.name}:{number}: names a local path: {line}'


def test_tables_have_as_many_cells_as_their_header():
  for page in PAGES:
    header = None
    inside = False
    for number, line in enumerate(page.read_text(encoding='utf-8').splitlines(), 1):
      if FENCE.match(line) or line.rstrip() == '```':
        inside = not inside
      if inside or not line.startswith('|'):
        header = None
        continue
      cells = len(re.split(r'(?<!\\)\|', line.strip())) - 2
      if header is None:
        header = cells
      assert cells == header, f'{page.name}:{number}: {cells} cells, the header has {header}'
