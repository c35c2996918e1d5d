#!/usr/bin/env bash
# Builds hubimg and runs every test: release build + ctest, packaging, the clang-format check,
# then one clang AddressSanitizer/UBSan build for ctest and the libFuzzer targets (a short run
# each; HUBIMG_FUZZ_SECONDS, default 5).
# Usage: scripts/test.sh [--quick]   (--quick: release build and ctest only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
shared="${HUBIMG_SHARED_DIR:-$(pwd)/../shared}"
fuzz_seconds="${HUBIMG_FUZZ_SECONDS:-5}"

section() { printf '\n==== %s (at %dm%02ds) ====\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }

# ctest; with HUBIMG_NO_SKIPS=1 (CI, after scripts/setup.sh --tests with ../shared beside the
# checkout) a skipped test fails the run too: there, every test has what it needs.
run_ctest() {
  local log status=0 skipped
  log=$(mktemp)
  ctest "$@" 2>&1 | tee "$log" || status=$?
  skipped=$(grep -E '^\s+[0-9]+ - .* \(Skipped\)$' "$log" || true)
  rm -f "$log"
  [ "$status" -eq 0 ] || return "$status"
  if [ "${HUBIMG_NO_SKIPS:-0}" = 1 ] && [ -n "$skipped" ]; then
    printf 'HUBIMG_NO_SKIPS=1: these tests were skipped (ctest -V -R NAME says why):\n%s\n' "$skipped"
    return 1
  fi
}

section "release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DHUBIMG_SHARED_DIR="$shared" >/dev/null
cmake --build build -j "$jobs"
section "tests (release)"
run_ctest --test-dir build --output-on-failure -j "$jobs"

[ "${1:-}" = "--quick" ] && exit 0

section "packaging: install, find_package/pkg-config consumers, .deb, Python module"
HUBIMG_SHARED_DIR="$shared" bash scripts/package_test.sh build

section "clang-format"
files=$(git ls-files '*.cc' '*.h')
clang-format --dry-run -Werror $files

# One clang build serves the sanitizer tests and the fuzzers: ASan + UBSan everywhere, libFuzzer's
# coverage instrumentation in the library (cheap for the tests), no benchmarks or Python module.
section "AddressSanitizer + UBSan build (clang; tests and fuzzers)"
CC=clang CXX=clang++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" -DCMAKE_C_FLAGS="-O1 -gline-tables-only" \
  -DHUBIMG_FUZZ=ON -DHUBIMG_BUILD_TESTS=ON -DHUBIMG_BUILD_BENCH=OFF -DHUBIMG_PYTHON=OFF \
  -DHUBIMG_SHARED_DIR="$shared" >/dev/null
cmake --build build-asan -j "$jobs"
section "tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_ctest --test-dir build-asan --output-on-failure -j "$jobs"

section "fuzzers (${fuzz_seconds}s each)"
corpus=build-asan/corpus
if [ -d "$shared/fixtures/real" ]; then
  bash fuzz/make_seed_corpus.sh "$shared" "$corpus"
else
  echo "fixtures not found at $shared: fuzzers start from empty corpora"
fi
# One fuzzer per core at a time; a crash, leak or timeout fails the run and prints its log.
fuzz_one() {
  local target=$1 name log
  name=$(basename "$target")
  log="$corpus/$name.log"
  mkdir -p "$corpus/$name"
  if "$target" -max_total_time="$fuzz_seconds" -rss_limit_mb=4096 -timeout=20 \
    "$corpus/$name" >"$log" 2>&1; then
    echo "-- $name: $(grep -E '^(#[0-9]+\s+DONE|Done)' "$log" | tail -n 1)"
  else
    echo "-- $name FAILED:"
    tail -n 60 "$log"
    return 1
  fi
}
export -f fuzz_one
export corpus fuzz_seconds
printf '%s\n' build-asan/fuzz/fuzz_* | xargs -P "$jobs" -I{} bash -c 'fuzz_one "$1"' _ {}
section "all tests passed"
