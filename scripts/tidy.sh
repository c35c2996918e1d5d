#!/usr/bin/env bash
# clang-tidy (.clang-tidy: bugprone, performance, modernize basics; warnings are errors) over the
# library and the CLI: every src/ and tools/ source, or the files given. The builds compile in
# unity batches, whose compile database lists the batches, not the sources; so this configures
# its own clang build in build-tidy without batching and generates only what the sources include
# (the protobuf headers), then checks every source on that database (without precompiled
# headers, which it does not build).
# Usage: scripts/tidy.sh [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-tidy
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DHUBIMG_UNITY_BUILD=OFF -DHUBIMG_BUILD_TESTS=OFF -DHUBIMG_BUILD_BENCH=OFF \
  -DHUBIMG_PYTHON=OFF -DCMAKE_DISABLE_PRECOMPILE_HEADERS=ON >/dev/null
mapfile -t generated < <(cd "$build" && ninja -t targets all | sed -n 's|^\(proto/[^:]*\.pb\.cc\):.*|\1|p')
[ ${#generated[@]} -gt 0 ] || { echo "tidy: no protobuf sources to generate in $build" >&2; exit 2; }
ninja -C "$build" "${generated[@]}" >/dev/null
if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files 'src/*.cc' 'tools/*.cc')
fi
# A file missing from the database would be skipped silently (a unity build lists its batches
# instead): refuse.
missing=$(python3 - "$build/compile_commands.json" "${files[@]}" <<'PY'
import json, os, sys
listed = {os.path.realpath(e["file"]) for e in json.load(open(sys.argv[1]))}
print(" ".join(f for f in sys.argv[2:] if os.path.realpath(f) not in listed))
PY
)
if [ -n "$missing" ]; then
  echo "tidy: not in $build/compile_commands.json: $missing" >&2
  exit 2
fi
# run-clang-tidy takes regexes: anchor each path so that a.cc does not also match xa.cc.
patterns=()
for f in "${files[@]}"; do patterns+=("$(pwd)/${f//./\\.}\$"); done
echo "clang-tidy: ${#files[@]} files"
run-clang-tidy -p "$build" -j "$(nproc)" -quiet "${patterns[@]}" > "$build/tidy.log" 2>&1 || {
  sed "s/\x1b\[[0-9;]*m//g" "$build/tidy.log" | grep -E "(warning|error):" | sort -u
  echo "clang-tidy found problems (full output: $build/tidy.log)" >&2
  exit 1
}
echo "clang-tidy: clean"
