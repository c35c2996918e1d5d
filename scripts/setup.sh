#!/usr/bin/env bash
# Installs every Debian package hubimg needs to build, test and benchmark. Idempotent.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev
  protobuf-compiler libprotobuf-dev
  libsnappy-dev libarchive-dev zlib1g-dev
  libjpeg62-turbo-dev libpng-dev libwebp-dev libexif-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  python3-numpy  # ../shared/tools/golden_check.py (golden-train test)
  libdnnl-dev
  libxnnpack-dev libpthreadpool-dev libcpuinfo-dev
  dataset-fashion-mnist  # /usr/share/datasets/fashion-mnist (retrain tests and acceptance run)
  # Python module, its tests and the .deb (scripts/package_test.sh)
  python3-dev pybind11-dev python3-pybind11 python3-pytest python3-pil dpkg-dev file
)
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
