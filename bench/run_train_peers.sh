#!/usr/bin/env bash
# Training speed side by side, interleaved, hubimg against PyTorch doing the same work, REPS
# times each, alternating engines so drift in the VM's speed hits both alike. Prints medians of
# the per-run figures and the ratios; writes the runs to OUT (JSON). Parts (PARTS):
#   step      one full training step of the bench network: `hubimg bench --train` and
#             bench/peers/torch_train_bench.py (training-mode forward, sparse softmax
#             cross-entropy on seeded random labels, backward to every trainable variable, SGD
#             momentum 0.9, moving statistics updated)
#   finetune  the consumer model's fine-tuning step (hub layer trainable + Dropout 0.2 +
#             Dense(5), OPTIMIZER): build/bench/classifier_bench --mode finetune against
#             bench/peers/torch_classifier_bench.py --mode finetune, on the network as a feature
#             vector (FV_MODELS_DIR, made by make_bench_models --feature-vector --dump-npy)
#   head      a frozen-base head-only epoch over HEAD_IMAGES images: hubimg with its feature
#             cache (epoch 1 computes the features once, later epochs train the head on them)
#             against PyTorch computing the base's features under no_grad every step (as Keras
#             does without a cache); compared per epoch and over 5 epochs
#
#   bench/run_train_peers.sh            (MobileNetV2, batch 32, 2 threads, 3 repetitions)
#
# Environment: MODELS (default mobilenet_v2), BATCH (32), THREADS (2), REPS (3), ITERS (5 timed
# steps per run), PT_FORMAT (best | channels_last | contiguous; best tries both each run),
# PARTS ("step finetune head"), OPTIMIZER (adam | sgd, finetune/head), HEAD_IMAGES (2000),
# OUT (default out/peers/train/<date>.json), BUILD_DIR, MODELS_DIR, FV_MODELS_DIR
# (default out/models_fv).
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

read -r -a parts <<<"${PARTS:-step finetune head}"
OPTIMIZER="${OPTIMIZER:-adam}" HEAD_IMAGES="${HEAD_IMAGES:-2000}"
FV_MODELS_DIR="${FV_MODELS_DIR:-$ROOT/out/models_fv}"
has_part() { [[ " ${parts[*]} " == *" $1 "* ]]; }
tag() { # adds model, rep and part to the JSON on stdin
  "$PY" -c 'import json,sys; d=json.load(sys.stdin); d.update(model=sys.argv[1], rep=int(sys.argv[2]), part=sys.argv[3]); d.setdefault("engine", "hubimg"); print(json.dumps(d))' "$@"
}
if has_part finetune || has_part head; then
  for m in "${models[@]}"; do
    dir="$FV_MODELS_DIR/$m"
    if [ ! -f "$dir/weights_manifest.json" ] || [ ! -d "$dir/npy" ] ||
      [ "$BUILD_DIR/bench/make_bench_models" -nt "$dir/weights_manifest.json" ]; then
      echo "generating $dir (feature vector)" >&2
      rm -rf "$dir"
      "$BUILD_DIR/bench/make_bench_models" "$FV_MODELS_DIR" --only "$m" --feature-vector \
        --dump-npy >/dev/null
    fi
  done
  [ -x "$BUILD_DIR/bench/classifier_bench" ] || die "$BUILD_DIR/bench/classifier_bench is missing: build first"
fi

for m in "${models[@]}"; do
  for rep in $(seq 1 "$REPS"); do
    if has_part finetune; then
      echo "-- $m rep $rep/$REPS: finetune, hubimg" >&2
      "$BUILD_DIR/bench/classifier_bench" "$FV_MODELS_DIR/$m" --mode finetune --batch "$BATCH" \
        --threads "$THREADS" --iterations "$ITERS" --optimizer "$OPTIMIZER" | tag "$m" "$rep" finetune >>"$runs"
      echo "-- $m rep $rep/$REPS: finetune, pytorch" >&2
      "$PY" -W ignore "$PEERS/torch_classifier_bench.py" "$FV_MODELS_DIR/$m" --mode finetune \
        --batch "$BATCH" --threads "$THREADS" --iterations "$ITERS" --optimizer "$OPTIMIZER" \
        --memory-format "$PT_FORMAT" | tag "$m" "$rep" finetune >>"$runs"
    fi
    if has_part head; then
      echo "-- $m rep $rep/$REPS: head-only epoch, hubimg" >&2
      "$BUILD_DIR/bench/classifier_bench" "$FV_MODELS_DIR/$m" --mode head --batch "$BATCH" \
        --threads "$THREADS" --images "$HEAD_IMAGES" --epochs 3 --optimizer "$OPTIMIZER" |
        tag "$m" "$rep" head >>"$runs"
      echo "-- $m rep $rep/$REPS: head-only epoch, pytorch" >&2
      "$PY" -W ignore "$PEERS/torch_classifier_bench.py" "$FV_MODELS_DIR/$m" --mode head \
        --batch "$BATCH" --threads "$THREADS" --images "$HEAD_IMAGES" --optimizer "$OPTIMIZER" \
        --memory-format "$PT_FORMAT" | tag "$m" "$rep" head >>"$runs"
    fi
    has_part step || continue
    echo "-- $m rep $rep/$REPS: hubimg" >&2
    "$BUILD_DIR/hubimg" bench "$MODELS_DIR/$m" --train --batch "$BATCH" --threads "$THREADS" \
      --iterations "$ITERS" --json |
      "$PY" -c 'import json,sys; d=json.load(sys.stdin); d.update(model=sys.argv[1], rep=int(sys.argv[2]), engine="hubimg", part="step"); print(json.dumps(d))' "$m" "$rep" >>"$runs"
    echo "-- $m rep $rep/$REPS: pytorch ($PT_FORMAT)" >&2
    "$PY" -W ignore "$PEERS/torch_train_bench.py" "$MODELS_DIR/$m" --batch "$BATCH" \
      --threads "$THREADS" --iterations "$ITERS" --memory-format "$PT_FORMAT" --json |
      "$PY" -c 'import json,sys; d=json.load(sys.stdin); d.update(model=sys.argv[1], rep=int(sys.argv[2]), part="step"); print(json.dumps(d))' "$m" "$rep" >>"$runs"
  done
done

"$PY" - "$runs" "$OUT" <<'PYEOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rows = []
med = lambda xs: statistics.median(xs)
for model in dict.fromkeys(r["model"] for r in runs):
    for part in ("step", "finetune", "head"):
        sel = [r for r in runs if r["model"] == model and r.get("part", "step") == part]
        if not sel:
            continue
        by = {e: [r for r in sel if r["engine"] == e] for e in ("hubimg", "pytorch")}
        if not by["hubimg"] or not by["pytorch"]:
            continue
        if part in ("step", "finetune"):
            title = "training step" if part == "step" else "consumer fine-tune step"
            print(f"\n{model} {title} (batch {sel[0]['batch']}"
                  + (f", {sel[0].get('optimizer')}" if part == "finetune" else ", SGD momentum")
                  + f"): {'engine':8s} median ms/step, images/s, runs (ms), peak RSS MB")
            m = {}
            for e, rs in by.items():
                m[e] = med([r["median_ms"] for r in rs])
                rss = max(r.get("peak_rss_mb", 0) for r in rs)
                each = " ".join("%.0f" % r["median_ms"] for r in rs)
                print(f"  {e:8s} {m[e]:9.1f} {sel[0]['batch'] * 1000 / m[e]:8.1f}   [{each}]  "
                      f"{rss:6.0f}")
            ratio = m["pytorch"] / m["hubimg"]
            print(f"  hubimg is {ratio:.2f}x PyTorch's speed (PyTorch ms / hubimg ms)")
            rows.append({"model": model, "part": part, "hubimg_ms": m["hubimg"],
                         "pytorch_ms": m["pytorch"], "speedup": ratio})
        else:
            h, t = by["hubimg"], by["pytorch"]
            n = h[0]["images"]
            h1 = med([r["first_epoch_ms"] for r in h])
            hc = med([r["cached_epoch_ms"] for r in h])
            te = med([r["first_epoch_ms"] for r in t])
            h5, t5 = h1 + 4 * hc, 5 * te
            print(f"\n{model} head-only epoch, frozen base, {n} images, batch {h[0]['batch']}, "
                  f"{h[0].get('optimizer')}: ms per epoch (images/s), peak RSS MB")
            print(f"  hubimg   epoch 1 (features cached) {h1:9.0f} ({n * 1000 / h1:8.1f}), later "
                  f"epochs {hc:7.1f} ({n * 1000 / hc:9.0f}), 5 epochs {h5:8.0f}   "
                  f"[{' '.join('%.0f/%.1f' % (r['first_epoch_ms'], r['cached_epoch_ms']) for r in h)}]"
                  f"  {max(r['peak_rss_mb'] for r in h):6.0f}")
            print(f"  pytorch  every epoch (no_grad features) {te:9.0f} ({n * 1000 / te:8.1f}), "
                  f"5 epochs {t5:8.0f}   [{' '.join('%.0f' % r['first_epoch_ms'] for r in t)}]"
                  f"  {max(r['peak_rss_mb'] for r in t):6.0f}")
            print(f"  hubimg is {te / h1:.2f}x PyTorch on epoch 1, {te / hc:.0f}x on a cached epoch, "
                  f"{t5 / h5:.2f}x over 5 epochs")
            rows.append({"model": model, "part": part, "hubimg_first_epoch_ms": h1,
                         "hubimg_cached_epoch_ms": hc, "pytorch_epoch_ms": te,
                         "speedup_epoch1": te / h1, "speedup_cached": te / hc,
                         "speedup_5_epochs": t5 / h5})
json.dump({"runs": runs, "summary": rows}, open(sys.argv[2], "w"), indent=1)
print(f"-> {sys.argv[2]}")
PYEOF
