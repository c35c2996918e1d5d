#!/usr/bin/env bash
# One SGD-momentum step and one Adam step of hubimg's consumer model against PyTorch doing the
# same step (bench/optimizer_step.cc writes the step's tensors, bench/peers/check_optimizer_step.py
# redoes it in PyTorch and compares; see bench/README.md, "Optimizer step against PyTorch").
#
#   bench/check_optimizer_step.sh [extra check_optimizer_step.py options, e.g. --tol 1e-4
#                                  --driver-args "--seed 2"]
#
# Environment: PEER_PYTHON (default /usr/bin/python3), BUILD_DIR (default build), WORK (default out/peers/optimizer_step),
# SKIP_WITHOUT_TORCH=1: exit 77 with a message (ctest's skip code) instead of failing when
# /usr/bin/python3 cannot import torch. Exit status 1 when a check fails.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PEER_PYTHON:-/usr/bin/python3}"  # Debian's python with python3-torch
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
WORK="${WORK:-$ROOT/out/peers/optimizer_step}"
if ! [ -x "$PY" ] || ! "$PY" -c 'import numpy, torch' 2>/dev/null; then
  msg="$PY cannot import numpy and torch (bench/setup_peers.sh installs python3-torch)"
  if [ "${SKIP_WITHOUT_TORCH:-0}" = 1 ]; then
    echo "SKIPPED: $msg: the PyTorch optimizer-step comparison does not run"
    exit 77
  fi
  echo "${0##*/}: $msg" >&2
  exit 1
fi
driver="$BUILD_DIR/bench/optimizer_step"
[ -x "$driver" ] || { echo "${0##*/}: $driver is missing: build first" >&2; exit 1; }
mkdir -p "$WORK"
exec "$PY" -W ignore "$ROOT/bench/peers/check_optimizer_step.py" --work "$WORK" \
  --driver "$driver" "$@"
