#!/usr/bin/env bash
# Runs every recipe of hostile-inputs.md (issue 10: the prelude, then each defect's ```sh block)
# against a hubimg binary and checks the acceptance rule of the issue for every hubimg invocation:
# exit 0 or 1 (never a signal or a timeout), a "hubimg: error: ..." message with exit 1, max RSS
# under 1 GB (3 GB under AddressSanitizer), under 10 s (30 s under ASan); after each recipe,
# nothing written outside the recipe's scratch folder (/tmp/rr) and no hubimg_model_* temp dir
# left behind; and, where a recipe shows a result, that the result is right (D1, D6, D10).
#
# Usage: hostile_recipes.sh HUBIMG [SHARED_DIR] [DOC]
#   SHARED_DIR defaults to $SHARED or ../shared beside the checkout; DOC to SHARED_DIR/docs/
#   hostile-inputs.md. Exit 0 if every recipe passes, 1 if one fails, 77 (skip) without the doc,
#   the fixtures, protoc or /usr/bin/python3 with protobuf, numpy and Pillow.
# Environment: HUBIMG_RECIPES_ONLY="D2 D11" runs only those; HUBIMG_RECIPES_ASAN=1 (or an ASan
#   binary, found with nm) raises the limits; HUBIMG_RECIPES_MAX_RSS_MB / _MAX_SECONDS set them;
#   HUBIMG_RECIPES_KEEP=1 keeps the work folder; HUBIMG_RECIPES_WORKDIR is where it is made
#   (default: the current folder; it must not be under /tmp for the isolated mode).
#
# Isolation: each recipe runs in a private mount namespace (unshare) where /tmp is an overlay
# whose upper layer is a folder of the work dir, /tmp/rr is a fresh scratch folder bind-mounted
# over it, and $HOME is an overlay too. Whatever a recipe (or hubimg) writes to /tmp outside
# /tmp/rr, or to $HOME, lands in an upper layer, where it is found and reported, and never
# touches the real /tmp. Without unshare the recipes' /tmp/rr is rewritten to a scratch folder
# and only the escape targets the recipes name (/tmp/rr_*) are checked.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source_dir=$(cd "$here/../.." && pwd)
skip() {
  echo "SKIPPED: $*"
  exit 77
}

[ $# -ge 1 ] || { echo "usage: $0 HUBIMG [SHARED_DIR] [DOC]" >&2; exit 2; }
real_hubimg=$(realpath "$1")
shared=${2:-${SHARED:-$source_dir/../shared}}
doc=${3:-$shared/docs/hostile-inputs.md}
[ -x "$real_hubimg" ] || { echo "error: $1 is not an executable" >&2; exit 1; }
[ -f "$doc" ] || skip "no $doc (HUBIMG_SHARED_DIR='$shared')"
[ -d "$shared/fixtures/real" ] || skip "no fixtures in '$shared'"
shared=$(cd "$shared" && pwd)
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c "import google.protobuf, numpy, PIL" 2>/dev/null ||
  skip "the recipes need $py with protobuf, numpy and Pillow"
command -v protoc >/dev/null || skip "the recipes need protoc"

asan=${HUBIMG_RECIPES_ASAN:-0}
if [ "$asan" = 0 ] && command -v nm >/dev/null &&
  nm -D "$real_hubimg" 2>/dev/null | grep ' __asan_init' >/dev/null; then  # not -q: pipefail
  asan=1
fi
if [ "$asan" = 1 ]; then
  max_rss_mb=${HUBIMG_RECIPES_MAX_RSS_MB:-3072}
  max_seconds=${HUBIMG_RECIPES_MAX_SECONDS:-30}
else
  max_rss_mb=${HUBIMG_RECIPES_MAX_RSS_MB:-1024}
  max_seconds=${HUBIMG_RECIPES_MAX_SECONDS:-10}
fi

work=$(mktemp -d "${HUBIMG_RECIPES_WORKDIR:-$PWD}/hostile_recipes.XXXXXX") || exit 1
work=$(realpath "$work")
cleanup() {
  if [ "${HUBIMG_RECIPES_KEEP:-0}" = 1 ]; then
    echo "work folder kept: $work"
  else
    chmod -R u+rwX "$work" 2>/dev/null
    rm -rf "$work"
  fi
}
trap cleanup EXIT

# The wrapper the recipes call as $HUBIMG.
mkdir -p "$work/bin" "$work/blocks"
cp "$here/hostile_recipes_helper.py" "$work/bin/helper.py"
printf '#!/bin/sh\nexec %s %s "$@"\n' "$py" "$work/bin/helper.py" >"$work/bin/hubimg"
chmod +x "$work/bin/hubimg"

# Blocks: the first ```sh block before any "### Dn" heading is the prelude; then every ```sh
# block under "### Dn" belongs to Dn.
awk -v dir="$work/blocks" '
  /^### D[0-9]+/ { match($0, /D[0-9]+/); id = substr($0, RSTART, RLENGTH); next }
  /^```sh[[:space:]]*$/ { inblock = 1; file = dir "/" (id == "" ? "prelude" : id) ".sh"; next }
  /^```[[:space:]]*$/ { if (inblock) { inblock = 0; if (id != "") order[++n] = id } ; next }
  inblock { print >> file }
  END { for (i = 1; i <= n; i++) if (!seen[order[i]]++) print order[i] > (dir "/order") }
' "$doc"
[ -s "$work/blocks/prelude.sh" ] && [ -s "$work/blocks/order" ] ||
  { echo "error: no prelude or no defect recipes found in $doc" >&2; exit 1; }

# Isolation available? (unshare, and a work dir outside /tmp and $HOME's overlay.)
isolate=0
ns_flags=-rm
[ "$(id -u)" = 0 ] && ns_flags=-m
mkdir -p "$work/probe/lower" "$work/probe/upper" "$work/probe/work"
if [ "${HUBIMG_RECIPES_NO_NAMESPACE:-0}" != 1 ] && command -v unshare >/dev/null &&
  unshare $ns_flags sh -c "mount -t overlay overlay -o lowerdir='$work/probe/lower',upperdir='$work/probe/upper',workdir='$work/probe/work' '$work/probe/lower'" 2>/dev/null; then
  case "$work/" in
    /tmp/*) ;;
    *) isolate=1 ;;
  esac
fi
overlay_home=0
home=${HOME:-}
if [ "$isolate" = 1 ] && [ -n "$home" ] && [ -d "$home" ]; then
  home=$(realpath "$home")
  case "$work/" in
    "$home"/*) ;;
    *) overlay_home=1 ;;
  esac
fi

# Checks of the result, where a recipe shows one (the doc's comments show the old behaviour).
result_check() {
  local id=$1 rr=$2
  case $id in
    D1)
      # The model's output keys are file names inside --output, whatever they contain.
      [ -n "$(ls -A "$rr/out/trav" 2>/dev/null)" ] || echo "no output in out/trav"
      [ -n "$(ls -A "$rr/out/abs" 2>/dev/null)" ] || echo "no output in out/abs"
      ;;
    D6)
      # The unused fan-out calls change nothing: the same output as the fixture itself.
      "$real_hubimg" run "$shared/fixtures/real/mnist_cnn_tf231/saved_model" \
        --signature serving_default --input conv2d_input="$rr/x.npy" --output "$rr/out/fan_ref" \
        >/dev/null 2>&1 || echo "the unmodified fixture did not run"
      "$py" -c "
import sys, numpy as np
a, b = np.load(sys.argv[1] + '/out/fan/dense_3.npy'), np.load(sys.argv[1] + '/out/fan_ref/dense_3.npy')
if a.shape != b.shape or not np.array_equal(a, b): print('out/fan/dense_3.npy differs from the fixture\'s output')
" "$rr" 2>&1 | tail -n 1
      ;;
    D10)
      # TensorFlow: relu(NaN) = NaN, fused or not.
      "$py" - "$rr" <<'EOF'
import sys, numpy as np
rr = sys.argv[1]
for f in ("out/nan/output_0.npy", "out/mm/fused.npy", "out/mm/relu_alone.npy"):
    try:
        a = np.load(rr + "/" + f)
    except Exception as e:
        print("%s: %s" % (f, e)); continue
    if not np.isnan(a).all():
        print("%s is not all NaN: %s" % (f, a.ravel()[:4]))
EOF
      ;;
  esac
}

run_block() {
  local id=$1
  local blk="$work/$id"
  mkdir -p "$blk/rr" "$blk/tmp_upper" "$blk/tmp_work" "$blk/home_upper" "$blk/home_work"
  local script="$blk/recipe.sh"
  {
    echo "cd '$source_dir' || exit 1"
    echo "export SHARED='$shared' HUBIMG='$work/bin/hubimg'"
    cat "$work/blocks/prelude.sh" "$work/blocks/$id.sh"
  } >"$script"
  if [ "$isolate" = 0 ]; then
    # /tmp/rr (not /tmp/rr_escape and the like) -> the scratch folder.
    sed -i -E "s#/tmp/rr([^A-Za-z0-9_]|\$)#$blk/rr\\1#g" "$script"
  fi
  export HUBIMG_RECIPES_REAL="$real_hubimg" HUBIMG_RECIPES_LOG="$blk/calls.jsonl"
  export HUBIMG_RECIPES_KILL_AFTER=$((max_seconds * 3))
  local escapes_before=""
  local targets
  targets=$(grep -oE '/tmp/rr_[A-Za-z0-9_]+(\.npy)?' "$script" | sed 's/\.npy$//' | sort -u)
  if [ "$isolate" = 0 ]; then
    for t in $targets; do escapes_before+="$(stat -c '%n %Y' "$t" "$t.npy" 2>/dev/null)"; done
  fi
  local start=$SECONDS
  if [ "$isolate" = 1 ]; then
    local mounts="mount -t overlay overlay -o lowerdir=/tmp,upperdir='$blk/tmp_upper',workdir='$blk/tmp_work' /tmp && mkdir /tmp/rr && mount --bind '$blk/rr' /tmp/rr"
    if [ "$overlay_home" = 1 ]; then
      mounts+=" && mount -t overlay overlay -o lowerdir='$home',upperdir='$blk/home_upper',workdir='$blk/home_work' '$home'"
    fi
    timeout -k 10 600 unshare $ns_flags bash -c "$mounts && exec bash '$script'" \
      >"$blk/output.txt" 2>&1 </dev/null
  else
    timeout -k 10 600 bash "$script" >"$blk/output.txt" 2>&1 </dev/null
  fi
  local rc=$?
  local problems=()
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && problems+=("the recipe did not finish in 600 s")
  if [ "$isolate" = 1 ]; then
    local escaped
    escaped=$(cd "$blk/tmp_upper" && find . -mindepth 1 -maxdepth 1 ! -name rr -printf '/tmp/%P ')
    escaped+=$(cd "$blk/tmp_upper" && find rr -mindepth 1 -maxdepth 1 -printf '/tmp/%p ' 2>/dev/null)
    [ -z "$escaped" ] || problems+=("written outside /tmp/rr: $escaped")
    if [ "$overlay_home" = 1 ]; then
      escaped=$(cd "$blk/home_upper" && find . -mindepth 1 -maxdepth 1 -printf "$home/%P ")
      [ -z "$escaped" ] || problems+=("written to \$HOME: $escaped")
    fi
  else
    local escapes_after=""
    for t in $targets; do escapes_after+="$(stat -c '%n %Y' "$t" "$t.npy" 2>/dev/null)"; done
    [ "$escapes_after" = "$escapes_before" ] || problems+=("written outside: $escapes_after")
  fi
  local leftover
  leftover=$(find "$blk/rr" -name 'hubimg_model_*' -printf '%P ' 2>/dev/null)
  [ -z "$leftover" ] || problems+=("temp dir left behind: $leftover")
  local wrong
  wrong=$(result_check "$id" "$blk/rr")
  [ -z "$wrong" ] || problems+=("wrong result: $(echo $wrong)")
  local allow_kill=0
  grep -qE '(^|[;&| ])kill ' "$work/blocks/$id.sh" && allow_kill=1
  local row
  row=$("$py" "$work/bin/helper.py" --judge "$blk/calls.jsonl" "$id" "$max_rss_mb" \
    "$max_seconds" "$allow_kill" 2>"$blk/calls.txt")
  if [ ${#problems[@]} -gt 0 ]; then
    local joined
    joined=$(printf '%s; ' "${problems[@]}")
    row=$(printf '%s' "$row" | awk -F'\037' -v OFS='\037' -v extra="$joined" \
      '{ $7 = "FAIL"; $8 = ($8 == "" ? extra : $8 "; " extra); print }')
  fi
  printf '%s\037%d\n' "$row" $((SECONDS - start)) >>"$work/table.tsv"
}

echo "hubimg: $real_hubimg (limits: ${max_rss_mb} MB, ${max_seconds} s per invocation$([ "$asan" = 1 ] && echo ', ASan'))"
echo "doc: $doc; isolation: $([ "$isolate" = 1 ] && echo "mount namespace (/tmp$([ "$overlay_home" = 1 ] && echo " and $home") overlays)" || echo "none: /tmp/rr rewritten, /tmp/rr_* checked")"
: >"$work/table.tsv"
for id in $(cat "$work/blocks/order"); do
  if [ -n "${HUBIMG_RECIPES_ONLY:-}" ] && ! [[ " $HUBIMG_RECIPES_ONLY " == *" $id "* ]]; then
    continue
  fi
  run_block "$id"
done

status=0
printf '\n%-5s %5s  %-24s %8s %7s %6s  %s\n' recipe calls "exit codes" "RSS MB" "max s" "all s" "first error line"
while IFS=$'\037' read -r id n codes rss secs message verdict problems total; do
  [ ${#codes} -le 24 ] || codes="${codes:0:21}..."
  printf '%-5s %5s  %-24s %8s %7s %6s  %s\n' "$id" "$n" "$codes" "$rss" "$secs" "$total" "${message:0:110}"
  if [ "$verdict" != ok ]; then
    status=1
    echo "      FAIL: $problems"
  fi
done <"$work/table.tsv"
for id in $(cut -d $'\037' -f1,7 "$work/table.tsv" | awk -F'\037' '$2 != "ok" { print $1 }'); do
  echo
  echo "---- $id: invocations"
  cat "$work/$id/calls.txt"
  echo "---- $id: recipe output (last 40 lines)"
  tail -n 40 "$work/$id/output.txt"
done
[ -s "$work/table.tsv" ] || { echo "no recipe ran"; status=1; }
echo
[ "$status" = 0 ] && echo "all recipes pass" || echo "some recipes FAIL"
exit $status
