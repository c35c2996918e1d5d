#!/usr/bin/env bash
# Builds seed corpora for the fuzz targets from the real fixtures:
#   fuzz/corpus/fuzz_index_table/  every fixture's variables.index
#   fuzz/corpus/fuzz_bundle_read/  small fixtures packed as fuzz_bundle_read.cc expects
# Usage: fuzz/make_seed_corpus.sh [path/to/shared]   (default: ../shared beside the checkout)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared="${1:-$here/../../shared}"
real="$shared/fixtures/real"
if [[ ! -d "$real" ]]; then
  echo "fixtures not found at $real" >&2
  exit 1
fi

index_dir="$here/corpus/fuzz_index_table"
bundle_dir="$here/corpus/fuzz_bundle_read"
mkdir -p "$index_dir" "$bundle_dir"

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
echo "seeds: $(ls "$index_dir" | wc -l) index tables, $(ls "$bundle_dir" | wc -l) bundles"
