#!/usr/bin/env bash
# ThreadSanitizer over the tests that call hubimg from several threads: one Model called from four
# threads at once (ConcurrentCalls), batches split into chunks (BatchRunner), images decoded on
# the kernel threads (LoadImageBatch) and the thread pool (ThreadPool), with kernels on one
# thread and on the pool's own two workers. Not part of
# scripts/test.sh (a third sanitizer build would not fit its 20 minutes): about 6 minutes on 2
# cores, in build-tsan.
# Usage: scripts/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang CXX=clang++ cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O1 -g -fsanitize=thread" -DCMAKE_C_FLAGS="-O1 -g -fsanitize=thread" \
  -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
  -DHUBIMG_BUILD_BENCH=OFF -DHUBIMG_PYTHON=OFF >/dev/null
cmake --build build-tsan -j "$(nproc)" --target test_exec test_core test_image
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(pwd)/scripts/tsan.supp"
filter_exec='*ConcurrentCalls.*:BatchRunner.*'
for threads in 1 2; do
  echo "== kernels on $threads thread(s), the pool's own workers"
  HUBIMG_OWN_THREADS=1 HUBIMG_NUM_THREADS=$threads build-tsan/tests/test_exec \
    --gtest_filter="$filter_exec" --gtest_brief=1
  HUBIMG_OWN_THREADS=1 HUBIMG_NUM_THREADS=$threads build-tsan/tests/test_core \
    --gtest_filter='ThreadPool.*' --gtest_brief=1
  HUBIMG_OWN_THREADS=1 HUBIMG_NUM_THREADS=$threads build-tsan/tests/test_image \
    --gtest_filter='LoadImageBatch.*' --gtest_brief=1
done
echo "tsan: no data race reported"
