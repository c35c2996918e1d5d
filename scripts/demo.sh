#!/usr/bin/env bash
# The README demo: build hubimg, write a small CNN classifier as a TF2 SavedModel with hubimg's
# own writer, then inspect it and run it on a few generated images.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
out=build/demo
rm -rf "$out"
build/bench/make_bench_models "$out" --only tiny_cnn
build/bench/make_demo_images "$out/images"
printf 'class_%d\n' 0 1 2 3 4 > "$out/labels.txt"
set -x
build/hubimg info "$out/tiny_cnn"
build/hubimg classify "$out/tiny_cnn" "$out/images" --labels "$out/labels.txt" --top 3
build/hubimg embed "$out/tiny_cnn" "$out/images" --output "$out/features.npy"
build/hubimg bench "$out/tiny_cnn" --batch 32 --iterations 10
