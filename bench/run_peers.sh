#!/usr/bin/env bash
# Side-by-side throughput of hubimg, ONNX Runtime and PyTorch on the three bench networks
# (MobileNetV2 1.0, EfficientNet-B0, ResNet-50 v1.5 at 224x224, the same seeded weights in every
# engine), at batch 1 and 32, interleaved: every repetition runs each (model, batch) cell on all
# engines, the engine order rotated by one from each repetition to the next. Then prints a table
# of images/s (median over repetitions), hubimg / best peer, and each engine's fraction of the
# machine's fp32 FMA peak (bench/fma_peak), and saves the raw results as JSON.
#
#   bench/run_peers.sh            # prerequisites: hubimg built in build/, bench/setup_peers.sh
#
# Duration on the idle 2-core machine: ~20 min with REPS=3 PEER_THREADS="1 2", most of it
# PyTorch's eager and TorchScript variants at batch 32; about half that with the defaults.
#
# Environment (defaults in brackets):
#   REPS [2]              repetitions
#   THREADS [2]           threads given to hubimg (and the peers, unless PEER_THREADS says)
#   PEER_THREADS [$THREADS]  thread counts to measure ONNX Runtime and PyTorch at, e.g. "1 2";
#                         the table takes each peer's best (on a busy machine 1 thread can win)
#   BATCHES ["1 32"]      batch sizes
#   MODELS ["mobilenet_v2 efficientnet_b0 resnet50"]
#   PEER_ITERS_B1 [10]    timed calls per measurement of every engine at batch 1
#   PEER_ITERS_BIG [3]    ... at larger batches
#   TORCH_MODES ["eager frozen ofi"]  PyTorch variants; the table shows the best (see
#                         bench/peers/torch_bench.py)
#   PEER_TIMEOUT [60]     seconds a peer measurement may take; one that times out is recorded
#                         as such and that variant is skipped in later repetitions (PyTorch's
#                         OpenMP threads can slow down 10-100x when the cores are shared)
#   CHECK [1]             run bench/check_peers.sh first (abort on a mismatch)
#   OUT [out/peers]       results: raw/*.json, results.json, table.md
#   BUILD_DIR [build], MODELS_DIR [out/models]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/bench/peers/common.sh"

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi
[ $# -eq 0 ] || die "no arguments expected (configure with environment variables; see --help)"

REPS="${REPS:-2}"
THREADS="${THREADS:-2}"
read -r -a PEER_THREADS <<<"${PEER_THREADS:-$THREADS}"
BATCHES="${BATCHES:-1 32}"
read -r -a BENCH_MODELS <<<"${MODELS:-${BENCH_MODELS[*]}}"
PEER_ITERS_B1="${PEER_ITERS_B1:-10}"
PEER_ITERS_BIG="${PEER_ITERS_BIG:-3}"
read -r -a TORCH_MODES <<<"${TORCH_MODES:-eager frozen ofi}"
PEER_TIMEOUT="${PEER_TIMEOUT:-60}"
CHECK="${CHECK:-1}"
OUT="${OUT:-$ROOT/out/peers}"

require_tools
require_peers
ensure_models
ensure_onnx
if [ "$CHECK" = 1 ]; then
  CHECK_DIR="$OUT/check" "$ROOT/bench/check_peers.sh" ||
    die "the engines disagree on the logits: not benchmarking (see above)"
fi

RAW="$OUT/raw"
rm -rf "$RAW"
mkdir -p "$RAW"
echo "measuring the fp32 FMA peak"
"$BUILD_DIR/bench/fma_peak" --threads "$THREADS" --json >"$RAW/fma_peak.json"

# Engines as NAME_tTHREADS: hubimg, onnxruntime, pytorch-MODE.
engines=("hubimg_t$THREADS")
for t in "${PEER_THREADS[@]}"; do
  engines+=("onnxruntime_t$t")
  for mode in "${TORCH_MODES[@]}"; do engines+=("pytorch-${mode}_t$t"); done
done

# run_engine ENGINE_tN MODEL BATCH REP: one measurement, its JSON in $RAW; returns 1 on failure
# (called from `if`, where set -e is off: hence the explicit `|| return 1`).
run_engine() {
  local engine=${1%_t*} threads=${1##*_t} model=$2 batch=$3 rep=$4 iters out rc=0
  out="$RAW/r${rep}_${model}_b${batch}_$1.json"
  if [ -n "${timed_out[$model/$batch/$1]:-}" ]; then
    printf '  %-16s b%-3s %-20s skipped (timed out before)\n' "$model" "$batch" "$1"
    return 0
  fi
  case $engine in
    hubimg)
      iters=$PEER_ITERS_B1
      ((batch == 1)) || iters=$PEER_ITERS_BIG
      "$BUILD_DIR/hubimg" bench "$MODELS_DIR/$model" --batch "$batch" --threads "$threads" \
        --iterations "$iters" --json >"$out.tmp" || return 1
      ;;
    onnxruntime)
      iters=$PEER_ITERS_B1
      ((batch == 1)) || iters=$PEER_ITERS_BIG
      timeout "$PEER_TIMEOUT" node "$PEERS/ort_bench.js" "$ONNX_DIR/$model.onnx" \
        --batch "$batch" --threads "$threads" --iterations "$iters" --json >"$out.tmp" || rc=$?
      ;;
    pytorch-*)
      iters=$PEER_ITERS_B1
      ((batch == 1)) || iters=$PEER_ITERS_BIG
      timeout "$PEER_TIMEOUT" "$PY" -W ignore "$PEERS/torch_bench.py" "$MODELS_DIR/$model" \
        --mode "${engine#pytorch-}" --batch "$batch" --threads "$threads" --iterations "$iters" \
        --json >"$out.tmp" || rc=$?
      ;;
  esac
  if ((rc == 124)); then
    timed_out[$model/$batch/$1]=1
    rm -f "$out.tmp"
    echo "{\"timeout_s\": $PEER_TIMEOUT}" >"${out%.json}.timeout"
    printf '  %-16s b%-3s %-20s timed out after %s s\n' "$model" "$batch" "$1" "$PEER_TIMEOUT"
    return 0
  fi
  ((rc == 0)) || return 1
  mv "$out.tmp" "$out" || return 1
  printf '  %-16s b%-3s %-20s %9.2f images/s\n' "$model" "$batch" "$1" \
    "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["images_per_second"])' "$out")"
}

declare -A timed_out=()
start=$SECONDS
failures=0
for ((rep = 0; rep < REPS; ++rep)); do
  echo "repetition $((rep + 1))/$REPS"
  n=${#engines[@]}
  for model in "${BENCH_MODELS[@]}"; do
    for batch in $BATCHES; do
      for ((k = 0; k < n; ++k)); do
        engine=${engines[$(((k + rep) % n))]}
        if ! run_engine "$engine" "$model" "$batch" "$rep"; then
          echo "  $model b$batch $engine FAILED" >&2
          failures=$((failures + 1))
        fi
      done
    done
  done
done
echo "benchmarks took $((SECONDS - start)) s"

"$PY" "$PEERS/summarize.py" --raw "$RAW" --models-dir "$MODELS_DIR" --out "$OUT" \
  --config "reps=$REPS threads=$THREADS peer_threads=$(IFS=,; echo "${PEER_THREADS[*]}") iters=$PEER_ITERS_B1/$PEER_ITERS_BIG \
torch_modes=${TORCH_MODES[*]} peer_timeout=${PEER_TIMEOUT}s"
((failures == 0)) || die "$failures measurement(s) failed"
