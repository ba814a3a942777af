#!/usr/bin/env bash
# The one entry point of jaxvision; run the same command on every host of a cluster.
#
#   ./launch.sh                                   the default experiment (quickstart)
#   ./launch.sh test [pytest args]                the test suite on 4 simulated CPU devices
#   ./launch.sh bench [benchmark args]            the benchmarks (benchmarks/run.py)
#   ./launch.sh EXPERIMENT.py[:variant] [--workdir DIR] [--mode M] [--config.key=value ...]
#
# On first use, and whenever pyproject.toml or constraints.txt changes, it makes .venv and
# installs jaxvision with its dev extra at the tested versions (constraints.txt).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${JAXVISION_VENV:-$root/.venv}"
say() { echo "[launch] $*" >&2; }

find_python() {
  local candidates=()
  [ -n "${JAXVISION_PYTHON:-}" ] && candidates+=("$JAXVISION_PYTHON")
  candidates+=(python3.11 python3.12 python3 python)
  for py in "${candidates[@]}"; do
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys, venv; sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
      command -v "$py"
      return 0
    fi
  done
  return 1
}

# ensure_venv EXTRAS: (re)installs jaxvision[EXTRAS] when the venv is missing, or when
# pyproject.toml / constraints.txt changed since those extras were last installed.
ensure_venv() {
  local extras="$1" stamp="$venv/.jaxvision-stamp-${1//,/-}" want
  want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -d' ' -f1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  local py
  if ! py="$(find_python)"; then
    say "No Python 3.11 or 3.12 with the venv module was found: install one (e.g. 'pyenv install 3.11') or point JAXVISION_PYTHON at it."
    exit 1
  fi
  if [ ! -x "$venv/bin/python" ]; then
    say "[1/3] creating $venv with $("$py" --version 2>&1) ($py)"
    "$py" -m venv "$venv"
  else
    say "[1/3] updating $venv for jaxvision[$extras]"
  fi
  say "[2/3] upgrading pip"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  say "[3/3] installing jaxvision[$extras] and its dependencies (first time: a few minutes)"
  "$venv/bin/python" -m pip install -c "$root/constraints.txt" -e "$root[$extras]" >&2 || {
    say "Installing the dependencies failed: run '$venv/bin/python -m pip install -c constraints.txt -e .[$extras]' to see pip's full error."
    exit 1
  }
  echo "$want" >"$stamp"
  say "ready"
}

# JAXVISION_ONEDNN=1 runs CPU convolutions in oneDNN (jaxvision/models/onednn_conv.py): its wheels come too.
case "${JAXVISION_ONEDNN:-0}" in
  0) onednn="" ;;
  *) onednn=",onednn" ;;
esac
ensure_venv "dev$onednn"
export PATH="$venv/bin:$PATH"
# TensorFlow only feeds data (jaxvision.data hides the GPUs from it); keep its logs quiet.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
# glibc's malloc asks for transparent huge pages (1.04-1.26x on InceptionV3 and the paper-B models but
# the deep CNN, 0.94x within its spread: benchmarks/RESULTS.md "Huge pages"); a hugetlb value the user gives wins.
case ":${GLIBC_TUNABLES:-}:" in
  *:glibc.malloc.hugetlb=*) ;;
  *) export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1" ;;
esac
cd "$root"

cmd="${1:-experiments/quickstart.py}"
case "$cmd" in
  test)
    shift
    export XLA_FLAGS="--xla_force_host_platform_device_count=4 ${XLA_FLAGS:-}"
    exec python -m pytest "$@"
    ;;
  bench)
    shift
    ensure_venv dev,bench
    exec python -m benchmarks.run "$@"
    ;;
  -h | --help | help)
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *.py | *.py:*)
    [ $# -gt 0 ] && shift
    exec python -m jaxvision.main --config "$cmd" "$@"
    ;;
  *)
    say "Unknown command '$cmd': use 'test', 'bench', or an experiment file such as experiments/quickstart.py[:variant] (see ./launch.sh --help)."
    exit 2
    ;;
esac
