#!/usr/bin/env bash
# hubimg's Einsum kernels (fast and reference) and torch.einsum side by side on one ViT-B/16
# attention layer's einsums, interleaved REPS times; prints the medians as a markdown table.
# Usage: bench/run_attention_peers.sh   (env: BUILD_DIR=build THREADS=2 BATCHES="1 8" REPS=3)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build="${BUILD_DIR:-$here/../build}"
threads="${THREADS:-2}"
reps="${REPS:-3}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for batch in ${BATCHES:-1 8}; do
  for _ in $(seq "$reps"); do
    "$build/bench/attention_bench" --batch "$batch" --threads "$threads" >>"$out"
    "$build/bench/attention_bench" --batch "$batch" --threads "$threads" --reference \
      --iterations 2 >>"$out"
    /usr/bin/python3 "$here/peers/torch_einsum_bench.py" --batch "$batch" --threads "$threads" >>"$out"
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
cells = {}
for r in rows:
    cells.setdefault((r["batch"], r["name"], r["equation"]), {}).setdefault(r["engine"], []).append(r["median_ms"])
print("| batch | einsum | hubimg ms | hubimg reference ms | PyTorch ms | PyTorch / hubimg |")
print("|---:|---|---:|---:|---:|---:|")
for (batch, name, equation), engines in sorted(cells.items()):
    m = {k: statistics.median(v) for k, v in engines.items()}
    print(f"| {batch} | {name} `{equation}` | {m['hubimg']:.2f} | {m['hubimg-reference']:.1f} | "
          f"{m['pytorch']:.2f} | {m['pytorch'] / m['hubimg']:.2f}x |")
PY
