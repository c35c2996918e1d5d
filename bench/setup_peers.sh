#!/usr/bin/env bash
# Installs the peer engines for bench/run_peers.sh: Debian's PyTorch, torchvision and onnx (for
# /usr/bin/python3), and onnxruntime-node (npm, pinned by bench/peers/package-lock.json) under
# bench/peers/node_modules. Idempotent. Kept apart from scripts/setup.sh so that building and
# testing hubimg does not pull in PyTorch.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# libopenblas0-openmp: Debian's torch calls the system BLAS (libblas.so.3 alternative) for Linear
# and for the small convolutions it does not hand to oneDNN; with the reference BLAS that
# alternative otherwise points to, eager PyTorch is several times slower. Installing it makes
# OpenBLAS the machine's libblas.so.3 (Debian's alternatives pick it by priority).
packages=(python3-numpy python3-torch python3-torchvision python3-onnx nodejs libopenblas0-openmp)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
command -v npm >/dev/null || {
  echo "setup_peers: npm is missing (Debian: apt-get install npm, or a nodejs that bundles it)" >&2
  exit 1
}

# onnxruntime-node bundles the CPU library for linux/x64; its postinstall step would only fetch
# optional GPU binaries from outside the npm registry, so it is skipped.
if [ ! -f "$here/peers/node_modules/onnxruntime-node/package.json" ]; then
  (cd "$here/peers" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund)
fi
/usr/bin/python3 -c 'import torch, onnx, numpy' ||
  { echo "setup_peers: /usr/bin/python3 cannot import torch/onnx/numpy" >&2; exit 1; }
node -e "require('$here/peers/node_modules/onnxruntime-node')" ||
  { echo "setup_peers: onnxruntime-node does not load" >&2; exit 1; }
echo "setup_peers: torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)')," \
  "onnxruntime-node $(node -p "require('$here/peers/node_modules/onnxruntime-node/package.json').version")"
