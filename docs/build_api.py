"""Builds the HTML API reference of mlfun_jax from its docstrings with pdoc.

  pip install -e '.[docs]'            # pdoc
  python docs/build_api.py            # writes build/api/index.html (and one page per module)
  python docs/build_api.py --output_dir=DIR

Every module of the package is imported and documented: each package's public names (`__all__`)
and every module under it (task.py, model.py, data.py, ...), so research code finds the pieces the
families are built from. Left out: `mlfun_jax.experiments`, the command-line entry points, which
define absl flags at import (`mlfun-train --help` and the others document them). No module needs
TensorFlow or eSpeak NG to import.

Any warning while importing or rendering fails the build (exit status 1), except pdoc's notes that
it could not resolve a type annotation into a link: flax's `TrainState.opt_state` names a type
(`ArrayTree`) flax does not export, and a NamedTuple's annotations under
`from __future__ import annotations` cannot be resolved; pdoc then shows the annotation as text.
"""

import argparse
import pathlib
import pkgutil
import re
import sys
import warnings

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXCLUDED = ("mlfun_jax.experiments",)
# Warnings that do not fail the build: pdoc shows such an annotation as plain text.
TOLERATED = re.compile(r"^Error parsing type annotation .* Import of \w+ failed")


def module_specs() -> list[str]:
  """'mlfun_jax' plus every module pdoc would not reach from it (behind a package's __all__)."""
  import mlfun_jax  # pylint: disable=import-outside-toplevel
  from pdoc import extract  # pylint: disable=import-outside-toplevel
  reached = set(extract.walk_specs(["mlfun_jax"]))
  specs = ["mlfun_jax"]
  for info in pkgutil.walk_packages(mlfun_jax.__path__, "mlfun_jax."):
    if info.name.startswith(EXCLUDED) or info.name in reached:
      continue
    if info.ispkg:
      raise SystemExit(f"error: package {info.name} is not reached from mlfun_jax's __all__")
    specs.append(info.name)
  return [spec for spec in specs if not spec.startswith(EXCLUDED)]


def build(output_dir: pathlib.Path) -> list[str]:
  """Writes the reference to `output_dir`; returns the warnings that fail the build."""
  import pdoc  # pylint: disable=import-outside-toplevel
  pdoc.render.configure(docformat="google", footer_text="mlfun_jax",
                        search=True, show_source=True)
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    specs = module_specs()
    pdoc.pdoc(*specs, "!" + EXCLUDED[0], output_directory=output_dir)
  return [f"{w.category.__name__}: {w.message}" for w in caught
          if not TOLERATED.match(str(w.message))]


def main(argv: list[str]) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--output_dir", default=str(ROOT / "build" / "api"),
                      help="folder for the HTML pages (default: build/api)")
  args = parser.parse_args(argv)
  output_dir = pathlib.Path(args.output_dir)
  failures = build(output_dir)
  for failure in failures:
    print(f"error: {failure}", file=sys.stderr)
  if failures:
    return 1
  pages = sorted(output_dir.rglob("*.html"))
  print(f"API reference: {len(pages)} pages in {output_dir} (open {output_dir / 'index.html'})")
  return 0


if __name__ == "__main__":
  sys.path.insert(0, str(ROOT))
  sys.exit(main(sys.argv[1:]))
