#!/usr/bin/env bash
# One process on all local devices (on CPU: one XLA device per core).
#   launch/local.sh experiments/configs/cnn_mnist.py workdirs/cnn_mnist [--config.field=value ...]
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG_FILE WORKDIR [--config.field=value ...]" >&2
  exit 2
fi
config=$1 workdir=$2
shift 2
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" -m experiments.train --config="$config" --workdir="$workdir" "$@"
