#!/usr/bin/env bash
# hubimg's gradients against PyTorch autograd on the three bench networks (bench/peers/check_grads.py
# per network): one seeded batch, training-mode batch norm (INFERENCE=1: moving statistics too).
#
#   bench/check_grads.sh [extra check_grads.py options, e.g. --batch 3 --seed 1]
#
# Environment: BUILD_DIR (default build), MODELS_DIR (default out/models), GRADS_DIR (default
# out/peers/grads). Exit status 1 when a network fails the criterion (see check_grads.py).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/peers/common.sh"

require_tools
[ -x "$PY" ] && "$PY" -c 'import numpy, torch' 2>/dev/null ||
  die "$PY cannot import numpy/torch: run bench/setup_peers.sh"
ensure_models
GRADS_DIR="${GRADS_DIR:-$ROOT/out/peers/grads}"
modes=(train)
[ "${INFERENCE:-0}" = 1 ] && modes+=(inference)
status=0
summary=()
for mode in "${modes[@]}"; do
  for m in "${BENCH_MODELS[@]}"; do
    extra=()
    [ "$mode" = inference ] && extra=(--inference)
    if "$PY" -W ignore "$PEERS/check_grads.py" "$MODELS_DIR" "$m" --work "$GRADS_DIR/$m/$mode" \
      --hubimg "$BUILD_DIR/hubimg" --batch 2 "${extra[@]}" "$@"; then
      summary+=("$m $mode: PASS")
    else
      summary+=("$m $mode: FAIL")
      status=1
    fi
  done
done
printf '%s\n' "${summary[@]}"
exit $status
