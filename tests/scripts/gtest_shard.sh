#!/usr/bin/env bash
# Runs one shard of a gtest executable (ctest sets GTEST_TOTAL_SHARDS and GTEST_SHARD_INDEX) and
# turns a skipped test into the shard's result the way ctest shows a skip: exit 77 when every
# test of the shard passed or skipped and at least one skipped, naming them. (scripts/test.sh
# with HUBIMG_NO_SKIPS=1 then fails the run, as it does for a skipped test of its own.)
# Usage: gtest_shard.sh TEST_EXECUTABLE [ARGS...]
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
[ "$status" -eq 0 ] || exit "$status"
skipped=$(grep -E '^\[  SKIPPED \] [A-Za-z_]' "$log" | sed -E 's/ \([0-9]+ ms\)$//' | sort -u)
if [ -n "$skipped" ]; then
  printf 'skipped in this shard:\n%s\n' "$skipped"
  exit 77
fi
