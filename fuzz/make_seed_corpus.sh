#!/usr/bin/env bash
# Builds seed corpora for the fuzz targets from the real fixtures:
#   fuzz/corpus/fuzz_index_table/  every fixture's variables.index
#   fuzz/corpus/fuzz_bundle_read/  small fixtures packed as fuzz_bundle_read.cc expects
#   fuzz/corpus/fuzz_saved_model_pb/  small fixtures' saved_model.pb
#   fuzz/corpus/fuzz_npy/  small golden .npy files;  fuzz/corpus/fuzz_image/  sample images
#   fuzz/corpus/fuzz_model_pb/  one byte choosing the variables (fuzz_model_pb.cc) + saved_model.pb
#   fuzz/corpus/fuzz_model_pbtxt/  small saved_model.pb as text (protoc --decode) and TF1 graphs
#   fuzz/corpus/fuzz_archive/  small SavedModels as .tar.gz, .tar and .zip
#   fuzz/corpus/fuzz_idx/, fuzz/corpus/fuzz_checkpoint/  small IDX pairs and training checkpoints
# Usage: fuzz/make_seed_corpus.sh [path/to/shared] [corpus dir]
#   (defaults: ../shared beside the checkout, fuzz/corpus)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
shared="${1:-$here/../../shared}"
real="$shared/fixtures/real"
if [[ ! -d "$real" ]]; then
  echo "fixtures not found at $real" >&2
  exit 1
fi

corpus="${2:-$here/corpus}"
index_dir="$corpus/fuzz_index_table"
bundle_dir="$corpus/fuzz_bundle_read"
pb_dir="$corpus/fuzz_saved_model_pb"
npy_dir="$corpus/fuzz_npy"
image_dir="$corpus/fuzz_image"
mkdir -p "$index_dir" "$bundle_dir" "$pb_dir" "$npy_dir" "$image_dir"

for pb in "$real"/*/saved_model/saved_model.pb "$real"/tf_testdata/*/saved_model/saved_model.pb; do
  name="$(basename "$(dirname "$(dirname "$pb")")")"
  (($(wc -c < "$pb") <= 256 * 1024)) && cp "$pb" "$pb_dir/$name.pb"
done
for npy in "$shared"/fixtures/golden/*/*.npy; do
  (($(wc -c < "$npy") <= 4096)) && cp "$npy" "$npy_dir/$(basename "$(dirname "$npy")")_$(basename "$npy")"
done
for img in "$real"/*/samples/*.{jpg,png}; do
  [[ -f "$img" ]] && cp "$img" "$image_dir/"
done
# The fixtures' samples are JPEG and PNG only: small GIFs (animated with a local color map and
# transparency, interlaced), WebP and BMP files beside them.
/usr/bin/python3 - "$image_dir" <<'PY'
import os, sys
from PIL import Image
out = sys.argv[1]
pixels = [(17 * x + 3 * y, 255 - 9 * x, 40 * y) for y in range(12) for x in range(9)]
still = Image.new("RGB", (9, 12))
still.putdata(pixels)
frames = [still.quantize(16), still.rotate(90, expand=True).quantize(8), still.crop((2, 2, 7, 9)).quantize(4)]
frames[0].save(os.path.join(out, "animated.gif"), save_all=True, append_images=frames[1:],
               transparency=3, duration=50, loop=0, interlace=False)
still.quantize(64).save(os.path.join(out, "interlaced.gif"), interlace=True)
still.save(os.path.join(out, "lossless.webp"), lossless=True)
still.save(os.path.join(out, "rgb.bmp"))
PY

# Writes $1 as a 4-byte little-endian integer.
u32le() {
  local n=$1
  printf "\\x$(printf %02x $((n & 255)))\\x$(printf %02x $(((n >> 8) & 255)))"
  printf "\\x$(printf %02x $(((n >> 16) & 255)))\\x$(printf %02x $(((n >> 24) & 255)))"
}

max_bundle_bytes=$((64 * 1024))
for variables in "$real"/*/saved_model/variables "$real"/tf_testdata/*/saved_model/variables; do
  [[ -f "$variables/variables.index" ]] || continue
  name="$(basename "$(dirname "$(dirname "$variables")")")"
  cp "$variables/variables.index" "$index_dir/$name.index"

  shards=("$variables"/variables.data-*)
  total=$(cat "$variables/variables.index" "${shards[@]}" | wc -c)
  if ((total > max_bundle_bytes)); then
    continue  # large seeds slow every execution down
  fi
  {
    # Flags: number of shards - 1; one seed with and one without checksum verification below.
    printf "\\x$(printf %02x $((${#shards[@]} - 1)))"
    u32le "$(wc -c < "$variables/variables.index")"
    cat "$variables/variables.index"
    for ((i = 0; i + 1 < ${#shards[@]}; ++i)); do
      u32le "$(wc -c < "${shards[$i]}")"
      cat "${shards[$i]}"
    done
    cat "${shards[-1]}"
  } > "$bundle_dir/$name.bundle"
  # The same input with checksum verification on.
  { printf "\\x$(printf %02x $((0x80 | (${#shards[@]} - 1))))"; tail -c +2 "$bundle_dir/$name.bundle"; } \
    > "$bundle_dir/$name.verified.bundle"
done
# fuzz_model_pb: the variables byte matches kFixtures in fuzz_model_pb.cc (0 = no variables).
model_pb_dir="$corpus/fuzz_model_pb"
model_txt_dir="$corpus/fuzz_model_pbtxt"
mkdir -p "$model_pb_dir" "$model_txt_dir"
k=1
for fixture in mnist_cnn_tf231 tf_testdata/serving_half_plus_two_tf2_cpu \
  tf_testdata/tfnet_simple_model_from_auto_compile; do
  pb="$real/$fixture/saved_model/saved_model.pb"
  [[ -f "$pb" ]] && { printf "\\x$(printf %02x $k)"; cat "$pb"; } > "$model_pb_dir/$(basename "$fixture").pb"
  k=$((k + 1))
done
for pb in "$real"/tf_testdata/*/saved_model/saved_model.pb; do
  name="$(basename "$(dirname "$(dirname "$pb")")")"
  (($(wc -c < "$pb") <= 64 * 1024)) || continue
  { printf '\x00'; cat "$pb"; } > "$model_pb_dir/$name.novars.pb"
  if command -v protoc > /dev/null; then
    protoc --decode=hubimg.tf.SavedModel -I "$here/../src/format/proto" saved_model.proto \
      < "$pb" > "$model_txt_dir/$name.pbtxt" 2> /dev/null || rm -f "$model_txt_dir/$name.pbtxt"
  fi
done
# A small TF1 graph: MatMul+BiasAdd+Relu, Pad, and a function call.
cat > "$model_txt_dir/tf1_layer.pbtxt" << 'EOF'
meta_graphs { meta_info_def { tags: "serve" } graph_def {
  node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
  node { name: "w" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 4 } dim { size: 2 } } float_val: 0.5 float_val: -1 } } } }
  node { name: "b" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 2 } } float_val: 0.1 } } } }
  node { name: "p" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape { dim { size: 2 } dim { size: 2 } } int_val: 0 int_val: 1 int_val: 0 int_val: 2 } } } }
  node { name: "m" op: "MatMul" input: "x" input: "w" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "mb" op: "BiasAdd" input: "m" input: "b" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "r" op: "Relu" input: "mb" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "y" op: "Pad" input: "r" input: "p" attr { key: "T" value { type: DT_FLOAT } } attr { key: "Tpaddings" value { type: DT_INT32 } } }
  node { name: "c" op: "PartitionedCall" input: "y" attr { key: "f" value { func { name: "f" } } } attr { key: "Tin" value { list { type: DT_FLOAT } } } attr { key: "Tout" value { list { type: DT_FLOAT } } } }
  library { function { signature { name: "f" input_arg { name: "x" type: DT_FLOAT } output_arg { name: "y" type: DT_FLOAT } }
    node_def { name: "t" op: "Tanh" input: "x" attr { key: "T" value { type: DT_FLOAT } } }
    ret { key: "y" value: "t:y:0" } } } }
  signature_def { key: "serving_default" value {
    inputs { key: "x" value { name: "x:0" dtype: DT_FLOAT tensor_shape { dim { size: -1 } dim { size: 4 } } } }
    outputs { key: "y" value { name: "c:0" dtype: DT_FLOAT } } } } }
EOF
# TF1 tf.cond as Keras 1.x writes it on the learning phase: Switch/Merge on a constant predicate,
# branch constants hanging on the pivots by control inputs.
cat > "$model_txt_dir/tf1_cond.pbtxt" << 'EOF'
meta_graphs { meta_info_def { tags: "serve" } graph_def {
  node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
  node { name: "lp/input" op: "Const" attr { key: "dtype" value { type: DT_BOOL } } attr { key: "value" value { tensor { dtype: DT_BOOL tensor_shape { } bool_val: false } } } }
  node { name: "lp" op: "PlaceholderWithDefault" input: "lp/input" attr { key: "dtype" value { type: DT_BOOL } } attr { key: "shape" value { shape { } } } }
  node { name: "cond/Switch" op: "Switch" input: "lp" input: "lp" attr { key: "T" value { type: DT_BOOL } } }
  node { name: "cond/switch_t" op: "Identity" input: "cond/Switch:1" attr { key: "T" value { type: DT_BOOL } } }
  node { name: "cond/switch_f" op: "Identity" input: "cond/Switch" attr { key: "T" value { type: DT_BOOL } } }
  node { name: "cond/pred_id" op: "Identity" input: "lp" attr { key: "T" value { type: DT_BOOL } } }
  node { name: "cond/Switch_1" op: "Switch" input: "x" input: "cond/pred_id" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "cond/two" op: "Const" input: "^cond/switch_t" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { } float_val: 2 } } } }
  node { name: "cond/mul" op: "Mul" input: "cond/Switch_1:1" input: "cond/two" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "cond/one" op: "Const" input: "^cond/switch_f" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { } float_val: 1 } } } }
  node { name: "cond/add" op: "AddV2" input: "cond/Switch_1" input: "cond/one" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "cond/Merge" op: "Merge" input: "cond/mul" input: "cond/add" attr { key: "T" value { type: DT_FLOAT } } attr { key: "N" value { i: 2 } } } }
  signature_def { key: "serving_default" value {
    inputs { key: "x" value { name: "x:0" dtype: DT_FLOAT tensor_shape { dim { size: -1 } } } }
    outputs { key: "y" value { name: "cond/Merge:0" dtype: DT_FLOAT } }
    outputs { key: "i" value { name: "cond/Merge:1" dtype: DT_INT32 } } } } }
EOF
# Patches and a roll, as Keras vision transformers write them (tf.image.extract_patches, tf.roll),
# the top scores of each row (tf.math.top_k), and the resize methods beside bilinear with LRN.
cat > "$model_txt_dir/tf1_patches.pbtxt" << 'EOF'
meta_graphs { meta_info_def { tags: "serve" } graph_def {
  node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
  node { name: "p" op: "ExtractImagePatches" input: "x" attr { key: "T" value { type: DT_FLOAT } } attr { key: "ksizes" value { list { i: 1 i: 2 i: 2 i: 1 } } } attr { key: "strides" value { list { i: 1 i: 2 i: 2 i: 1 } } } attr { key: "rates" value { list { i: 1 i: 1 i: 1 i: 1 } } } attr { key: "padding" value { s: "SAME" } } }
  node { name: "s" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape { dim { size: 2 } } int_val: 1 int_val: -1 } } } }
  node { name: "a" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape { dim { size: 2 } } int_val: 1 int_val: 2 } } } }
  node { name: "y" op: "Roll" input: "p" input: "s" input: "a" attr { key: "T" value { type: DT_FLOAT } } attr { key: "Tshift" value { type: DT_INT32 } } attr { key: "Taxis" value { type: DT_INT32 } } }
  node { name: "k" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape { } int_val: 3 } } } }
  node { name: "top" op: "TopKV2" input: "y" input: "k" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "hw" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value { tensor { dtype: DT_INT32 tensor_shape { dim { size: 2 } } int_val: 3 int_val: 7 } } } }
  node { name: "sc" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 2 } } float_val: 0.6 float_val: 1.75 } } } }
  node { name: "tr" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } } attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape { dim { size: 2 } } float_val: 0.25 float_val: -0.5 } } } }
  node { name: "bic" op: "ResizeBicubic" input: "x" input: "hw" attr { key: "T" value { type: DT_FLOAT } } attr { key: "half_pixel_centers" value { b: true } } }
  node { name: "lrn" op: "LRN" input: "bic" attr { key: "T" value { type: DT_FLOAT } } attr { key: "depth_radius" value { i: 1 } } }
  node { name: "area" op: "ResizeArea" input: "x" input: "hw" attr { key: "T" value { type: DT_FLOAT } } }
  node { name: "st" op: "ScaleAndTranslate" input: "x" input: "hw" input: "sc" input: "tr" attr { key: "T" value { type: DT_FLOAT } } attr { key: "kernel_type" value { s: "lanczos3" } } } }
  signature_def { key: "serving_default" value {
    inputs { key: "x" value { name: "x:0" dtype: DT_FLOAT tensor_shape { dim { size: -1 } dim { size: 5 } dim { size: 4 } dim { size: 2 } } } }
    outputs { key: "y" value { name: "y:0" dtype: DT_FLOAT } }
    outputs { key: "scores" value { name: "top:0" dtype: DT_FLOAT } }
    outputs { key: "classes" value { name: "top:1" dtype: DT_INT32 } }
    outputs { key: "bicubic_lrn" value { name: "lrn:0" dtype: DT_FLOAT } }
    outputs { key: "area" value { name: "area:0" dtype: DT_FLOAT } }
    outputs { key: "scaled" value { name: "st:0" dtype: DT_FLOAT } } } } }
EOF

archive_dir="$corpus/fuzz_archive"
mkdir -p "$archive_dir"
for fixture in tfjs_node_times_three_float serving_half_plus_two_tf2_cpu; do
  model="$real/tf_testdata/$fixture/saved_model"
  [[ -d "$model" ]] || continue
  tar -C "$model" -czf "$archive_dir/$fixture.tar.gz" .
  tar -C "$model" -cf "$archive_dir/$fixture.tar" .
  /usr/bin/python3 -c 'import os, sys, zipfile
root, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for folder, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            z.write(path, os.path.join("m", os.path.relpath(path, root)))' "$model" "$archive_dir/$fixture.zip"
done

# fuzz_idx: two bytes (labels file length, little-endian), labels, images; plain and gzip'd.
# fuzz_checkpoint: checkpoint bodies without their trailing checksum (the harness appends it).
idx_dir="$corpus/fuzz_idx"
checkpoint_dir="$corpus/fuzz_checkpoint"
mkdir -p "$idx_dir" "$checkpoint_dir"
/usr/bin/python3 - "$idx_dir" "$checkpoint_dir" <<'PY'
import gzip, os, struct, sys
idx_dir, checkpoint_dir = sys.argv[1], sys.argv[2]
labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + bytes([0, 1, 2])
images = bytes([0, 0, 8, 3]) + struct.pack(">III", 3, 2, 4) + bytes(range(0, 240, 10))
for name, (l, i) in {"plain": (labels, images),
                     "gzip": (gzip.compress(labels, mtime=0), gzip.compress(images, mtime=0))}.items():
    with open(os.path.join(idx_dir, name), "wb") as f:
        f.write(struct.pack("<H", len(l)) + l + i)
def entry(name, dtype, dims, data):
    return (struct.pack("<I", len(name)) + name + struct.pack("<iI", dtype, len(dims)) +
            b"".join(struct.pack("<q", d) for d in dims) + data)
body = b"HUBIMG-CKPT-1\n" + struct.pack("<Q", 3)
body += entry(b"head/kernel", 1, [2, 3], struct.pack("<6f", 1, -2, 3, 0.5, 0, 7))
body += entry(b"step", 9, [], struct.pack("<q", 42))        # int64 scalar
body += entry(b"mask", 4, [4], bytes([1, 0, 255, 7]))      # uint8
with open(os.path.join(checkpoint_dir, "three_tensors"), "wb") as f:
    f.write(body)
PY

echo "seeds: $(ls "$index_dir" | wc -l) index tables, $(ls "$bundle_dir" | wc -l) bundles," \
  "$(ls "$pb_dir" | wc -l) saved_model.pb, $(ls "$npy_dir" | wc -l) npy, $(ls "$image_dir" | wc -l) images," \
  "$(ls "$model_pb_dir" | wc -l) model pb, $(ls "$model_txt_dir" | wc -l) model pbtxt," \
  "$(ls "$archive_dir" | wc -l) archives, $(ls "$idx_dir" | wc -l) IDX pairs," \
  "$(ls "$checkpoint_dir" | wc -l) checkpoints"
