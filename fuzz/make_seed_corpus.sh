#!/usr/bin/env bash
# Builds seed corpora for the fuzz targets from the real fixtures:
#   fuzz/corpus/fuzz_index_table/  every fixture's variables.index
#   fuzz/corpus/fuzz_bundle_read/  small fixtures packed as fuzz_bundle_read.cc expects
#   fuzz/corpus/fuzz_saved_model_pb/  small fixtures' saved_model.pb
#   fuzz/corpus/fuzz_npy/  small golden .npy files;  fuzz/corpus/fuzz_image/  sample images
# Usage: fuzz/make_seed_corpus.sh [path/to/shared] [corpus dir]
#   (defaults: ../shared beside the checkout, fuzz/corpus)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared="${1:-$here/../../shared}"
real="$shared/fixtures/real"
if [[ ! -d "$real" ]]; then
  echo "fixtures not found at $real" >&2
  exit 1
fi

corpus="${2:-$here/corpus}"
index_dir="$corpus/fuzz_index_table"
bundle_dir="$corpus/fuzz_bundle_read"
pb_dir="$corpus/fuzz_saved_model_pb"
npy_dir="$corpus/fuzz_npy"
image_dir="$corpus/fuzz_image"
mkdir -p "$index_dir" "$bundle_dir" "$pb_dir" "$npy_dir" "$image_dir"

for pb in "$real"/*/saved_model/saved_model.pb "$real"/tf_testdata/*/saved_model/saved_model.pb; do
  name="$(basename "$(dirname "$(dirname "$pb")")")"
  (($(wc -c < "$pb") <= 256 * 1024)) && cp "$pb" "$pb_dir/$name.pb"
done
for npy in "$shared"/fixtures/golden/*/*.npy; do
  (($(wc -c < "$npy") <= 4096)) && cp "$npy" "$npy_dir/$(basename "$(dirname "$npy")")_$(basename "$npy")"
done
for img in "$real"/*/samples/*.{jpg,png}; do
  [[ -f "$img" ]] && cp "$img" "$image_dir/"
done

# Writes $1 as a 4-byte little-endian integer.
u32le() {
  local n=$1
  printf "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $(((n >> 8) & 255)))"
  printf "\\x$(printf %02x $(((n >> 16) & 255)))\\x$(printf %02x $(((n >> 24) & 255)))"
}

max_bundle_bytes=$((64 * 1024))
for variables in "$real"/*/saved_model/variables "$real"/tf_testdata/*/saved_model/variables; do
  [[ -f "$variables/variables.index" ]] || continue
  name="$(basename "$(dirname "$(dirname "$variables")")")"
  cp "$variables/variables.index" "$index_dir/$name.index"

  shards=("$variables"/variables.data-*)
  total=$(cat "$variables/variables.index" "${shards[@]}" | wc -c)
  if ((total > max_bundle_bytes)); then
    continue  # large seeds slow every execution down
  fi
  {
    # Flags: number of shards - 1; one seed with and one without checksum verification below.
    printf "\\x$(printf %02x $((${#shards[@]} - 1)))"
    u32le "$(wc -c < "$variables/variables.index")"
    cat "$variables/variables.index"
    for ((i = 0; i + 1 < ${#shards[@]}; ++i)); do
      u32le "$(wc -c < "${shards[$i]}")"
      cat "${shards[$i]}"
    done
    cat "${shards[-1]}"
  } > "$bundle_dir/$name.bundle"
  # The same input with checksum verification on.
  { printf "\\x$(printf %02x $((0x80 | (${#shards[@]} - 1))))"; tail -c +2 "$bundle_dir/$name.bundle"; } \
    > "$bundle_dir/$name.verified.bundle"
done
echo "seeds: $(ls "$index_dir" | wc -l) index tables, $(ls "$bundle_dir" | wc -l) bundles," \
  "$(ls "$pb_dir" | wc -l) saved_model.pb, $(ls "$npy_dir" | wc -l) npy, $(ls "$image_dir" | wc -l) images"
