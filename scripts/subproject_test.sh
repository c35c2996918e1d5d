#!/usr/bin/env bash
# hubimg's source tree added to another CMake project (add_subdirectory; FetchContent_MakeAvailable
# does the same): the consumer gets hubimg::hubimg and the `hubimg` CLI, none of hubimg's tests,
# benchmarks, examples, Python module, install rules or CPack settings, and keeps its own
# CMAKE_BUILD_TYPE; hubimg's private headers (src/) are not on its include path;
# examples/embed_folder linked to hubimg::hubimg gives the CLI's features.
# Builds the library once more (about 4 minutes on 2 cores), so CI runs it after the test command.
# Usage: scripts/subproject_test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
work=$(mktemp -d)
trap '[ -n "${HUBIMG_KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
fail() {
  echo "subproject_test: $*" >&2
  exit 1
}

mkdir -p "$work/app"
cat >"$work/app/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(consumer CXX)
add_subdirectory("$src" hubimg)
foreach(target test_core test_exec hubimg_python idx_to_png fine_tune make_bench_models)
  if(TARGET \${target})
    message(FATAL_ERROR "hubimg added as a subproject defines its target \${target}")
  endif()
endforeach()
if(DEFINED CPACK_PACKAGE_NAME)
  message(FATAL_ERROR "hubimg added as a subproject set CPack variables")
endif()
add_executable(embed_folder "$src/examples/embed_folder/embed_folder.cc")
target_link_libraries(embed_folder PRIVATE hubimg::hubimg)
# The public headers, and only those: hubimg's src/ is not on a consumer's include path.
include(CheckIncludeFileCXX)
foreach(lib hubimg::hubimg hubimg::hubimg_static)
  get_target_property(dirs \${lib} INTERFACE_INCLUDE_DIRECTORIES)
  string(REPLACE "\\$<BUILD_INTERFACE:" "" dirs "\${dirs}")
  string(REPLACE ">" "" dirs "\${dirs}")
  list(FILTER dirs EXCLUDE REGEX "INSTALL_INTERFACE")
  set(CMAKE_REQUIRED_INCLUDES \${dirs})
  set(CMAKE_REQUIRED_FLAGS -std=c++20)
  string(MAKE_C_IDENTIFIER "\${lib}" id)
  check_include_file_cxx(hubimg/model.h \${id}_public)
  check_include_file_cxx(core/thread_pool.h \${id}_private)
  if(NOT \${id}_public OR \${id}_private)
    message(FATAL_ERROR "\${lib}: include path \${dirs}: hubimg/model.h \${\${id}_public}, "
                        "core/thread_pool.h (private) \${\${id}_private}")
  endif()
endforeach()
CMAKE
cmake -S "$work/app" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
grep -q '^CMAKE_BUILD_TYPE:STRING=RelWithDebInfo$' "$work/build/CMakeCache.txt" ||
  fail "the consumer's CMAKE_BUILD_TYPE changed"
if cmake --build "$work/build" --target help | grep -q '^install'; then
  fail "hubimg added as a subproject adds install rules"
fi
cmake --build "$work/build" -j "$(nproc)" --target embed_folder hubimg >/dev/null

cli="$work/build/hubimg/hubimg"
"$cli" export tiny_cnn --feature-vector --seed 3 --output "$work/model" >/dev/null
mkdir "$work/images"
/usr/bin/python3 - "$work/images" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(5)
for i in range(3):
    Image.fromarray(rng.integers(0, 256, (40 + 8 * i, 56, 3), dtype=np.uint8)).save(f"{sys.argv[1]}/{i}.png")
PY
"$work/build/embed_folder" "$work/model" "$work/images" "$work/example.npy" 48 48 >/dev/null
"$cli" embed "$work/model" "$work/images" --size 48x48 --output "$work/cli.npy" >/dev/null
/usr/bin/python3 -c 'import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape == (3, a.shape[1]) and np.max(np.abs(a - b)) <= 1e-6, (a.shape, b.shape)' \
  "$work/example.npy" "$work/cli.npy" || fail "embed_folder linked to hubimg::hubimg differs from the CLI"
echo "subproject_test: hubimg::hubimg from add_subdirectory works"
