#!/usr/bin/env bash
# Load time and per-image latency of the real image fixtures at batch 1 and 32 (hubimg bench).
# Usage: bench/fixture_latency.sh [build dir] [shared dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
shared="${2:-../shared}"
real="$shared/fixtures/real"
[ -d "$real" ] || { echo "fixtures not found at $real" >&2; exit 1; }
printf '%-32s %9s %12s %14s %14s\n' model load_ms first_call_ms "b1 ms/image" "b32 ms/image"
for m in emoji_mobilenet025_gray_tf282 intel_cnn_keras3_tf218 mnist_cnn_tf231 potato_cnn_aug_tf25 \
         rps_cnn_tf231 tm_mobilenetv2_035_tf115; do
  sig=()
  [ "$m" = tm_mobilenetv2_035_tf115 ] || [ "$m" = intel_cnn_keras3_tf218 ] && sig=(--signature serving_default)
  b1=$("$build/hubimg" bench "$real/$m/saved_model" "${sig[@]}" --batch 1 --iterations 10 --json)
  b32=$("$build/hubimg" bench "$real/$m/saved_model" "${sig[@]}" --batch 32 --iterations 3 --json)
  field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p" <<<"$2"; }
  printf '%-32s %9.1f %12.1f %14.2f %14.2f\n' "$m" "$(field load_ms "$b1")" \
    "$(field first_call_ms "$b1")" "$(field median_ms "$b1")" \
    "$(awk -v t="$(field median_ms "$b32")" 'BEGIN { print t / 32 }')"
done
