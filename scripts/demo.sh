#!/usr/bin/env bash
# The README demo: build hubimg; write a MobileNetV2 (alpha 0.35) feature vector with hubimg's
# own SavedModel writer; fine-tune it with a classifier head on a slice of Fashion-MNIST (Debian's
# dataset-fashion-mnist) and publish the classifier as a SavedModel; then classify held-out
# Fashion-MNIST test images, written as PNG files, with the published model.
# Output: build/demo (removed first). FASHION_MNIST_DIR overrides the dataset folder.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
  t10k-labels-idx1-ubyte; do
  if [ ! -f "$data/$f.gz" ] && [ ! -f "$data/$f" ]; then
    echo "demo: $data/$f.gz not found. The demo trains on Fashion-MNIST from Debian's" \
      "dataset-fashion-mnist package: run 'bash scripts/setup.sh' (or 'sudo apt-get install" \
      "dataset-fashion-mnist') first." >&2
    exit 1
  fi
done

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target hubimg idx_to_png

# One compute thread unless HUBIMG_NUM_THREADS says otherwise: a fine-tuning step on 32x32
# images in batches of 32 is too little work per op to split. On the 2-core development machine
# (shared with other jobs) an epoch of 3 200 images took 4.8 s with 1 thread and 9.7 s with 2 at
# load average 3.8; at load 5.5, 640 images took 1.4 s and 49 s.
export HUBIMG_NUM_THREADS="${HUBIMG_NUM_THREADS:-1}"
out=build/demo
train_examples=20000 # the first 20 000 of the 60 000 training images (10% validate)
test_examples=2000   # the first 2 000 of the 10 000 test images score the model; after them,
#                      the first test image of each class is written as a PNG and classified
rm -rf "$out"
mkdir -p "$out"
printf '%s\n' T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag 'Ankle boot' \
  >"$out/fashion-mnist-classes.txt"

set -x
build/hubimg export mobilenet_v2 --alpha 0.35 --feature-vector --seed 1 --output "$out/base"
build/hubimg retrain "$out/base" "$data" --test "$data" --fine-tune --image-size 32x32 \
  --optimizer adam --learning-rate 0.002 --label-smoothing 0 --epochs 4 \
  --max-examples "$train_examples" --validation-split 0.1 --max-test-examples "$test_examples" \
  --class-names "$out/fashion-mnist-classes.txt" --log "$out/train_log.jsonl" \
  --output "$out/classifier"
build/examples/idx_to_png "$data" "$out/test-images" --prefix t10k --first "$test_examples" \
  --per-class 1 --labels "$out/classifier/assets/labels.txt"
# The class names come with the classifier (its assets/labels.txt).
build/hubimg classify "$out/classifier" "$out"/test-images/*.png --top 1 | tee "$out/classify.txt"
{ set +x; } 2>/dev/null

# True class (from the file name) against the top-1 prediction, for each image.
echo
awk -v test_examples="$test_examples" '
  function slug(s) {
    s = tolower(s)
    gsub(/[^a-z0-9]+/, "_", s)
    gsub(/^_+|_+$/, "", s)
    return s
  }
  FNR == NR { name[slug($0)] = $0; next }  # the labels file: file-name form -> class name
  /\.png$/ { file = $0; next }
  file != "" {
    # "  <class>  <label>  <probability>"; the label may contain spaces.
    label = $0
    sub(/^ *[0-9]+ +/, "", label)
    sub(/ +[0-9.]+$/, "", label)
    base = file
    sub(/.*\//, "", base)
    truth = base
    sub(/^.*_true_/, "", truth)
    sub(/\.png$/, "", truth)
    ok = slug(label) == truth
    correct += ok
    total += 1
    printf "%-34s true %-12s predicted %-12s %s %s\n", base, name[truth], label, $NF,
           ok ? "ok" : "WRONG"
    file = ""
  }
  END {
    printf "\n%d of %d held-out Fashion-MNIST test images classified correctly", correct, total
    printf " (t10k images from %d on, used neither for training nor for the test accuracy)\n",
           test_examples
  }' "$out/classifier/assets/labels.txt" "$out/classify.txt"
test_accuracy="$(sed -n 's/.*"test_accuracy":\([0-9.e-]*\).*/\1/p' "$out/train_log.jsonl")"
echo "test accuracy on the first $test_examples t10k images: $test_accuracy (chance: 0.1)"
