"""Writes the generated tables of the docs pages: config fields, config files and library API.

Each family page holds three generated blocks between HTML comments:

  <!-- begin: config-fields FAMILY -->   field | default | comment, from the family's `defaults()`
                                         and the comments beside the fields in its config.py
  <!-- begin: config-files FAMILY -->    each experiments/configs/*.py of the family and the fields
                                         it sets to other values than `defaults()`
  <!-- begin: api FAMILY -->             each public name of `mlfun_jax.FAMILY.__all__` with the
                                         first sentence of its docstring
  <!-- end -->

  python docs/tables.py           rewrite the blocks of docs/*.md
  python docs/tables.py --check   exit status 1 and the names of the stale blocks, if any

tests/core/test_docs.py runs the check, so the tables cannot drift from the code.
"""

import ast
import importlib
import importlib.util
import inspect
import io
import os
import pathlib
import re
import sys
import tokenize
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONFIGS = ROOT / "experiments" / "configs"

# Config modules whose field comments a family's defaults() inherits, in the order they apply.
SHARED_CONFIG_SOURCES = ("mlfun_jax/core/config.py", "mlfun_jax/data/config.py")

BLOCK = re.compile(r"(<!-- begin: (?P<kind>[a-z-]+) (?P<name>[a-z_]+) -->\n)(?P<body>.*?)"
                   r"(<!-- end -->)", re.DOTALL)

# Config defaults that read the environment are shown with the variable's name, not this machine's.
DATA_DIR_PLACEHOLDER = "$MLFUN_DATA_DIR"


def _attribute_chain(node: ast.AST) -> list[str] | None:
  names = []
  while isinstance(node, ast.Attribute):
    names.append(node.attr)
    node = node.value
  if not isinstance(node, ast.Name):
    return None
  return [node.id] + names[::-1]


def field_comments(path: pathlib.Path) -> dict[str, str]:
  """{key: comment} of every `root.a.b = value` assignment in a config source file.

  The key drops a root named `config` ("model.name") and keeps any other root ("optimizer.name"
  for `optimizer.name = ...` inside `optimizer_defaults()`). The comment is the one at the end of
  the assignment's lines, else the block of comment lines right above it.
  """
  source = path.read_text(encoding="utf-8")
  lines = source.splitlines()
  inline = {}
  for token in tokenize.generate_tokens(io.StringIO(source).readline):
    if token.type == tokenize.COMMENT:
      row = token.start[0]
      if lines[row - 1].strip().startswith("#"):
        continue
      inline[row] = token.string.lstrip("#").strip()
  comments = {}
  for node in ast.walk(ast.parse(source)):
    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
      continue
    chain = _attribute_chain(node.targets[0])
    if not chain or len(chain) < 2:
      continue
    key = ".".join(chain[1:] if chain[0] == "config" else chain)
    comment = next((inline[row] for row in range(node.lineno, node.end_lineno + 1)
                    if row in inline), "")
    if not comment:
      above = []
      row = node.lineno - 1
      while row >= 1 and lines[row - 1].strip().startswith("#"):
        above.insert(0, lines[row - 1].strip().lstrip("#").strip())
        row -= 1
      comment = " ".join(above)
    if comment or key not in comments:
      comments[key] = comment
  return comments


def _comment_for(path: str, comments: dict[str, str]) -> str:
  if comments.get(path):
    return comments[path]
  parent, _, leaf = path.rpartition(".")
  for key, comment in comments.items():  # `optimizer.b1` documents `generator_optimizer.b1`.
    key_parent, _, key_leaf = key.rpartition(".")
    if comment and key_leaf == leaf and key_parent and parent.endswith(key_parent):
      return comment
  return ""


def _flatten(config, prefix: str = "") -> dict[str, Any]:
  flat = {}
  for name in config.keys():
    value = config[name]
    path = f"{prefix}{name}"
    if hasattr(value, "keys") and hasattr(value, "to_dict"):
      flat.update(_flatten(value, path + "."))
    else:
      flat[path] = value
  return flat


def _format_value(value: Any) -> str:
  if isinstance(value, str):
    text = repr(value)
  elif isinstance(value, list):
    text = repr(tuple(value))
  else:
    text = repr(value)
  return "`" + text.replace("|", "\\|") + "`"


def _cell(text: str) -> str:
  return text.replace("|", "\\|").replace("\n", " ")


class _DataDirPlaceholder:
  """Sets MLFUN_DATA_DIR to its own name while configs are built, so tables name no machine."""

  def __enter__(self):
    self._saved = os.environ.get("MLFUN_DATA_DIR")
    os.environ["MLFUN_DATA_DIR"] = DATA_DIR_PLACEHOLDER

  def __exit__(self, *unused):
    if self._saved is None:
      del os.environ["MLFUN_DATA_DIR"]
    else:
      os.environ["MLFUN_DATA_DIR"] = self._saved


def family_defaults(family: str) -> dict[str, Any]:
  """{dotted field: default} of `mlfun_jax.<family>.config.defaults()`."""
  with _DataDirPlaceholder():
    module = importlib.import_module(f"mlfun_jax.{family}.config")
    return _flatten(module.defaults())


def config_fields_table(family: str) -> str:
  """Markdown table: field | default | comment of every field of the family's defaults()."""
  comments = {}
  for source in SHARED_CONFIG_SOURCES + (f"mlfun_jax/{family}/config.py",):
    for key, comment in field_comments(ROOT / source).items():
      if comment or key not in comments:
        comments[key] = comment
  rows = ["| field | default | comment |", "|---|---|---|"]
  for path, value in family_defaults(family).items():
    rows.append(f"| `{path}` | {_format_value(value)} | {_cell(_comment_for(path, comments))} |")
  return "\n".join(rows) + "\n"


def _config_files() -> list[pathlib.Path]:
  return sorted(p for p in CONFIGS.glob("*.py") if p.name != "__init__.py")


def _load_config(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(f"_docs_config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def config_files_table(family: str) -> str:
  """Markdown table: each config file of the family and the fields it sets differently."""
  defaults = family_defaults(family)
  rows = ["| config | sets (other than `defaults()`) |", "|---|---|"]
  with _DataDirPlaceholder():
    for path in _config_files():
      config = _load_config(path)
      if config.task != family:
        continue
      flat = _flatten(config)
      changed = [f"`{name}={_format_value(value)[1:-1]}`" for name, value in flat.items()
                 if name not in defaults or defaults[name] != value]
      rows.append(f"| `{path.stem}` | {', '.join(changed) or '(the defaults as they are)'} |")
  return "\n".join(rows) + "\n"


ABBREVIATIONS = ("et al.", "e.g.", "i.e.", "etc.", "vs.")


def _first_sentence(doc: str) -> str:
  paragraph = " ".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
  for match in re.finditer(r"\.(\s|$)", paragraph):
    sentence = paragraph[:match.start() + 1]
    if not sentence.endswith(ABBREVIATIONS):
      return sentence
  return paragraph


def api_table(family: str) -> str:
  """Markdown table: each name of `mlfun_jax.<family>.__all__` with its docstring's first
  sentence."""
  module = importlib.import_module(f"mlfun_jax.{family}")
  rows = ["| name | what it is |", "|---|---|"]
  for name in module.__all__:
    obj = getattr(module, name)
    if name == "FIELDS_ADDED_LATER":
      what = ("dict: config fields added after older runs were saved -> the value those runs had "
              "(filled in when a saved config is read back).")
    elif inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismodule(obj):
      what = _first_sentence(inspect.getdoc(obj) or "")
      kind = "class" if inspect.isclass(obj) else "function"
      what = f"{kind}: {what}"
    else:
      what = f"{type(obj).__name__}: `{obj!r}`"
    rows.append(f"| `{name}` | {_cell(what)} |")
  return "\n".join(rows) + "\n"


GENERATORS = {"config-fields": config_fields_table, "config-files": config_files_table,
              "api": api_table}


def rewritten(text: str) -> str:
  """`text` with every generated block made anew."""
  def replace(match):
    body = GENERATORS[match.group("kind")](match.group("name"))
    return match.group(1) + body + match.group(5)
  return BLOCK.sub(replace, text)


def stale_blocks(pages=None) -> list[str]:
  """'page: kind name' of each generated block that differs from what the code gives now."""
  stale = []
  for page in pages or sorted(DOCS.glob("*.md")):
    text = page.read_text(encoding="utf-8")
    for match in BLOCK.finditer(text):
      fresh = GENERATORS[match.group("kind")](match.group("name"))
      if match.group("body") != fresh:
        stale.append(f"{page.name}: {match.group('kind')} {match.group('name')}")
  return stale


def main(argv: list[str]) -> int:
  if "--check" in argv:
    stale = stale_blocks()
    for line in stale:
      print(f"stale generated table: {line} (run: python docs/tables.py)")
    return 1 if stale else 0
  for page in sorted(DOCS.glob("*.md")):
    text = page.read_text(encoding="utf-8")
    new = rewritten(text)
    if new != text:
      page.write_text(new, encoding="utf-8")
      print(f"rewrote {page.relative_to(ROOT)}")
  return 0


if __name__ == "__main__":
  sys.path.insert(0, str(ROOT))
  sys.exit(main(sys.argv[1:]))
