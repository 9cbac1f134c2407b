#!/usr/bin/env bash
# N processes on this machine joined into one JAX run (jax.distributed, gloo CPU collectives), each
# with its own local devices and its own share of every batch: the way one job spans many hosts.
#   launch/multiprocess.sh 2 cnn_mnist workdirs/mp --cpu_devices=4 \
#       [--config.field=value ...]
# Process i logs to WORKDIR/logs/process_i.log; process 0's log is also shown here. SIGTERM/SIGINT
# are passed to every process (each checkpoints and exits 0; rerunning the command resumes). When a
# process fails, the others get SIGTERM, then SIGKILL after $MLFUN_KILL_GRACE_S seconds (default 10:
# they may be stuck in a collective with the dead one); the exit status is the first failure's.
# Environment: PYTHON (default python3), MLFUN_COORDINATOR_PORT (default: a free port).
set -uo pipefail
if [ $# -lt 3 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 NUM_PROCESSES CONFIG WORKDIR [--cpu_devices=K] [--config.field=value ...]" >&2
  exit 2
fi
num_processes=$1 config=$2 workdir=$3
shift 3
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
port=${MLFUN_COORDINATOR_PORT:-$("$python" -c \
  'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
mkdir -p "$workdir/logs"
: >"$workdir/logs/process_0.log"

pids=()
for ((i = 0; i < num_processes; i++)); do
  "$python" -m mlfun_jax.experiments.train --config="$config" --workdir="$workdir" \
    --coordinator_address="127.0.0.1:$port" --num_processes="$num_processes" --process_id="$i" \
    "$@" >"$workdir/logs/process_$i.log" 2>&1 &
  pids+=($!)
done
tail -n +1 -f "$workdir/logs/process_0.log" &
tail_pid=$!

signal_all() {
  local pid
  for pid in "${pids[@]}"; do [ -n "$pid" ] && kill -s "$1" "$pid" 2>/dev/null; done
}
trap 'signal_all TERM' TERM
trap 'signal_all INT' INT

status=0
failed_at=0
running=$num_processes
while ((running > 0)); do
  sleep 0.2
  for i in "${!pids[@]}"; do
    pid=${pids[$i]}
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null && continue
    wait "$pid"
    rc=$?
    pids[$i]=""
    running=$((running - 1))
    if ((rc != 0 && status == 0)); then
      status=$rc
      failed_at=$SECONDS
      echo "multiprocess.sh: process $i exited with status $rc (log: $workdir/logs/process_$i.log)" >&2
      tail -n 5 "$workdir/logs/process_$i.log" >&2
      signal_all TERM
    fi
  done
  if ((status != 0 && running > 0 && SECONDS - failed_at >= ${MLFUN_KILL_GRACE_S:-10})); then
    signal_all KILL
  fi
done
kill "$tail_pid" 2>/dev/null
wait "$tail_pid" 2>/dev/null
exit "$status"
