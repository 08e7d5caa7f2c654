#!/usr/bin/env bash
# stn eval on test data made elsewhere (issue 13, point 6): a NumPy script writes IDX test
# sets; stn eval --test-images/--test-labels must give the error of the program's own test
# set on the same digits (a permutation of them, 4-D and gzip-compressed), agree with the
# error NumPy computes from the program's predictions, and reject files that do not fit with
# a message naming the file and both shapes. --data-dir evaluates a run whose recorded data
# directory has gone. --figure draws a transformer run's figure again.
# Usage: eval_files_test.sh STN_BINARY MNIST_DIR
set -euo pipefail
stn=$1
data=$2
python=/usr/bin/python3
[[ -f "$data/t10k-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
"$python" -c "import numpy" 2>/dev/null || { echo "needs python3-numpy"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
json_field() { "$python" -c "import json, sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }

# A small trained run whose data directory will disappear.
mkdir "$work/mnist"
for f in "$data"/*-ubyte; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$work/mnist/"; done
"$stn" train --dataset mnist --data "$work/mnist" --model fcn-256 --iters 60 --batch 64 --threads 1 \
  --out "$work/run" >/dev/null
own=$("$stn" eval --run "$work/run" --threads 1 | json_field test_error)

# The NumPy side: read the MNIST test set, write (a) all of it permuted, as N x 1 x 28 x 28
# gzip IDX; (b) the first 1000 digits as plain N x 28 x 28; (c) bad files.
"$python" - "$data" "$work" <<'PY'
import gzip, struct, sys
import numpy as np

data, work = sys.argv[1], sys.argv[2]

def read(path):
    raw = open(path, "rb").read()
    dims = raw[3]
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    return np.frombuffer(raw[4 + 4 * dims:], dtype=np.uint8).reshape(shape)

def write(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())

images = read(f"{data}/t10k-images-idx3-ubyte")
labels = read(f"{data}/t10k-labels-idx1-ubyte")
order = np.random.default_rng(5).permutation(len(labels))
write(f"{work}/perm-images.gz", images[order][:, None])
write(f"{work}/perm-labels.gz", labels[order])
write(f"{work}/first-images", images[:1000])
write(f"{work}/first-labels", labels[:1000])
write(f"{work}/big-images", np.zeros((10, 32, 32)))
write(f"{work}/two-channel-images", np.zeros((10, 2, 28, 28)))
write(f"{work}/ten-labels", labels[:10])
write(f"{work}/eleven-labels", labels[:11])
write(f"{work}/ten-images", images[:10])
write(f"{work}/class-ten-labels", np.full(10, 10))
PY

# (a) The same digits in another order: the same error, to the last digit.
perm=$("$stn" eval --run "$work/run" --threads 1 --test-images "$work/perm-images.gz" --test-labels "$work/perm-labels.gz" \
  | json_field test_error)
[[ "$perm" == "$own" ]] || fail "permuted test set: $perm% against the run's own $own%"

# (b) The error NumPy computes from the predictions equals the program's.
first=$("$stn" eval --run "$work/run" --threads 1 --test-images "$work/first-images" --test-labels "$work/first-labels" \
  --predictions "$work/predictions.txt" | json_field test_error)
"$python" - "$work" "$first" <<'PY'
import sys
import numpy as np
work, reported = sys.argv[1], float(sys.argv[2])
predictions = np.loadtxt(f"{work}/predictions.txt", dtype=np.int64)
raw = open(f"{work}/first-labels", "rb").read()
labels = np.frombuffer(raw[8:], dtype=np.uint8)
assert predictions.shape == labels.shape, (predictions.shape, labels.shape)
error = 100.0 * np.mean(predictions != labels)
assert abs(error - reported) < 1e-9, (error, reported)
assert 0 < error < 90, error
PY

# Bad files: a clear message naming the file and both shapes or counts.
expect_error() {  # MESSAGE ARGS...
  local message=$1
  shift
  local output status=0
  output=$("$stn" eval --run "$work/run" --threads 1 "$@" 2>&1) || status=$?
  [[ $status == 1 ]] || fail "$* exited with $status, not 1: $output"
  [[ "$output" == *"$message"* ]] || fail "$*: expected '$message' in: $output"
}
expect_error "$work/big-images: images of shape [10, 32, 32] do not fit the run's model, which takes N x 1 x 28 x 28 (or N x 28 x 28)" \
  --test-images "$work/big-images" --test-labels "$work/ten-labels"
expect_error "$work/two-channel-images: images of shape [10, 2, 28, 28] do not fit the run's model, which takes N x 1 x 28 x 28" \
  --test-images "$work/two-channel-images" --test-labels "$work/ten-labels"
expect_error "$work/eleven-labels: 11 labels for the 10 images of $work/ten-images" \
  --test-images "$work/ten-images" --test-labels "$work/eleven-labels"
expect_error "$work/class-ten-labels: label 0 is 10, but the run's model has 10 classes" \
  --test-images "$work/ten-images" --test-labels "$work/class-ten-labels"
expect_error "$work/ten-images: labels of shape [10, 28, 28] must be one-dimensional (N)" \
  --test-images "$work/ten-images" --test-labels "$work/ten-images"
expect_error "--test-images and --test-labels go together (got only --test-images)" --test-images "$work/ten-images"
expect_error "$work/missing" --test-images "$work/missing" --test-labels "$work/ten-labels"

# --figure: a transformer run's figure drawn again from its weights is the transformer.png
# its training wrote (the same first 8 test digits, the same pixels).
"$stn" train --dataset mnist --data "$work/mnist" --model st-fcn-aff --iters 30 --batch 32 --threads 1 \
  --out "$work/st-run" >/dev/null
drawn=$("$stn" eval --run "$work/st-run" --threads 1 --figure "$work/again.png" | json_field figure)
[[ "$drawn" == "$work/again.png" ]] || fail "--figure: the result names '$drawn'"
cmp -s "$work/st-run/transformer.png" "$work/again.png" ||
  fail "--figure: $work/again.png differs from the transformer.png stn train wrote"
expect_error "--figure: model fcn-256 has no spatial transformer" --figure "$work/none.png"
[[ ! -e "$work/none.png" ]] || fail "--figure wrote a figure for a model without a transformer"

# --data-dir: the recorded data directory is gone.
rm -rf "$work/mnist"
expect_error "$work/mnist"
moved=$("$stn" eval --run "$work/run" --threads 1 --data-dir "$data" | json_field test_error)
[[ "$moved" == "$own" ]] || fail "--data-dir: $moved% against $own%"
echo "eval on outside test files: OK (own $own%, permuted $perm%, first 1000 $first%)"
