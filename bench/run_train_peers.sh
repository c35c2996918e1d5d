#!/usr/bin/env bash
# One full training step side by side, interleaved: `hubimg bench --train` and PyTorch doing the
# same step (bench/peers/torch_train_bench.py: training-mode forward, sparse softmax cross-entropy
# on seeded random labels, backward to every trainable variable, SGD momentum 0.9, moving
# statistics updated), on the same generated network, REPS times each, alternating engines so
# drift in the VM's speed hits both alike. Prints medians of the per-run medians and the ratio;
# writes the runs to OUT (JSON).
#
#   bench/run_train_peers.sh            (MobileNetV2, batch 32, 2 threads, 3 repetitions)
#
# Environment: MODELS (default mobilenet_v2), BATCH (32), THREADS (2), REPS (3), ITERS (5 timed
# steps per run), PT_FORMAT (best | channels_last | contiguous; best tries both each run),
# OUT (default out/peers/train/<date>.json), BUILD_DIR, MODELS_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/peers/common.sh"

require_tools
"$PY" -c 'import numpy, torch' 2>/dev/null || die "$PY cannot import numpy/torch: run bench/setup_peers.sh"
ensure_models
read -r -a models <<<"${MODELS:-mobilenet_v2}"
BATCH="${BATCH:-32}" THREADS="${THREADS:-2}" REPS="${REPS:-3}" ITERS="${ITERS:-5}"
PT_FORMAT="${PT_FORMAT:-best}"
OUT="${OUT:-$ROOT/out/peers/train/$(date -u +%Y-%m-%dT%H%M%S).json}"
mkdir -p "$(dirname "$OUT")"
runs="$(mktemp)"
trap 'rm -f "$runs"' EXIT

for m in "${models[@]}"; do
  for rep in $(seq 1 "$REPS"); do
    echo "-- $m rep $rep/$REPS: hubimg" >&2
    "$BUILD_DIR/hubimg" bench "$MODELS_DIR/$m" --train --batch "$BATCH" --threads "$THREADS" \
      --iterations "$ITERS" --json |
      "$PY" -c 'import json,sys; d=json.load(sys.stdin); d.update(model=sys.argv[1], rep=int(sys.argv[2]), engine="hubimg"); print(json.dumps(d))' "$m" "$rep" >>"$runs"
    echo "-- $m rep $rep/$REPS: pytorch ($PT_FORMAT)" >&2
    "$PY" -W ignore "$PEERS/torch_train_bench.py" "$MODELS_DIR/$m" --batch "$BATCH" \
      --threads "$THREADS" --iterations "$ITERS" --memory-format "$PT_FORMAT" --json |
      "$PY" -c 'import json,sys; d=json.load(sys.stdin); d.update(model=sys.argv[1], rep=int(sys.argv[2])); print(json.dumps(d))' "$m" "$rep" >>"$runs"
  done
done

"$PY" - "$runs" "$OUT" <<'PYEOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rows = []
print(f"{'model':14s} {'engine':8s} {'median ms/step':>15s} {'runs (ms)':>28s} {'peak RSS MB':>12s}")
for model in dict.fromkeys(r["model"] for r in runs):
    med = {}
    for engine in ("hubimg", "pytorch"):
        rs = [r for r in runs if r["model"] == model and r["engine"] == engine]
        med[engine] = statistics.median(r["median_ms"] for r in rs)
        rss = max(r.get("peak_rss_mb", 0) for r in rs)
        each = " ".join("%.0f" % r["median_ms"] for r in rs)
        print(f"{model:14s} {engine:8s} {med[engine]:15.1f} {each:>28s} {rss:12.0f}")
    ratio = med["pytorch"] / med["hubimg"]
    rows.append({"model": model, "hubimg_ms": med["hubimg"], "pytorch_ms": med["pytorch"],
                 "speedup": ratio})
    print(f"{model:14s} hubimg is {ratio:.2f}x PyTorch's speed (PyTorch ms / hubimg ms)")
json.dump({"runs": runs, "summary": rows}, open(sys.argv[2], "w"), indent=1)
print(f"-> {sys.argv[2]}")
PYEOF
