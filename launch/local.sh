#!/usr/bin/env bash
# One process on all local devices (on CPU: one XLA device per core).
#   launch/local.sh cnn_mnist workdirs/cnn_mnist [--config.field=value ...]  (CONFIG: name or path)
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG WORKDIR [--config.field=value ...]" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m mlfun_jax.experiments.train --config="$config" --workdir="$workdir" \
  "$@"
