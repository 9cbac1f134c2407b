#!/usr/bin/env bash
# What a user's `pip install` gets: builds the wheel and the sdist of the committed tree, installs the
# wheel into a fresh virtual environment outside the repository, prints the environment's size, and
# from another folder imports mlfun_jax.experiments.train, finds the configs and trains cnn_mnist for
# 5 steps with the console script. Takes a few minutes (the download of the dependencies, unless
# pip's cache has them). Too slow for the test suite; run it by hand after changing setup.py:
#   bash benchmarks/wheel_install.sh [WORK_DIR]      (default: a new temporary folder)
# Environment: PYTHON (default python3, >= 3.11), PIP_INSTALL_ARGS (more `pip install` arguments).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
python=${PYTHON:-python3}
mkdir -p "$work/src" "$work/dist" "$work/elsewhere"
work=$(cd "$work" && pwd)

echo "== build (git archive HEAD: commit first) in $work"
git -C "$repo" archive HEAD | tar -x -C "$work/src"
"$python" -m pip wheel --quiet --no-deps "$work/src" -w "$work/dist"
(cd "$work/src" && "$python" setup.py --quiet sdist --dist-dir "$work/dist" 2>/dev/null) ||
  echo "(no sdist: setuptools is not importable by $python)"
wheel=$(ls "$work"/dist/mlfun_jax-*.whl)
"$python" - "$wheel" "$work/dist" <<'PY'
import glob, sys, tarfile, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for wanted in ("dist-info/licenses/LICENSE", "mlfun_jax/experiments/train.py",
               "mlfun_jax/experiments/configs/cnn_mnist.py"):
  assert any(n.endswith(wanted) for n in names), f"wheel lacks {wanted}"
print("wheel:", sys.argv[1].rsplit("/", 1)[-1], f"({len(names)} files) has LICENSE, "
      "mlfun_jax/experiments and its configs")
for sdist in glob.glob(sys.argv[2] + "/mlfun_jax-*.tar.gz"):
  members = tarfile.open(sdist).getnames()
  assert any(m.endswith("/LICENSE") for m in members), "sdist lacks LICENSE"
  print("sdist:", sdist.rsplit("/", 1)[-1], "has LICENSE")
PY

echo "== fresh virtual environment, pip install the wheel (default extras only)"
"$python" -m venv "$work/venv"
# shellcheck disable=SC2086
"$work/venv/bin/pip" install --quiet ${PIP_INSTALL_ARGS:-} "$wheel"
echo "size: $(du -sh "$work/venv" | cut -f1) ($(du -sm "$work/venv" | cut -f1) MiB)"
"$work/venv/bin/pip" list 2>/dev/null | grep -i -E '^(scikit-image|tensorflow|pyarrow|espeak)' &&
  { echo "error: an optional package is in the default install" >&2; exit 1; }

echo "== from $work/elsewhere"
cd "$work/elsewhere"
"$work/venv/bin/python" -c "
import mlfun_jax.experiments.train as train, mlfun_jax.experiments.configs as configs
print('import mlfun_jax.experiments.train:', train.__file__)
print('configs:', configs.__path__[0])"
"$work/venv/bin/mlfun-train" --config=cnn_mnist --help | tail -n 3
"$work/venv/bin/mlfun-train" --config=cnn_mnist --workdir=W --config.num_steps=5
ls W
