#!/usr/bin/env bash
# Every case of ../shared/fixtures/golden-train through `hubimg grad` and
# `hubimg info --regularization-losses`, with the shared checker. Exit 77 (skip) without ../shared.
set -euo pipefail
hubimg="$1"
shared="$2"
if [ -z "$shared" ] || [ ! -f "$shared/tools/golden_check.py" ] || [ ! -d "$shared/fixtures/golden-train" ]; then
  echo "SKIPPED: no shared fixtures (HUBIMG_SHARED_DIR='$shared')"
  exit 77
fi
exec /usr/bin/python3 "$shared/tools/golden_check.py" "$shared/fixtures/golden-train" "$shared/fixtures" \
  --grad-cmd "$hubimg grad {model} {inputs} {cotangents} {training} --output {outdir}" \
  --reg-cmd "$hubimg info {model} --regularization-losses {outdir}/regularization_losses.npy" \
  --jobs 2
