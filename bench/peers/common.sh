# shellcheck shell=bash
# Shared by bench/check_peers.sh and bench/run_peers.sh (sourced, not run).
# Expects ROOT (the repository). Honours BUILD_DIR and MODELS_DIR.

PY=/usr/bin/python3  # Debian's python, the one with python3-torch (not a pyenv one on PATH)
BUILD_DIR="${BUILD_DIR:-$ROOT/build}"
MODELS_DIR="${MODELS_DIR:-$ROOT/out/models}"
ONNX_DIR="$MODELS_DIR/onnx"
PEERS="$ROOT/bench/peers"
BENCH_MODELS=(mobilenet_v2 efficientnet_b0 resnet50)

die() {
  echo "${0##*/}: $*" >&2
  exit 1
}

require_tools() {
  local t
  for t in hubimg bench/make_bench_models bench/fma_peak; do
    [ -x "$BUILD_DIR/$t" ] || die "$BUILD_DIR/$t is missing: build first (cmake -G Ninja -B build \
-DCMAKE_BUILD_TYPE=Release && ninja -C build -j2), or set BUILD_DIR"
  done
}

require_peers() {
  [ -x "$PY" ] || die "$PY is missing (bench/setup_peers.sh installs Debian's python3 packages)"
  "$PY" -c 'import numpy, torch, onnx' 2>/dev/null ||
    die "$PY cannot import numpy/torch/onnx: run bench/setup_peers.sh"
  command -v node >/dev/null || die "node is missing: run bench/setup_peers.sh"
  [ -f "$PEERS/node_modules/onnxruntime-node/package.json" ] ||
    die "onnxruntime-node is not installed in $PEERS/node_modules: run bench/setup_peers.sh"
}

# Generates each model (with its .npy dump) when missing or older than the generator binary.
ensure_models() {
  local m dir
  for m in "${BENCH_MODELS[@]}"; do
    dir="$MODELS_DIR/$m"
    if [ ! -f "$dir/weights_manifest.json" ] || [ ! -d "$dir/npy" ] ||
      [ "$BUILD_DIR/bench/make_bench_models" -nt "$dir/weights_manifest.json" ]; then
      echo "generating $dir"
      rm -rf "$dir"
      "$BUILD_DIR/bench/make_bench_models" "$MODELS_DIR" --only "$m" --dump-npy >/dev/null
    fi
  done
}

# Exports each model to ONNX when missing or older than its manifest.
ensure_onnx() {
  local m out
  mkdir -p "$ONNX_DIR"
  for m in "${BENCH_MODELS[@]}"; do
    out="$ONNX_DIR/$m.onnx"
    if [ ! -f "$out" ] || [ "$MODELS_DIR/$m/weights_manifest.json" -nt "$out" ]; then
      "$PY" -W ignore "$PEERS/export_onnx.py" "$MODELS_DIR/$m" "$out"
    fi
  done
}
