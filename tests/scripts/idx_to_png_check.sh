#!/usr/bin/env bash
# examples/idx_to_png on small slices of Fashion-MNIST, checked with Python's gzip and PIL (no
# hubimg code): the file count and names (index, true class from the IDX labels, named by a
# labels file or by the label number; --count and --per-class selections) and every pixel against
# the IDX bytes. Exit 77 (skip)
# when the dataset is not installed.
# usage: idx_to_png_check.sh IDX_TO_PNG [DATA_DIR]
set -euo pipefail
tool="$1"
data="${2:-/usr/share/datasets/fashion-mnist}"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte train-images-idx3-ubyte train-labels-idx1-ubyte; do
  if [ ! -f "$data/$f.gz" ]; then
    echo "SKIPPED: $data/$f.gz not found (Debian package dataset-fashion-mnist)"
    exit 77
  fi
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf '%s\n' T-shirt/top Trouser Pullover Dress Coat Sandal Shirt Sneaker Bag 'Ankle boot' \
  >"$work/names.txt"

"$tool" "$data" "$work/named" --prefix t10k --first 9990 --count 10 --labels "$work/names.txt"
"$tool" "$data" "$work/numbered" --prefix train --first 123 --count 3
"$tool" "$data" "$work/per-class" --prefix t10k --first 5000 --per-class 2 --labels "$work/names.txt"
# Past the end: an error, and nothing written.
if "$tool" "$data" "$work/past" --first 9995 --count 6 2>"$work/err.txt"; then
  echo "FAIL: examples past the end were accepted"
  exit 1
fi
grep -q "has 10000 t10k examples" "$work/err.txt" || {
  echo "FAIL: unclear error: $(cat "$work/err.txt")"
  exit 1
}
[ ! -e "$work/past" ] || [ -z "$(ls -A "$work/past")" ] || {
  echo "FAIL: files written for a refused range"
  exit 1
}

exec /usr/bin/python3 - "$data" "$work" <<'EOF'
import gzip, os, re, sys
from PIL import Image

data, work = sys.argv[1], sys.argv[2]
names = open(os.path.join(work, "names.txt")).read().splitlines()

def idx(prefix):
    images = gzip.open(os.path.join(data, prefix + "-images-idx3-ubyte.gz")).read()
    labels = gzip.open(os.path.join(data, prefix + "-labels-idx1-ubyte.gz")).read()
    assert images[:4] == b"\0\0\x08\x03" and labels[:4] == b"\0\0\x08\x01"
    rows = int.from_bytes(images[8:12], "big")
    cols = int.from_bytes(images[12:16], "big")
    return images[16:], labels[8:], rows, cols

def slug(name):
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")

failures = []
def check(folder, prefix, first, count, class_name, per_class=0):
    pixels, labels, rows, cols = idx(prefix)
    if per_class:
        chosen, taken = [], {}
        for i in range(first, len(labels)):
            if taken.get(labels[i], 0) < per_class:
                taken[labels[i]] = taken.get(labels[i], 0) + 1
                chosen.append(i)
        assert len(chosen) == count, (len(chosen), count)
    else:
        chosen = range(first, first + count)
    expected = {}
    for i in chosen:
        expected["%s_%05d_true_%s.png" % (prefix, i, slug(class_name(labels[i])))] = i
    found = sorted(os.listdir(os.path.join(work, folder)))
    if found != sorted(expected):
        failures.append("%s: files %s, expected %s" % (folder, found, sorted(expected)))
        return
    for file, i in expected.items():
        image = Image.open(os.path.join(work, folder, file))
        if image.mode != "L" or image.size != (cols, rows):
            failures.append("%s: mode %s size %s, expected L %dx%d" % (file, image.mode, image.size, cols, rows))
            continue
        want = pixels[i * rows * cols:(i + 1) * rows * cols]
        got = image.tobytes()
        if got != want:
            bad = sum(a != b for a, b in zip(got, want))
            failures.append("%s: %d of %d pixels differ from the IDX bytes" % (file, bad, rows * cols))
    print("%s: %d files, names and pixels as in %s examples %s" % (folder, count, prefix, sorted(expected.values())))

check("named", "t10k", 9990, 10, lambda label: names[label])
check("numbered", "train", 123, 3, lambda label: str(label))
check("per-class", "t10k", 5000, 20, lambda label: names[label], per_class=2)
# The slice is not uniform: a check that could not tell two classes apart would pass otherwise.
labels = idx("t10k")[1]
assert len(set(labels[9990:10000])) >= 3, "the t10k slice holds fewer than 3 classes"
if failures:
    print("FAIL:\n" + "\n".join(failures))
    sys.exit(1)
print("OK")
EOF
