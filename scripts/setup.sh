#!/usr/bin/env bash
# Installs every Debian package hubimg needs to build, test and benchmark. Idempotent.
# Usage: scripts/setup.sh [--tests]
#   --tests: also PyTorch (python3-torch, ~1 minute), the independent implementation the test
#   suite checks optimizer steps against (OptimizerStepAgainstPyTorch); without it that test
#   skips. The benchmarks' peers (ONNX Runtime, OpenBLAS, ...) are bench/setup_peers.sh's.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev lld
  protobuf-compiler libprotobuf-dev
  libsnappy-dev libarchive-dev zlib1g-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev libexif-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  python3-numpy  # ../shared/tools/golden_check.py (golden-train test)
  python3-protobuf  # the hostile-input recipes (HostileRecipes) write damaged SavedModels with it
  libdnnl-dev
  libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
  dataset-fashion-mnist  # /usr/share/datasets/fashion-mnist (retrain tests and acceptance run)
  # Python module, its tests and the .deb (scripts/package_test.sh)
  python3-dev pybind11-dev python3-pybind11 python3-pytest python3-pil dpkg-dev file
)
case "${1:-}" in
  --tests) packages+=(python3-torch) ;;
  "") ;;
  *) echo "usage: scripts/setup.sh [--tests]" >&2; exit 2 ;;
esac
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
