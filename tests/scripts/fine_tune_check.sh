#!/usr/bin/env bash
# examples/fine_tune end to end on a Fashion-MNIST slice: a tiny_cnn feature vector written by
# `hubimg export`, fine-tuned for 3 epochs on 5 400 images (600 validate); the example itself
# fails unless the published model, loaded back, predicts what the in-memory classifier does.
# Checked here: it learned (validation accuracy well above the 0.1 of chance), and `hubimg info`
# reads the published model with its 10 class names and the base's variables among the
# trainable ones.
# Exit 77 (skip) when the dataset is not installed.
# usage: fine_tune_check.sh HUBIMG FINE_TUNE [DATA_DIR]
set -euo pipefail
hubimg="$1"
tool="$2"
data="${3:-/usr/share/datasets/fashion-mnist}"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte; do
  if [ ! -f "$data/$f.gz" ]; then
    echo "SKIPPED: $data/$f.gz not found (Debian package dataset-fashion-mnist)"
    exit 77
  fi
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$hubimg" export tiny_cnn --feature-vector --seed 1 --output "$work/base"
"$tool" "$work/base" "$data" "$work/classifier" 3 6000 28 | tee "$work/out.txt"
accuracy=$(sed -n 's/^validation accuracy \([0-9.]*\) ([0-9]* images)$/\1/p' "$work/out.txt")
seen=$(sed -n 's/^validation accuracy [0-9.]* (\([0-9]*\) images)$/\1/p' "$work/out.txt")
[ -n "$accuracy" ] && [ "$seen" -ge 550 ] ||
  { echo "FAIL: no validation accuracy over about 600 images"; exit 1; }
awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.6) }' ||
  { echo "FAIL: validation accuracy $accuracy < 0.6"; exit 1; }
grep -q "agrees on $seen of $seen validation images" "$work/out.txt"

"$hubimg" info "$work/classifier" --json >"$work/info.json"
/usr/bin/python3 - "$work/info.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
names = info["labels"]["names"]
assert names == [str(i) for i in range(10)], names
trainable = {v["name"] for v in info["variables"] if v["trainable"]}
assert "conv2d/kernel" in trainable, sorted(trainable)[:5]
assert any(n.startswith("dense") for n in trainable), sorted(trainable)
print("fine_tune_check: info lists", len(trainable), "trainable variables and", len(names), "classes")
PY
