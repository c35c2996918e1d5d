#!/usr/bin/env bash
# Correctness cross-check of hubimg against PyTorch and ONNX Runtime on the three bench networks:
# generates the models (and their .npy weights) and the ONNX exports if missing, feeds one seeded
# batch to every engine and requires max abs error <= 1e-3 on the logits.
#
#   bench/check_peers.sh [extra check_outputs.py options, e.g. --batch 4 --seed 3]
#
# Environment: BUILD_DIR (default build), MODELS_DIR (default out/models), CHECK_DIR (default
# out/peers/check: inputs, outputs and check_outputs.json).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/peers/common.sh"

require_tools
require_peers
ensure_models
ensure_onnx
CHECK_DIR="${CHECK_DIR:-$ROOT/out/peers/check}"
exec "$PY" -W ignore "$PEERS/check_outputs.py" --models-dir "$MODELS_DIR" --onnx-dir "$ONNX_DIR" \
  --hubimg "$BUILD_DIR/hubimg" --work "$CHECK_DIR" "$@"
