#!/usr/bin/env bash
# Packaging test, on a release build folder (default: build, as scripts/test.sh leaves it):
#  - `cmake --install` into a temporary prefix; the installed headers compile on their own;
#  - examples/embed_folder built against that prefix through find_package (shared and static
#    library) and through pkg-config, run on a model the project writes, compared with the CLI;
#  - examples/idx_to_png built the same way (public headers only), its PNGs compared with the
#    build tree's (when Debian's dataset-fashion-mnist is installed);
#  - examples/fine_tune built the same way: one epoch on a Fashion-MNIST slice must publish the
#    same SavedModel, byte for byte, as the build tree's binary (same condition);
#  - `cpack -G DEB`, the .deb unpacked with dpkg -x into a scratch root, `hubimg --version` and
#    `hubimg info` run from there;
#  - the Python module's tests (python/tests, pytest) from the build tree and from the .deb.
# Usage: scripts/package_test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
shared="${HUBIMG_SHARED_DIR:-$(pwd)/../shared}"
jobs=$(nproc)
work=$(mktemp -d)
trap '[ -n "${HUBIMG_KEEP_WORK:-}" ] || rm -rf "$work"' EXIT
step() { printf -- '-- %s\n' "$*"; }
fail() {
  echo "package_test: $*" >&2
  exit 1
}
cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }

[ -f "$build/CMakeCache.txt" ] || fail "$build is not a configured build folder"
[ "$(cache_value HUBIMG_PYTHON)" = "ON" ] ||
  fail "$build was configured without the Python module (needs pybind11-dev python3-dev: scripts/setup.sh)"
python="$(cache_value PYTHON_EXECUTABLE)"
[ -x "$python" ] || fail "$build/CMakeCache.txt names no PYTHON_EXECUTABLE"
version="$(sed -n 's/^project(hubimg VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
cmake --build "$build" -j "$jobs" --target hubimg hubimg_lib hubimg_shared hubimg_python \
  make_bench_models make_demo_images idx_to_png >/dev/null

# A model and images the project writes.
"$build/bench/make_bench_models" "$work/models" --only tiny_cnn >/dev/null
"$build/bench/make_demo_images" "$work/images" >/dev/null
model="$work/models/tiny_cnn"
"$build/hubimg" embed "$model" "$work/images" --output "$work/cli.npy" >/dev/null
same_npy() {  # same_npy A.npy B.npy: same shape, max |a - b| <= 1e-6
  "$python" -c 'import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert a.shape == b.shape and a.size and np.max(np.abs(a - b)) <= 1e-6, (a.shape, b.shape)' "$1" "$2" ||
    fail "$1 differs from $2"
}

step "cmake --install into a temporary prefix"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir="$(cache_value CMAKE_INSTALL_LIBDIR)"
for f in bin/hubimg "$libdir/libhubimg.a" "$libdir/libhubimg.so.$version" \
  "$libdir/cmake/hubimg/hubimgConfig.cmake" "$libdir/cmake/hubimg/hubimgConfigVersion.cmake" \
  "$libdir/pkgconfig/hubimg.pc" include/hubimg/model.h include/hubimg/version.h; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
soname=$(objdump -p "$prefix/$libdir/libhubimg.so.$version" | awk '/SONAME/ {print $2}')
[ "$soname" = "libhubimg.so.${version%%.*}" ] || fail "SONAME is '$soname'"
# Public headers stand alone and include only the standard library and each other.
for header in "$prefix"/include/hubimg/*.h; do
  grep -h '#include "' "$header" | grep -v '#include "hubimg/' &&
    fail "$header includes a private header"
  echo "#include \"hubimg/$(basename "$header")\"" |
    g++ -std=c++20 -fsyntax-only -x c++ -I "$prefix/include" - || fail "$header does not compile alone"
done
[ "$("$prefix/bin/hubimg" --version | sed -n 1p)" = "hubimg $version" ] || fail "installed hubimg --version"

step "examples/embed_folder through find_package (shared library)"
cmake -S examples/embed_folder -B "$work/find-shared" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/find-shared" >/dev/null
"$work/find-shared/embed_folder" "$model" "$work/images" "$work/find-shared.npy"
grep -q "libhubimg.so.0 => $prefix/" <<<"$(ldd "$work/find-shared/embed_folder")" ||
  fail "find_package(hubimg) did not link the installed libhubimg.so"
same_npy "$work/find-shared.npy" "$work/cli.npy"

step "examples/idx_to_png through find_package"
cmake -S examples/idx_to_png -B "$work/idx-to-png" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/idx-to-png" >/dev/null
fashion=/usr/share/datasets/fashion-mnist
if [ -f "$fashion/t10k-images-idx3-ubyte.gz" ]; then
  "$work/idx-to-png/idx_to_png" "$fashion" "$work/pngs-installed" --first 100 --count 5 >/dev/null
  "$build/examples/idx_to_png" "$fashion" "$work/pngs-tree" --first 100 --count 5 >/dev/null
  diff -r "$work/pngs-installed" "$work/pngs-tree" >/dev/null ||
    fail "examples/idx_to_png: the installed build's PNGs differ from the build tree's"
else
  echo "(not run: $fashion not installed)"
fi

step "examples/fine_tune through find_package"
cmake -S examples/fine_tune -B "$work/fine-tune" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/fine-tune" >/dev/null
if [ -f "$fashion/train-images-idx3-ubyte.gz" ]; then
  "$prefix/bin/hubimg" export tiny_cnn --feature-vector --output "$work/fine-tune-base" >/dev/null
  "$work/fine-tune/fine_tune" "$work/fine-tune-base" "$fashion" "$work/tuned-installed" 1 640 28 \
    >/dev/null
  "$build/examples/fine_tune" "$work/fine-tune-base" "$fashion" "$work/tuned-tree" 1 640 28 \
    >/dev/null
  # Training and publishing are deterministic: the same SavedModel, byte for byte.
  diff -r "$work/tuned-installed" "$work/tuned-tree" >/dev/null ||
    fail "examples/fine_tune: the installed build published another model than the build tree's"
else
  echo "(not run: $fashion not installed)"
fi

step "examples/embed_folder through find_package (static library, dependencies found transitively)"
cmake -S examples/embed_folder -B "$work/find-static" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DHUBIMG_USE_STATIC_LIBS=ON >/dev/null
cmake --build "$work/find-static" >/dev/null
"$work/find-static/embed_folder" "$model" "$work/images" "$work/find-static.npy"
if grep -q libhubimg <<<"$(ldd "$work/find-static/embed_folder")"; then fail "static example links libhubimg.so"; fi
same_npy "$work/find-static.npy" "$work/cli.npy"

step "examples/embed_folder through pkg-config"
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
[ "$(pkg-config --modversion hubimg)" = "$version" ] || fail "pkg-config --modversion hubimg"
# shellcheck disable=SC2046
g++ -std=c++20 -O1 examples/embed_folder/embed_folder.cc -o "$work/pkgconfig-example" \
  $(pkg-config --cflags --libs hubimg) -Wl,-rpath,"$(pkg-config --variable=libdir hubimg)"
"$work/pkgconfig-example" "$model" "$work/images" "$work/pkgconfig.npy"
same_npy "$work/pkgconfig.npy" "$work/cli.npy"
unset PKG_CONFIG_PATH

step "Debian package (cpack -G DEB), unpacked with dpkg -x"
rm -f "$build"/hubimg_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb="$build/hubimg_${version}_$(dpkg --print-architecture).deb"
[ -f "$deb" ] || fail "cpack did not write $deb"
depends="$(dpkg-deb -f "$deb" Depends)"
echo "Depends: $depends"
for needed in libprotobuf libarchive libjpeg62-turbo libpng16 libgif7 libwebp libdnnl; do
  grep -q "$needed" <<<"$depends" || fail "the .deb does not depend on $needed"
done
root="$work/root"
dpkg -x "$deb" "$root"
grep -q './usr/include/hubimg/model.h' <<<"$(dpkg-deb -c "$deb")" || fail "headers missing from the .deb"
"$root/usr/bin/hubimg" --version
grep -q "libhubimg.so.0 => $root/" <<<"$(ldd "$root/usr/bin/hubimg")" ||
  fail "the unpacked hubimg does not use the unpacked libhubimg.so (RPATH)"
"$root/usr/bin/hubimg" info "$model" >"$work/info.txt"
head -n 4 "$work/info.txt"
"$root/usr/bin/hubimg" embed "$model" "$work/images" --output "$work/deb.npy" >/dev/null
same_npy "$work/deb.npy" "$work/cli.npy"

run_pytest() {  # run_pytest MODULE_DIR CLI
  PYTHONPATH="$1" HUBIMG_EXPECT_MODULE_DIR="$1" HUBIMG_CLI="$2" HUBIMG_TEST_MODEL="$model" \
    HUBIMG_TEST_IMAGES="$work/images" HUBIMG_SHARED_DIR="$shared" \
    "$python" -m pytest -q -p no:cacheprovider -rs python/tests
}
step "Python module from the build tree (pytest python/tests)"
run_pytest "$build/python" "$build/hubimg"
step "Python module from the .deb"
run_pytest "$root/usr/$(cache_value HUBIMG_PYTHON_INSTALL_DIR)" "$root/usr/bin/hubimg"
step "packaging tests passed"
