#!/usr/bin/env bash
# Runs an experiment on every host of a Cloud TPU VM slice with gcloud (see launch/README.md):
# create the VM, put this project on every worker, install it, train on all workers at once.
#   launch/tpu_vm.sh [--dry_run] --name=NAME --zone=ZONE [--project=PROJECT] [--accelerator_type=v4-8]
#       [--version=RUNTIME] [--spot] [--skip_create] [--install=copy|git] [--git_url=URL]
#       [--workdir=gs://BUCKET/DIR] [--env=KEY=VALUE ...] [--delete] CONFIG [--config.field=value ...]
# CONFIG: a config file path relative to the repository root, or a config's name (cnn_mnist).
# Each gcloud command is printed with a leading '+ ' before it runs; --dry_run only prints them.
set -euo pipefail

usage="usage: $0 [--dry_run] --name=NAME --zone=ZONE [--project=PROJECT] [--accelerator_type=v4-8]\
 [--version=RUNTIME] [--spot] [--skip_create] [--install=copy|git] [--git_url=URL] [--workdir=DIR]\
 [--env=KEY=VALUE ...] [--delete] CONFIG [--config.field=value ...]"
fail() { echo "error: $*" >&2; exit 2; }

dry_run=0 name='' zone='' project='' accelerator=v4-8 version='' spot=0 skip_create=0
install=copy git_url='' workdir='' delete=0 envs=()
while [ $# -gt 0 ]; do
  case $1 in
    --dry_run) dry_run=1 ;;
    --name=*) name=${1#*=} ;;
    --zone=*) zone=${1#*=} ;;
    --project=*) project=${1#*=} ;;
    --accelerator_type=*) accelerator=${1#*=} ;;
    --version=*) version=${1#*=} ;;
    --spot) spot=1 ;;
    --skip_create) skip_create=1 ;;
    --install=copy|--install=git) install=${1#*=} ;;
    --git_url=*) git_url=${1#*=} ;;
    --workdir=*) workdir=${1#*=} ;;
    --env=*)
      [[ ${1#*=} =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || fail "--env wants KEY=VALUE, got '${1#*=}'"
      envs+=("${1#*=}") ;;
    --delete) delete=1 ;;
    -h|--help) echo "$usage"; exit 0 ;;
    -*) fail "unknown flag '$1' (flags go before CONFIG; $usage)" ;;
    *) break ;;
  esac
  shift
done
[ -n "$name" ] || fail "--name=NAME is required"
[ -n "$zone" ] || fail "--zone=ZONE is required"
[ $# -ge 1 ] || fail "CONFIG is required"
config=$1
shift  # The rest goes to mlfun_jax.experiments.train unchanged.

cd "$(dirname "$0")/.."
# A config's name (cnn_mnist) stands for its file in experiments/configs/.
if [[ $config != */* && $config != *.py && -f experiments/configs/$config.py ]]; then
  config=experiments/configs/$config.py
fi
[ -f "$config" ] || fail "config file '$config' not found (give it relative to the repository root)"

# Accelerator family -> default runtime; the number after the dash is the count of TensorCores (v2-v4,
# v5p) or chips (v5e, v6e); above 8 the slice has several hosts.
if [[ $accelerator == v5e-* ]]; then accelerator=v5litepod-${accelerator#v5e-}; fi
cores=${accelerator##*-}
[[ $accelerator == v*-* && $cores =~ ^[0-9]+$ ]] || fail "bad --accelerator_type '$accelerator'"
if [ -z "$version" ]; then
  case $accelerator in
    v2-*|v3-*|v4-*) version=tpu-ubuntu2204-base ;;
    v5litepod-*) version=v2-alpha-tpuv5-lite ;;
    v5p-*) version=v2-alpha-tpuv5 ;;
    v6e-*) version=v2-alpha-tpuv6e ;;
    *) fail "no default runtime for '$accelerator'; pass --version" ;;
  esac
fi
workdir=${workdir:-workdirs/$(basename "$config" .py)}
if [ "$cores" -gt 8 ] && [[ $workdir != gs://* ]]; then
  fail "$accelerator has several hosts: --workdir must be a gs:// path all of them share, not '$workdir'"
fi
if [ "$install" = git ]; then
  git_url=${git_url:-$(git config --get remote.origin.url || true)}
  [ -n "$git_url" ] || fail "--install=git needs --git_url=URL (no git remote 'origin' here)"
elif ! git cat-file -e "HEAD:./$config" 2>/dev/null; then
  fail "config '$config' is not committed; --install=copy ships the git HEAD"
elif [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "warning: uncommitted changes are not copied; --install=copy ships the git HEAD" >&2
fi
if [ "$dry_run" = 0 ]; then
  command -v gcloud >/dev/null || fail "gcloud not found (install the Google Cloud CLI, or use --dry_run)"
fi

# Shows one command (words quoted only where needed) and runs it unless --dry_run.
run() {
  local word flag line='+'
  for word in "$@"; do
    flag=''
    if [[ $word =~ ^--[a-z-]+= ]]; then flag=${BASH_REMATCH[0]} word=${word#*=}; fi
    if [[ ! $word =~ ^[A-Za-z0-9_./:=@%+,-]*$ ]]; then word="'${word//\'/\'\\\'\'}'"; fi
    line+=" $flag$word"
  done
  echo "$line"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}
where=(--zone="$zone")
if [ -n "$project" ]; then where+=(--project="$project"); fi
tpu_vm() {  # tpu_vm VERB ARGS...: a `gcloud compute tpus tpu-vm` command for this VM.
  local verb=$1
  shift
  run gcloud compute tpus tpu-vm "$verb" "$@" "${where[@]}"
}
on_all_workers() { tpu_vm ssh "$name" --worker=all --command="$1"; }

tarball=${TMPDIR:-/tmp}/mlfun_jax-$$.tar.gz
cleanup() {
  local status=$?
  rm -f "$tarball"
  if [ "$delete" = 1 ] && [ "$delete_armed" = 1 ]; then
    tpu_vm delete "$name" --quiet || echo "error: could not delete TPU VM '$name'; delete it by hand" >&2
  fi
  exit "$status"
}
delete_armed=0  # Never delete a VM of the same name that this run failed to create.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# (a) The TPU VM.
if [ "$skip_create" = 0 ]; then
  create=(--accelerator-type="$accelerator" --version="$version")
  if [ "$spot" = 1 ]; then create+=(--spot); fi
  tpu_vm create "$name" "${create[@]}"
fi
delete_armed=1

# (b) The project, a Python >= 3.11 virtual environment and the packages, on every worker.
if [ "$install" = copy ]; then
  run git archive --format=tar.gz -o "$tarball" HEAD
  tpu_vm scp "$tarball" "$name:mlfun_jax.tar.gz" --worker=all
  on_all_workers 'set -e; mkdir -p ~/mlfun_jax; tar -xzf ~/mlfun_jax.tar.gz -C ~/mlfun_jax; rm ~/mlfun_jax.tar.gz'
else
  url=$(printf %q "$git_url")
  on_all_workers "set -e; if [ -d ~/mlfun_jax/.git ]; then git -C ~/mlfun_jax pull --ff-only;\
 else git clone $url ~/mlfun_jax; fi"
fi
extras=''
if [[ $workdir == gs://* || " ${envs[*]-} " == *=gs://* ]]; then extras=' gcsfs google-cloud-storage'; fi
on_all_workers "set -e; cd ~/mlfun_jax; if [ ! -x ~/mlfun_jax_venv/bin/python ]; then py=python3;\
 python3 -c \"import sys; sys.exit(sys.version_info < (3, 11))\" || py=python3.11;\
 sudo apt-get -qq update; sudo DEBIAN_FRONTEND=noninteractive apt-get -qq install -y \$py-venv;\
 \$py -m venv ~/mlfun_jax_venv; fi; pip=~/mlfun_jax_venv/bin/pip; \$pip install -q -U pip;\
 \$pip install -q -U \"jax[tpu]\"; \$pip install -q -e .[tfds]$extras"

# (c) Train on all workers at once; JAX finds the coordinator and process ids on a TPU VM itself.
exports=''
for kv in "${envs[@]+"${envs[@]}"}"; do exports+="export $(printf %q "$kv"); "; done
train="$(printf '%q ' --config="$config" --workdir="$workdir" "$@")"
on_all_workers "set -o pipefail; cd ~/mlfun_jax; mkdir -p ~/mlfun_jax_logs; ${exports}\
~/mlfun_jax_venv/bin/python -m mlfun_jax.experiments.train ${train}2>&1 | tee -a ~/mlfun_jax_logs/train.log"
# (d) --delete: the EXIT trap deletes the VM, after a failure too.
