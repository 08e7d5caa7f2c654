#!/usr/bin/env bash
# Bad input everywhere a user can reach it: runs the stn program on broken IDX files, broken
# checkpoints, broken PNG/npy inputs to `stn warp` and bad command-line values, and checks
# that each invocation exits with the expected non-zero status and message, by itself (no
# signal, no timeout) and without a sanitizer report (this test also runs in the ASan+UBSan
# build, scripts/sanitize.sh).
#
#   bash tests/bad_input_test.sh build/stn           # check every case
#   bash tests/bad_input_test.sh build/stn --table   # also print docs/bad-input.md's table
#
# Needs only bash, coreutils, gzip and sed: the fixtures (a tiny fake MNIST, a checkpoint
# from a one-iteration run on it, damaged copies) are made in a temporary directory, which is
# also the working directory, so the messages show short relative paths.
set -uo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 STN_BINARY [--table]" >&2
  exit 2
fi
stn=$(realpath "$1")
[[ -x "$stn" ]] || { echo "bad_input_test: $1 is not an executable" >&2; exit 2; }
table=0
[[ "${2:-}" == "--table" ]] && table=1
tests_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
corpus="$tests_dir/fuzz/corpus"
per_case_timeout=${STN_BAD_INPUT_TIMEOUT:-120}

work=$(mktemp -d)
trap 'umount "$work/full" 2>/dev/null; chmod -R u+rwx "$work" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work" || exit 2
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# ---- fixtures ------------------------------------------------------------------------------
bytes() { printf '%b' "$(for n in "$@"; do printf '\\x%02x' "$n"; done)"; }
be32() { bytes $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
le64() { local n=$1 i out=(); for ((i = 0; i < 8; i++)); do out+=($((n >> (8 * i) & 255))); done; bytes "${out[@]}"; }
# idx_header TYPE DIM... : the IDX header (magic 0 0 TYPE RANK, big-endian sizes).
idx_header() { local type=$1; shift; bytes 0 0 "$type" $#; local d; for d in "$@"; do be32 "$d"; done; }
labels() {  # labels COUNT: 0, 1, ..., 9, 0, 1, ... (ten at a time: printf is a builtin)
  local i
  for ((i = 0; i + 10 <= $1; i += 10)); do printf '\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09'; done
  for ((; i < $1; i++)); do bytes $((i % 10)); done
}
zeros() { head -c "$1" /dev/zero; }
# A fake MNIST directory: COUNT_TRAIN and COUNT_TEST images of 28x28.
fake_mnist() {
  local dir=$1 train=${2:-64} test=${3:-16}
  mkdir -p "$dir"
  { idx_header 8 "$train" 28 28; zeros $((train * 784)); } >"$dir/train-images-idx3-ubyte"
  { idx_header 8 "$train"; labels "$train"; } >"$dir/train-labels-idx1-ubyte"
  { idx_header 8 "$test" 28 28; zeros $((test * 784)); } >"$dir/t10k-images-idx3-ubyte"
  { idx_header 8 "$test"; labels "$test"; } >"$dir/t10k-labels-idx1-ubyte"
}
# safetensors HEADER_TEXT [DATA_FILE]: header padded with spaces to a multiple of 8.
safetensors() {
  local header=$1 data=${2:-/dev/null}
  while ((${#header} % 8)); do header+=" "; done
  le64 ${#header}
  printf '%s' "$header"
  cat "$data"
}
st_header_length() { od -An -t u8 -N 8 "$1" | tr -d ' '; }
st_header() { tail -c +9 "$1" | head -c "$(st_header_length "$1")"; }
st_data() { tail -c +$((9 + $(st_header_length "$1"))) "$1"; }

fake_mnist mnist
images=mnist/t10k-images-idx3-ubyte
labels_file=mnist/t10k-labels-idx1-ubyte
# IDX variants, each a copy of the good directory with the test split damaged.
variant() { rm -rf "$1"; cp -r mnist "$1"; }
variant idx-missing-file; rm idx-missing-file/t10k-images-idx3-ubyte
variant idx-truncated; head -c 5000 "$images" >idx-truncated/t10k-images-idx3-ubyte
variant idx-short-header; head -c 9 "$images" >idx-short-header/t10k-images-idx3-ubyte
variant idx-magic; { bytes 1 0 8 3; tail -c +5 "$images"; } >idx-magic/t10k-images-idx3-ubyte
variant idx-float; { idx_header 13 16 28 28; zeros $((16 * 784 * 4)); } >idx-float/t10k-images-idx3-ubyte
variant idx-rank; { idx_header 8 16 784; zeros $((16 * 784)); } >idx-rank/t10k-images-idx3-ubyte
variant idx-labels-rank; { idx_header 8 4 4; labels 16; } >idx-labels-rank/t10k-labels-idx1-ubyte
variant idx-zero-dim; { idx_header 8 16 0 28; } >idx-zero-dim/t10k-images-idx3-ubyte
variant idx-five-dims; { idx_header 8 1 16 1 28 28; zeros $((16 * 784)); } >idx-five-dims/t10k-images-idx3-ubyte
variant idx-huge-dims; { idx_header 8 4294967295 4294967295 4294967295; zeros 100; } >idx-huge-dims/t10k-images-idx3-ubyte
variant idx-extra; { cat "$images"; zeros 3; } >idx-extra/t10k-images-idx3-ubyte
variant idx-count; { idx_header 8 15; labels 15; } >idx-count/t10k-labels-idx1-ubyte
variant idx-label-range; { idx_header 8 16; bytes 12; labels 15; } >idx-label-range/t10k-labels-idx1-ubyte
variant idx-gzip-corrupt; rm idx-gzip-corrupt/t10k-images-idx3-ubyte
gzip -9 -n -c "$images" >idx-gzip-corrupt/t10k-images-idx3-ubyte.gz
printf 'XXXX' | dd of=idx-gzip-corrupt/t10k-images-idx3-ubyte.gz bs=1 seek=12 conv=notrunc status=none
variant idx-gzip-truncated; rm idx-gzip-truncated/t10k-images-idx3-ubyte
gzip -9 -n -c "$images" | head -c 30 >idx-gzip-truncated/t10k-images-idx3-ubyte.gz
variant idx-gzip-not-gzip; rm idx-gzip-not-gzip/t10k-images-idx3-ubyte
printf 'not compressed at all\n' >idx-gzip-not-gzip/t10k-images-idx3-ubyte.gz
variant idx-directory; rm idx-directory/t10k-images-idx3-ubyte; mkdir idx-directory/t10k-images-idx3-ubyte
mkdir -p empty-dir
# Training and test images of different sizes, and images too small for the CNN.
fake_mnist mixed-sizes 64 16
{ idx_header 8 16 24 24; zeros $((16 * 576)); } >mixed-sizes/t10k-images-idx3-ubyte
fake_mnist tiny-images 64 16
{ idx_header 8 64 1 1; zeros 64; } >tiny-images/train-images-idx3-ubyte
{ idx_header 8 16 1 1; zeros 16; } >tiny-images/t10k-images-idx3-ubyte

# A real checkpoint: one iteration of the FCN on the fake MNIST.
if ! "$stn" train --dataset mnist --data mnist --model fcn --iters 1 --batch 8 --threads 1 --out run \
  >train.log 2>&1; then
  echo "bad_input_test: could not train the fixture run; its output:" >&2
  cat train.log >&2
  exit 1
fi
[[ -f run/model.safetensors && -f run/config.json ]] || { echo "bad_input_test: the fixture run wrote no model.safetensors/config.json" >&2; exit 1; }
model=run/model.safetensors
header=$(st_header "$model")
header=${header%"${header##*[! ]}"}  # without the padding
st_data "$model" >model.data
data_length=$(stat -c %s model.data)
first_name=$(sed -E 's/^\{("__metadata__":\{[^}]*\},)?"([^"]+)".*/\2/' <<<"$header")
run_variant() { rm -rf "$1"; cp -r run "$1"; }
run_variant ckpt-missing; rm ckpt-missing/model.safetensors
run_variant ckpt-empty; : >ckpt-empty/model.safetensors
run_variant ckpt-length-past-end; { le64 4096; printf '{}      '; } >ckpt-length-past-end/model.safetensors
run_variant ckpt-length-absurd; { le64 $((1 << 62)); printf '{}      '; } >ckpt-length-absurd/model.safetensors
run_variant ckpt-text; printf 'this is not a checkpoint\n' >ckpt-text/model.safetensors
run_variant ckpt-truncated; head -c -100 "$model" >ckpt-truncated/model.safetensors
run_variant ckpt-offsets-past-end
head -c 4 /dev/zero >four.bytes
safetensors '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' four.bytes >ckpt-offsets-past-end/model.safetensors
run_variant ckpt-dtype; safetensors "${header/\"F32\"/\"F16\"}" model.data >ckpt-dtype/model.safetensors
run_variant ckpt-shape
swapped=$(sed -E 's/"shape":\[([0-9]+),([0-9]+)\]/"shape":[\2,\1]/' <<<"$header")
safetensors "$swapped" model.data >ckpt-shape/model.safetensors
run_variant ckpt-duplicate
safetensors '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' \
  four.bytes >ckpt-duplicate/model.safetensors
run_variant ckpt-missing-tensor; safetensors '{}' >ckpt-missing-tensor/model.safetensors
run_variant ckpt-unexpected-tensor
safetensors "${header%\}},\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[$data_length,$((data_length + 4))]}}" \
  <(cat model.data four.bytes) >ckpt-unexpected-tensor/model.safetensors
run_variant ckpt-not-json; safetensors '{"w":' >ckpt-not-json/model.safetensors
run_variant ckpt-nul; { le64 8; bytes 123 125 0 0 0 0 0 0; } >ckpt-nul/model.safetensors
# Found by fuzzing (tests/fuzz/findings/): no elements, but dimensions whose product overflows.
run_variant ckpt-zero-huge
safetensors '{"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}' >ckpt-zero-huge/model.safetensors
# Resuming: a run without checkpoints, and one whose every checkpoint file is truncated.
run_variant resume-no-checkpoints; rm -rf resume-no-checkpoints/checkpoints
run_variant resume-all-corrupt
for f in resume-all-corrupt/checkpoints/*; do head -c 50 "$f" >"$f.cut" && mv "$f.cut" "$f"; done
run_variant config-not-json; printf '{"model": ' >config-not-json/config.json
run_variant config-model; sed -i 's/"model": *"fcn"/"model": "nosuch"/' config-model/config.json
mkdir -p not-a-run

# warp inputs
cp "$corpus/image/valid-gray.png" good.png
cp "$corpus/image/bad-truncated.png" truncated.png
cp "$corpus/image/bad-not-an-image.png" text.png
cp "$corpus/image/bad-too-wide.png" too-wide.png
cp "$corpus/image/bad-zero-width.png" zero-width.png
cp "$corpus/image/bad-idat-corrupt.png" corrupt.png
: >empty.png
mkdir -p directory.png
cp "$corpus/npy/bad-dtype-i4" int32.npy
cp "$corpus/npy/bad-fortran-order" fortran.npy
cp "$corpus/npy/bad-data-short" short.npy
cp "$corpus/npy/bad-header-length-past-end" header-past-end.npy
cp "$corpus/npy/bad-no-magic" no-magic.npy
cp "$corpus/npy/bad-shape-overflow" overflow.npy
cp "$corpus/npy/valid-f8-v2" rank1.npy
cp "$corpus/npy/valid-empty" empty-array.npy
cp "$corpus/npy/valid-scalar" scalar.npy
# Found by fuzzing (tests/fuzz/findings/): an empty array with huge dimensions, and a JPEG
# whose Huffman table declares more than 256 codes.
npy_header="{'descr': '<f4', 'fortran_order': False, 'shape': (0, 1099511627776, 1099511627776), }"
while (((10 + ${#npy_header} + 1) % 64)); do npy_header+=" "; done
npy_header+=$'\n'
{ printf '\x93NUMPY'; bytes 1 0 $((${#npy_header} & 255)) $((${#npy_header} >> 8)); printf '%s' "$npy_header"; } >zero-huge.npy
base64 -d >dht.jpg <<'JPEG'
/9j/4AAQSkZJRgABBwAAAQABAAD/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOhYAAAAAAAAAClxOQERXRTc4UG1RV19iZ2hn
Pk1xeXBkeFxlZ2P/wAALCAAIAAgBAREA/8QAFAABAAAAABcQAAMBAP8AAAAAAAA9PDkzAAAAF2Oh/9oACAEBAAA/ACRLD//Z
JPEG

# Issue 11 (reliability, second round): run directories, config.json, limits, messages.
cp "$corpus/image/crash-png-16384x16384-rgba16-69-bytes.png" claims-16384.png
cp "$corpus/image/bad-claims-8192x8192-rgba16.png" claims-8192.png
head -c -12 good.png >no-iend.png
variant idx-fifo; rm idx-fifo/t10k-images-idx3-ubyte; mkfifo idx-fifo/t10k-images-idx3-ubyte
variant idx-dev-zero; rm idx-dev-zero/t10k-images-idx3-ubyte; ln -s /dev/zero idx-dev-zero/t10k-images-idx3-ubyte
fake_mnist swapped 16 64
printf 'not a directory\n' >a-file
mkdir -p foreign-dir; printf 'my notes\n' >foreign-dir/notes.txt
run_variant run-locked; : >run-locked/.lock
run_variant resume-stale; rm -rf resume-stale/checkpoints/*
printf 'half a checkpoint' >resume-stale/checkpoints/.step-00000001.safetensors.tmp-99999999-0
set_config() {  # set_config DIR KEY VALUE: replaces the value of KEY in DIR/config.json
  sed -i -E "s/(\"$2\": *)[^,}]*/\1$3/" "$1/config.json"
}
run_variant config-iters-negative; set_config config-iters-negative iters -5
run_variant config-seed-negative; set_config config-seed-negative seed -1
run_variant config-batch-string; set_config config-batch-string batch '"8"'
run_variant config-lr-zero; set_config config-lr-zero lr 0
run_variant config-batch-huge; set_config config-batch-huge batch 60000
run_variant config-unknown-key; sed -i 's/^{/{\n  "colour": "blue",/' config-unknown-key/config.json
run_variant resume-longer; set_config resume-longer iters 5; set_config resume-longer iterations 5
run_variant resume-diverge; set_config resume-diverge lr 1e30
run_variant ckpt-nan
nan_data() { bytes 0 0 192 127; tail -c +5 model.data; }
safetensors "$header" <(nan_data) >ckpt-nan/model.safetensors
run_variant resume-nan
for f in resume-nan/checkpoints/*[0-9].safetensors; do safetensors "$(st_header "$f" | sed 's/ *$//')" <(bytes 0 0 192 127; st_data "$f" | tail -c +5) >"$f.nan" && mv "$f.nan" "$f"; done
tps90=$(for ((i = 0; i < 90 * 90; i++)); do printf '0,0,'; done); tps90=${tps90%,}
# Stand-ins for gnuplot: one that fails, one that exits 0 having written half a PNG.
mkdir -p gnuplot-fails gnuplot-cuts
cat >gnuplot-fails/gnuplot <<'SH'
#!/bin/sh
echo "gnuplot: cannot open the font" >&2
exit 3
SH
cat >gnuplot-cuts/gnuplot <<'SH'
#!/bin/sh
out=$(sed -n "s/^set output '\(.*\)'$/\1/p" "$1" | head -n 1)
printf '\211PNG\r\n\032\n' >"$out"
SH
chmod +x gnuplot-fails/gnuplot gnuplot-cuts/gnuplot
bad_name=$'bad-\xff-name'

# ---- the cases -----------------------------------------------------------------------------
# check CATEGORY DESCRIPTION STATUS FRAGMENT -- ARGUMENTS...
# Runs `stn ARGUMENTS...`; passes when it exits with STATUS (`any`: any failure status), its
# output holds FRAGMENT, and there is no sanitizer report, no uncaught exception and no signal.
failures=0
cases=0
rows=()
sanitizer_pattern='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer|terminate called|Segmentation fault|Aborted|core dumped'
check() {
  local category=$1 description=$2 expected_status=$3 fragment=$4
  shift 5  # the four fields and the --
  local status=0
  local limit=${case_timeout:-$per_case_timeout}
  timeout -k 10 "$limit" "$stn" "$@" >out.txt 2>err.txt </dev/null || status=$?
  local problems=()
  ((status == 124 || status == 137)) && problems+=("timed out after ${limit} s")
  shown_command=${shown_command:-stn $*} judge "$category" "$description" "$expected_status" "$fragment" "$status" \
    "${problems[@]}"
}
# judge CATEGORY DESCRIPTION STATUS FRAGMENT GOT_STATUS [PROBLEM...]: the verdict on a command
# that has run with its output in out.txt and err.txt (as check does; the cases that send
# signals or look into a run's files run their command themselves and call this directly,
# adding the problems they found). shown_command: the command for the table; shown_message:
# its message column, when that is not the output line holding FRAGMENT. STATUS 0 is a case
# that must succeed; a status above 128 that is expected is stn's own exit after a signal.
judge() {
  local category=$1 description=$2 expected_status=$3 fragment=$4 status=$5
  shift 5
  local problems=("$@")
  cases=$((cases + 1))
  ((status > 128 && status != 137 && status != expected_status)) && problems+=("killed by signal $((status - 128))")
  ((status == 0 && expected_status != 0)) && problems+=("exited with status 0")
  [[ "$expected_status" != any ]] && ((status != expected_status)) && problems+=("exit status $status, expected $expected_status")
  grep -qF -- "$fragment" out.txt err.txt || problems+=("no '$fragment' in the output")
  grep -qE "$sanitizer_pattern" out.txt err.txt && problems+=("sanitizer report or abnormal end")
  local message=${shown_message:-}
  [[ -n "$message" ]] || message=$(grep -hF -- "$fragment" err.txt out.txt | head -n 1)
  [[ -n "$message" ]] || message=$(grep -hv '^$' err.txt | head -n 1)
  if ((${#problems[@]})); then
    failures=$((failures + 1))
    printf 'FAIL  [%s] %s: %s\n' "$category" "$description" "$shown_command" >&2
    printf '      %s\n' "${problems[@]}" >&2
    printf '      --- stderr (last 15 lines) ---\n' >&2
    tail -n 15 err.txt | sed 's/^/      /' >&2
  else
    printf 'ok    [%s] %s (status %s)\n' "$category" "$description" "$status"
  fi
  [[ -n "$message" ]] || message="(no message)"
  local result=ok
  if ((${#problems[@]})); then
    result="FAILS: $(printf '%s; ' "${problems[@]}")"
    result=${result%; }
  fi
  local escaped=${message//|/\\|}
  rows+=("| $category | $description | \`${shown_command//|/\\|}\` | $status | \`${escaped}\` | ${result//|/\\|} |")
}

warp_out=(--out out.png)
# IDX files, read through `stn warp --input mnist:test:0` (the test split) and `stn train`.
check IDX "data directory missing" 1 "MNIST data directory 'no-such-dir' does not exist" -- warp --input mnist:test:0 --data no-such-dir "${warp_out[@]}"
check IDX "IDX file missing" 1 "not found" -- warp --input mnist:test:0 --data idx-missing-file "${warp_out[@]}"
check IDX "no IDX files at all (train)" 1 "not found" -- train --dataset mnist --data empty-dir --iters 1
check IDX "IDX path is a directory" 1 "cannot read file (Is a directory)" -- warp --input mnist:test:0 --data idx-directory "${warp_out[@]}"
check IDX "truncated payload" 1 "truncated IDX payload" -- warp --input mnist:test:0 --data idx-truncated "${warp_out[@]}"
check IDX "truncated header" 1 "too short for its IDX header" -- warp --input mnist:test:0 --data idx-short-header "${warp_out[@]}"
check IDX "wrong magic number" 1 "not an IDX file" -- warp --input mnist:test:0 --data idx-magic "${warp_out[@]}"
check IDX "element type float32" 1 "unsupported IDX element type 0x0D" -- warp --input mnist:test:0 --data idx-float "${warp_out[@]}"
check IDX "images 2-D instead of 3-D" 1 "images must be 3-D" -- warp --input mnist:test:0 --data idx-rank "${warp_out[@]}"
check IDX "labels 2-D instead of 1-D" 1 "labels must be 1-D" -- warp --input mnist:test:0 --data idx-labels-rank "${warp_out[@]}"
check IDX "a zero dimension" 1 "is zero in IDX dimensions" -- warp --input mnist:test:0 --data idx-zero-dim "${warp_out[@]}"
check IDX "five dimensions" 1 "supported are 1 to 4" -- warp --input mnist:test:0 --data idx-five-dims "${warp_out[@]}"
check IDX "dimensions beyond addressable memory" 1 "more elements than can be addressed" -- warp --input mnist:test:0 --data idx-huge-dims "${warp_out[@]}"
check IDX "bytes after the payload" 1 "extra bytes after the" -- warp --input mnist:test:0 --data idx-extra "${warp_out[@]}"
check IDX "image and label counts differ" 1 "holds 16 images but" -- warp --input mnist:test:0 --data idx-count "${warp_out[@]}"
check IDX "label outside 0..9" 1 "label 12 at index 0 is outside [0, 10)" -- warp --input mnist:test:0 --data idx-label-range "${warp_out[@]}"
check IDX "gzip stream corrupt" 1 "corrupt gzip stream" -- warp --input mnist:test:0 --data idx-gzip-corrupt "${warp_out[@]}"
check IDX "gzip stream truncated" 1 "truncated gzip stream" -- warp --input mnist:test:0 --data idx-gzip-truncated "${warp_out[@]}"
check IDX ".gz file that is not gzip" 1 "not an IDX file" -- warp --input mnist:test:0 --data idx-gzip-not-gzip "${warp_out[@]}"
check IDX "train and test images of different sizes" 1 "linear: input [8, 784] does not fit weight" -- train --dataset mnist --data mixed-sizes --model fcn --iters 1 --batch 8 --out runs-mixed
check IDX "images too small for the CNN (1x1)" 1 "cnn: input 1x1 is too small" -- train --dataset mnist --data tiny-images --model cnn --iters 1 --batch 8 --out runs-tiny
check IDX "images too small for the FCN sized like the CNN (1x1)" 1 "the models are sized to the CNN baseline's parameter count, and cnn: input 1x1 is too small (needs at least 22x22)" -- train --dataset mnist --data tiny-images --model fcn --iters 1 --batch 8 --out runs-tiny-fcn

# Checkpoints, read by `stn eval --run DIR` (DIR/model.safetensors).
check checkpoint "run directory missing" 1 "not a run directory (no config.json)" -- eval --run no-such-run
check checkpoint "directory without config.json" 1 "not a run directory (no config.json)" -- eval --run not-a-run
check checkpoint "config.json not JSON" 1 "config.json: not valid JSON" -- eval --run config-not-json
check checkpoint "config.json names an unknown model" 1 "unknown model 'nosuch'" -- eval --run config-model
check checkpoint "model.safetensors missing" 1 "model.safetensors" -- eval --run ckpt-missing
check checkpoint "empty file" 1 "shorter than the 8-byte header length" -- eval --run ckpt-empty
check checkpoint "header length past the end" 1 "header length 4096 exceeds the 8 bytes after the length field" -- eval --run ckpt-length-past-end
check checkpoint "header length absurd" 1 "is absurd" -- eval --run ckpt-length-absurd
check checkpoint "a text file" 1 "is absurd" -- eval --run ckpt-text
check checkpoint "truncated (last 100 bytes cut)" 1 "run past the end of the data" -- eval --run ckpt-truncated
check checkpoint "data offsets past the end" 1 "data_offsets [0, 8] run past the end of the data (4 bytes)" -- eval --run ckpt-offsets-past-end
check checkpoint "dtype not F32 (F16)" 1 "dtype F16 is not supported (only F32)" -- eval --run ckpt-dtype
check checkpoint "shape not matching the model" 1 "but the model expects" -- eval --run ckpt-shape
check checkpoint "duplicate tensor names" 1 "duplicate key 'a' in header" -- eval --run ckpt-duplicate
check checkpoint "tensor missing (empty header)" 1 "tensor '$first_name' is missing" -- eval --run ckpt-missing-tensor
check checkpoint "tensor not in the model" 1 "unexpected tensor 'extra' (not in the model)" -- eval --run ckpt-unexpected-tensor
check checkpoint "header not JSON" 1 "header is not valid JSON" -- eval --run ckpt-not-json
check checkpoint "NUL byte in the header" 1 "header contains a NUL byte" -- eval --run ckpt-nul
check checkpoint "no elements, dimensions overflowing" 1 "ckpt-zero-huge/model.safetensors" -- eval --run ckpt-zero-huge
check checkpoint "resume: run directory missing" 1 "no-such-run: not a run directory (no config.json)" -- train --resume no-such-run
check checkpoint "resume: no checkpoints" 1 "resume-no-checkpoints: no usable checkpoint to resume from" -- train --resume resume-no-checkpoints
check checkpoint "resume: every checkpoint truncated" 1 "resume-all-corrupt: no usable checkpoint to resume from" -- train --resume resume-all-corrupt
check checkpoint "resume: a flag that would change the config" 1 "--lr cannot be changed (only --threads, --iters, --data and --cache can be given with it)" -- train --resume resume-all-corrupt --lr 0.5
check checkpoint "resume: a preset" 1 "--preset cannot be given with it" -- train --resume resume-all-corrupt --preset fast

# PNG and npy inputs to `stn warp`.
check warp-input "input file missing" 1 "no-such.png" -- warp --input no-such.png "${warp_out[@]}"
check warp-input "input is a directory" 1 "directory.png" -- warp --input directory.png "${warp_out[@]}"
check warp-input "empty file" 1 "cannot read image" -- warp --input empty.png "${warp_out[@]}"
check warp-input "text file named .png" 1 "cannot read image: not a PNG file" -- warp --input text.png "${warp_out[@]}"
check warp-input "truncated PNG" 1 "more than the file holds" -- warp --input truncated.png "${warp_out[@]}"
check warp-input "PNG with corrupt image data" 1 "cannot read image: Corrupt PNG" -- warp --input corrupt.png "${warp_out[@]}"
check warp-input "PNG 20000 pixels wide" 1 "image is 20000 x 1 pixels; each side must be 1 to 16384" -- warp --input too-wide.png "${warp_out[@]}"
check warp-input "PNG 0 pixels wide" 1 "cannot read image" -- warp --input zero-width.png "${warp_out[@]}"
check warp-input "npy without the magic" 1 "not an npy file" -- warp --input no-magic.npy "${warp_out[@]}"
check warp-input "npy of int32" 1 "dtype '<i4' is not supported" -- warp --input int32.npy "${warp_out[@]}"
check warp-input "npy in Fortran order" 1 "Fortran-order arrays are not supported" -- warp --input fortran.npy "${warp_out[@]}"
check warp-input "npy data shorter than the shape" 1 "data is 20 bytes but shape [2, 3] of '<f4' needs 24" -- warp --input short.npy "${warp_out[@]}"
check warp-input "npy header length past the end" 1 "runs past the end of the file" -- warp --input header-past-end.npy "${warp_out[@]}"
check warp-input "npy shape overflowing 64 bits" 1 "needs more than 2^64" -- warp --input overflow.npy "${warp_out[@]}"
check warp-input "npy of rank 1" 1 "expected an image [H, W] or [C, H, W], got shape [4]" -- warp --input rank1.npy "${warp_out[@]}"
check warp-input "npy of rank 0" 1 "expected an image [H, W] or [C, H, W], got shape []" -- warp --input scalar.npy "${warp_out[@]}"
check warp-input "npy with no elements" 1 "expected an image [H, W] or [C, H, W], got shape [1, 0, 3]" -- warp --input empty-array.npy "${warp_out[@]}"
check warp-input "npy with no elements, dimensions overflowing" 1 "zero-huge.npy" -- warp --input zero-huge.npy "${warp_out[@]}"
check warp-input "JPEG with an oversized Huffman table" 1 "dht.jpg: cannot read image" -- warp --input dht.jpg "${warp_out[@]}"
check warp-input "output directory missing" 1 "no-such-dir/out.png" -- warp --input good.png --out no-such-dir/out.png
check warp-input "output neither .png nor .npy" 1 "--out must end in .png or .npy" -- warp --input good.png --out out.jpg
check warp-input "MNIST split unknown" 1 "needs SPLIT train or test" -- warp --input mnist:valid:0 --data mnist "${warp_out[@]}"
check warp-input "MNIST index negative" 1 "index must be in [0, 16)" -- warp --input mnist:test:-1 --data mnist "${warp_out[@]}"
check warp-input "MNIST index past the end" 1 "index must be in [0, 16)" -- warp --input mnist:test:16 --data mnist "${warp_out[@]}"
check warp-input "MNIST index not a number" 1 "index must be in [0, 16)" -- warp --input mnist:test:abc --data mnist "${warp_out[@]}"

# Command-line values.
train_args=(train --dataset mnist --data mnist --model fcn --out runs-cli)
check command-line "zero batch" 1 "--batch must be at least 1" -- "${train_args[@]}" --batch 0
check command-line "negative batch" any "--batch" -- "${train_args[@]}" --batch -5
check command-line "batch larger than the training set" 1 "is larger than the training set (64 samples)" -- "${train_args[@]}" --batch 65
case_timeout=30 check command-line "negative epochs" any "--epochs" -- "${train_args[@]}" --batch 8 --epochs -1
case_timeout=30 check command-line "negative iterations" any "--iters" -- "${train_args[@]}" --batch 8 --iters -1
check command-line "both epochs and iterations" 1 "give --epochs or --iters, not both" -- "${train_args[@]}" --epochs 1 --iters 5
check command-line "zero micro-batches" 1 "--micro-batches must be between 1 and the batch size (8), got 0" -- "${train_args[@]}" --batch 8 --micro-batches 0
check command-line "more micro-batches than samples" 1 "--micro-batches must be between 1 and the batch size (8), got 9" -- "${train_args[@]}" --batch 8 --micro-batches 9
check command-line "non-numeric batch" any "many" -- "${train_args[@]}" --batch many
check command-line "negative learning rate" 1 "--lr must be positive" -- "${train_args[@]}" --lr -0.1
check command-line "NaN learning rate" 1 "--lr must be positive" -- "${train_args[@]}" --lr nan
check command-line "infinite learning rate" 1 "--lr must be positive" -- "${train_args[@]}" --lr inf
check command-line "momentum 1.5" 1 "--momentum must be in [0, 1)" -- "${train_args[@]}" --momentum 1.5
check command-line "negative weight decay" 1 "--weight-decay must be >= 0" -- "${train_args[@]}" --weight-decay -1
check command-line "infinite weight decay" 1 "--weight-decay must be" -- "${train_args[@]}" --batch 8 --iters 1 --weight-decay inf
check command-line "infinite localisation rate scale" 1 "--loc-lr-scale must be" -- "${train_args[@]}" --batch 8 --iters 1 --loc-lr-scale inf
check command-line "negative threads" 1 "--threads must be between 0 and 256" -- "${train_args[@]}" --threads -2
check command-line "100000 threads" 1 "--threads must be between 0 and 256 (0 = all cores), got 100000" -- "${train_args[@]}" --batch 8 --iters 1 --threads 100000
check command-line "eval: 100000 threads" 1 "--threads must be between 0 and 256" -- eval --run run --threads 100000
check command-line "eval: --figure not a .png" 1 "--figure: 'figure.jpg' must end in .png" -- eval --run run --figure figure.jpg
check command-line "eval: --figure of a model without a transformer" 1 "--figure: model fcn has no spatial transformer" -- eval --run run --figure figure.png
check command-line "zero checkpoints kept" 1 "--keep-checkpoints must be at least 1" -- "${train_args[@]}" --keep-checkpoints 0
check command-line "zero log interval" 1 "--log-every must be at least 1" -- "${train_args[@]}" --log-every 0
check command-line "unknown optimizer" 1 "unknown optimizer 'rmsprop'" -- "${train_args[@]}" --opt rmsprop
check command-line "unknown schedule" 1 "'linear'" -- "${train_args[@]}" --schedule linear
check command-line "unknown model" 1 "unknown model 'resnet'" -- train --dataset mnist --data mnist --model resnet --out runs-cli
check command-line "unknown dataset" 1 "unknown dataset 'cifar'" -- train --dataset cifar --data mnist --out runs-cli
check command-line "unknown preset" 1 "unknown preset 'huge'" -- train --preset huge
check command-line "missing data directory" 1 "does not exist; run scripts/setup.sh to fetch it" -- train --dataset mnist --data no-such-dir --out runs-cli
check command-line "models: unknown dataset" 1 "unknown distortion 'cifar'" -- models --dataset cifar
check command-line "data: zero count" 1 "--count must be in [1, 1024]" -- data --dataset mnist --data mnist --count 0 --out grid.png
check command-line "data: negative count" any "--count" -- data --dataset mnist --data mnist --count -3 --out grid.png
check command-line "data: count above the training set" 1 "--count 100 is larger than the training set in mnist (64 samples)" -- data --dataset mnist --data mnist --count 100 --out grid.png
check command-line "table: runs directory missing" 1 "is not a directory" -- table --runs no-such-dir
check command-line "warp: zero size" 1 "--size must be HxW with 1..8192 pixels per side, got '0x5'" -- warp --input good.png --out out.png --size 0x5
check command-line "warp: negative size" 1 "--size must be HxW with 1..8192 pixels per side, got '-3x4'" -- warp --input good.png --out out.png --size -3x4
check command-line "warp: size not HxW" 1 "--size must be HxW" -- warp --input good.png --out out.png --size big
check command-line "warp: affine with 5 numbers" 1 "--affine takes 6 numbers" -- warp --input good.png --out out.png --affine 1,0,0,0,1
check command-line "warp: affine with NaN" 1 "--affine values must be finite" -- warp --input good.png --out out.png --affine 1,0,nan,0,1,0
check command-line "warp: zero zoom" 1 "--zoom must be a positive number" -- warp --input good.png --out out.png --zoom 0
check command-line "warp: negative zoom" 1 "--zoom must be a positive number" -- warp --input good.png --out out.png --zoom -2
check command-line "warp: infinite rotation" 1 "--rotate must be finite" -- warp --input good.png --out out.png --rotate inf
check command-line "warp: TPS with 3 numbers" 1 "--tps takes x,y pairs" -- warp --input good.png --out out.png --tps 1,2,3
check command-line "warp: crop box reversed" 1 "--crop needs X1 > X0 and Y1 > Y0" -- warp --input good.png --out out.png --crop 1,0,0,1
check command-line "warp: two kinds of transform" 1 "give one of --affine, --projective, --tps" -- warp --input good.png --out out.png --affine 1,0,0,0,1,0 --rotate 10
check command-line "warp: unknown padding" 1 "--padding must be zeros or border" -- warp --input good.png --out out.png --padding reflect
check command-line "unknown subcommand" 106 "A subcommand is required" -- frobnicate
check command-line "no subcommand" 106 "A subcommand is required" --
check command-line "unknown flag" 109 "The following arguments were not expected: 0.1 --learning-rate" -- train --learning-rate 0.1
check command-line "required flag missing" 106 "--run is required" -- eval

# Issue 11: run directories (ownership, lock, overwrite), resume, config.json, limits.
fcn_args=(--dataset mnist --data mnist --model fcn --iters 2 --batch 8 --threads 1)
check run-directory "fresh run into a directory holding a run" 1 "run: the run directory is not empty" -- train "${fcn_args[@]}" --out run
check run-directory "--overwrite of a directory with files stn did not write" 1 "'notes.txt' is not one of those" -- train "${fcn_args[@]}" --out foreign-dir --overwrite
check run-directory "--overwrite given with --resume" 1 "--overwrite starts a new run; it cannot be given with --resume" -- train --resume run --overwrite
check run-directory "--out names a regular file (before any data is read)" 1 "--out 'a-file' exists and is not a directory" -- train --dataset mnist --data no-such-dir --out a-file
check run-directory "--out not UTF-8" 1 "--out: the path is not valid UTF-8 (byte 0xFF at offset 4)" -- train "${fcn_args[@]}" --out "$bad_name"
# This shell holds the lock, as a running stn would (fd 9; released below).
exec 9>run-locked/.lock
flock -n 9 || { echo "bad_input_test: cannot take the fixture's lock" >&2; exit 1; }
check run-directory "resume of a run another process holds" 1 "run-locked: in use by another stn process" -- train --resume run-locked
check run-directory "second fresh run into a locked directory" 1 "run-locked: in use by another stn process" -- train "${fcn_args[@]}" --out run-locked
exec 9>&-
check run-directory "resume: a temporary file left by a killed write is removed" 1 "removed 1 temporary file left by a killed process" -- train --resume resume-stale
[[ -e resume-stale/checkpoints/.step-00000001.safetensors.tmp-99999999-0 ]] && { echo "FAIL  the stale temporary file is still there" >&2; failures=$((failures + 1)); }
check resume "--resume with an empty string (an unset variable)" 1 "--resume needs a run directory, got an empty string" -- train --resume ""
check resume "--resume with --iters 0" 1 "--iters must be at least 1" -- train --resume run --iters 0
check resume "--resume with fewer iterations than the run" 1 "--iters 3 is smaller than the run's 5 iterations; --resume can only extend a run" -- train --resume resume-longer --iters 3
check resume "--resume with another thread count (a note, here before another error)" 1 "was trained with 1 threads and resumes with 2" -- train --resume resume-all-corrupt --threads 2
check resume "NaN in every checkpoint" 1 "holds a NaN at element 0" -- train --resume resume-nan
check resume "diverging after a resume: advice that --resume allows" 1 "a resumed run keeps its config, so start a new run" -- train --resume resume-diverge --iters 4
check config.json "'iters' negative" 1 "config-iters-negative/config.json: key 'iters' must be a non-negative whole number, got -5" -- eval --run config-iters-negative
check config.json "'seed' negative" 1 "key 'seed' must be a non-negative whole number, got -1" -- train --resume config-seed-negative
check config.json "'batch' a string" 1 "key 'batch' must be a non-negative whole number, got \"8\"" -- eval --run config-batch-string
check config.json "'lr' zero" 1 "config-lr-zero/config.json: 'lr' must be positive and finite, got 0" -- eval --run config-lr-zero
check config.json "'batch' 60000" 1 "'batch' must be at most 4096" -- train --resume config-batch-huge
check config.json "an unknown key" 1 "unknown key 'colour' (not one stn writes; a hand edit?)" -- eval --run config-unknown-key
check checkpoint "weights holding a NaN" 1 "holds a NaN at element 0 (weights must be finite)" -- eval --run ckpt-nan
check limits "--batch 60000" 1 "--batch must be at most 4096 (got 60000" -- "${train_args[@]}" --batch 60000
check limits "--iters near 2^64" 1 "--iters must be at most 1000000000" -- "${train_args[@]}" --iters 18446744073709551611
check limits "--iters 0" 1 "--iters must be at least 1" -- "${train_args[@]}" --iters 0
check limits "--epochs 0" 1 "--epochs must be at least 1" -- "${train_args[@]}" --epochs 0
check limits "--lr 1e-50 (0 in single precision)" 1 "--lr must be positive and finite, got 0 (a value below about 1e-45 is 0 in single precision)" -- "${train_args[@]}" --lr 1e-50
check limits "IDX file is a FIFO" 1 "not a regular file (a FIFO, device or socket)" -- warp --input mnist:test:0 --data idx-fifo "${warp_out[@]}"
check limits "IDX file is /dev/zero" 1 "not a regular file (a FIFO, device or socket)" -- warp --input mnist:test:0 --data idx-dev-zero "${warp_out[@]}"
check limits "MNIST train and test files swapped" 1 "are the files swapped? (MNIST and Fashion-MNIST have 60000 and 10000)" -- train --dataset mnist --data swapped --model fcn --iters 1 --batch 8 --out runs-swapped
shown_command="stn warp --input good.png --out out.png --tps 0,0,0,0,... (16200 numbers)" check limits "warp: a 90 x 90 TPS grid" 1 "--tps takes at most a 16 x 16 grid of control points (512 numbers), got 90 x 90" -- warp --input good.png --out out.png --tps "$tps90"
check limits "warp: --size 8192x8192 with a TPS" 1 "needs a 67108864 x 7 matrix" -- warp --input good.png --out out.png --size 8192x8192 --tps -1,-1,1,-1,-1,1,1,1
check limits "warp: --zoom 1e-45" 1 "--zoom must be between 1e-06 and 1e+06" -- warp --input good.png --out out.png --zoom 1e-45
check warp-input "69-byte PNG claiming 16384 x 16384 RGBA 16-bit" 1 "image claims 16384 x 16384 pixels, more than the 67108864 (2^26) allowed" -- warp --input claims-16384.png "${warp_out[@]}"
check warp-input "PNG claiming 8192 x 8192 RGBA 16-bit (decoder out of memory)" 1 "claims-8192.png: cannot read image" -- warp --input claims-8192.png "${warp_out[@]}"
check warp-input "PNG without IEND" 1 "truncated PNG (no IEND chunk in its" -- warp --input no-iend.png "${warp_out[@]}"
check warp-input "warp: --out not UTF-8" 1 "--out: the path is not valid UTF-8" -- warp --input good.png --out "$bad_name.png"
check warp-input "warp: --out a directory" 1 "--out 'directory.png' is a directory" -- warp --input good.png --out directory.png
check command-line "data: --out not UTF-8" 1 "--out: the path is not valid UTF-8" -- data --dataset mnist --data mnist --count 4 --out "$bad_name.png"
check command-line "eval: --run not UTF-8" 1 "--run: the path is not valid UTF-8" -- eval --run "$bad_name"
PATH="$PWD/gnuplot-fails:$PATH" check figures "gnuplot fails" 1 "curves.png: gnuplot failed (exit status 3): gnuplot: cannot open the font" -- train "${fcn_args[@]}" --out runs-gnuplot-fails
PATH="$PWD/gnuplot-cuts:$PATH" check figures "gnuplot exits 0 with a cut PNG" 1 "curves.png: gnuplot exited 0 but wrote no complete PNG" -- train "${fcn_args[@]}" --out runs-gnuplot-cuts
# Success, and no injected command: a quote in --out reaches gnuplot only as a file name.
status=0
"$stn" train "${fcn_args[@]}" --out "runs/q';touch PWNED;'x" >out.txt 2>err.txt || status=$?
cases=$((cases + 1))
if ((status != 0)) || [[ -e PWNED || ! -f "runs/q';touch PWNED;'x/curves.png" ]] && command -v gnuplot >/dev/null; then
  failures=$((failures + 1)); echo "FAIL  [figures] --out with a quote: status $status, PWNED $([[ -e PWNED ]] && echo created || echo absent)" >&2
else
  echo "ok    [figures] --out with a quote runs no command (status $status)"
fi
rows+=("| figures | \`--out\` holding a quote: no command runs, the curves are drawn | \`stn train ... --out \"runs/q';touch PWNED;'x\"\` | $status | (no PWNED file; curves.png written) | ok |")
# Issue 11, item 13: the first metrics line after a resume. Two runs of 6 iterations, a line
# every 4 and a checkpoint every 3; copies are resumed from the checkpoint of iteration 3,
# inside the window of iterations 1-4.
window_args=(--dataset mnist --data mnist --model fcn --iters 6 --batch 8 --threads 1 --log-every 4
             --checkpoint-every 3 --keep-checkpoints 5)
"$stn" train "${window_args[@]}" --out window-whole >train.log 2>&1 ||
  { echo "bad_input_test: could not train the window fixture run; its output:" >&2; cat train.log >&2; exit 1; }
for dir in window-carried window-partial; do
  cp -r window-whole "$dir"
  rm -f "$dir"/checkpoints/step-00000006.* "$dir/result.json"
done
# A checkpoint of a version before the window was carried: its state holds no window_* keys.
old_state=window-partial/checkpoints/step-00000003.state.safetensors
safetensors "$(st_header "$old_state" | sed -E 's/ *$//; s/,"window_[a-z]+":"[^"]*"//g')" <(st_data "$old_state") >state.old &&
  mv state.old "$old_state"
grep -q window_ "$old_state" && { echo "bad_input_test: the window keys are still in $old_state" >&2; exit 1; }
# The line of iteration 4, without the timing field that differs between any two runs.
line_of() { grep -E "^\{\"iter\":$2," "$1/metrics.jsonl" | grep -v '_error"' | sed -E 's/"samples_per_s":[^,}]*,?//; s/,\}$/}/'; }
resumed=window-carried
status=0
timeout -k 10 "$per_case_timeout" "$stn" train --resume "$resumed" >out.txt 2>err.txt </dev/null || status=$?
problems=()
[[ "$(line_of "$resumed" 4)" == "$(line_of window-whole 4)" ]] ||
  problems+=("its line of iteration 4 is '$(line_of "$resumed" 4)', the uninterrupted run's '$(line_of window-whole 4)'")
grep -q partial_window "$resumed/metrics.jsonl" && problems+=("a line is marked partial_window")
cmp -s "$resumed/model.safetensors" window-whole/model.safetensors || problems+=("the final weights differ from the uninterrupted run's")
shown_command="stn train --resume $resumed (from the checkpoint of iteration 3; lines every 4)" \
  shown_message="$(line_of "$resumed" 4) (= the uninterrupted run's line, samples_per_s aside)" \
  judge metrics "resumed inside a window: the first line carries the whole window" 0 \
  "resuming $resumed from the checkpoint of iteration 3" "$status" "${problems[@]}"
resumed=window-partial
status=0
timeout -k 10 "$per_case_timeout" "$stn" train --resume "$resumed" >out.txt 2>err.txt </dev/null || status=$?
problems=()
[[ "$(line_of "$resumed" 4)" == *'"partial_window":1,'* ]] ||
  problems+=("its line of iteration 4 is '$(line_of "$resumed" 4)', not marked \"partial_window\":1")
[[ "$(grep -c partial_window "$resumed/metrics.jsonl")" == 1 ]] || problems+=("not exactly one line marked partial_window")
shown_command="stn train --resume $resumed (its checkpoint of iteration 3 holds no window)" \
  shown_message="$(line_of "$resumed" 4)" \
  judge metrics "resumed from a checkpoint without the window: the partial line is marked" 0 \
  "resuming $resumed from the checkpoint of iteration 3" "$status" "${problems[@]}"

# Issue 11, item 14: signals. signalled SIGNAL TRIGGER ARGS...: runs `stn ARGS...` in the
# background, sends SIGNAL (a list: sent in turn, at once) once the file TRIGGER exists, and
# waits for the exit (killed after the case timeout); sets status and problems.
signalled() {
  local signals=$1 trigger=$2 signal
  shift 2
  "$stn" "$@" >out.txt 2>err.txt </dev/null &
  local pid=$! deadline=$((SECONDS + per_case_timeout))
  problems=()
  until [[ -e "$trigger" ]] || ! kill -0 $pid 2>/dev/null || ((SECONDS > deadline)); do sleep 0.01; done
  [[ -e "$trigger" ]] || problems+=("$trigger never appeared")
  for signal in $signals; do kill -s "$signal" $pid 2>/dev/null; done
  while kill -0 $pid 2>/dev/null && ((SECONDS <= deadline)); do sleep 0.05; done
  kill -0 $pid 2>/dev/null && { kill -9 $pid; problems+=("timed out after $per_case_timeout s"); }
  status=0
  wait $pid || status=$?
}
# The checkpoint an interruption message names ("after iteration N; checkpoint written")
# must be on disk, with the weights.
named_checkpoint() {
  local dir=$1 n
  n=$(grep -oE 'after iteration [0-9]+; checkpoint written' err.txt | grep -oE '[0-9]+' | head -n 1)
  [[ -n "$n" ]] || { problems+=("no 'after iteration N; checkpoint written' in the message"); return; }
  [[ -f "$dir/checkpoints/$(printf 'step-%08d' "$n").safetensors" && -f "$dir/checkpoints/$(printf 'step-%08d' "$n").state.safetensors" ]] ||
    problems+=("no checkpoint of iteration $n in $dir/checkpoints")
  [[ -f "$dir/model.safetensors" ]] || problems+=("no $dir/model.safetensors")
}
long_args=(--dataset mnist --data mnist --model fcn --iters 1000000 --batch 8 --threads 1 --checkpoint-every 20)
# The signal goes once checkpoints/ exists (made by the first checkpoint; the files of the
# first checkpoints themselves are pruned within milliseconds, too soon to be polled for).
first_checkpoint=checkpoints
for case in "HUP 129 1 SIGHUP (a closed terminal) is treated like SIGTERM" "TERM 143 15 SIGTERM"; do
  read -r signal expected number description <<<"$case"
  dir=runs-$signal
  signalled "$signal" "$dir/$first_checkpoint" train "${long_args[@]}" --out "$dir"
  named_checkpoint "$dir"
  grep -qF "continue with: stn train --resume $dir" err.txt || problems+=("no 'continue with' line")
  shown_command="stn train ... --iters 1000000 --out $dir; kill -$signal after its first checkpoint" \
    judge signals "$description: checkpoint, 'continue with', exit 128 + $number" "$expected" \
    "interrupted by signal $number after iteration" "$status" "${problems[@]}"
done
dir="runs sig/two quick"
signalled "INT INT" "$dir/$first_checkpoint" train "${long_args[@]}" --out "$dir"
named_checkpoint "$dir"
shown_command="stn train ... --out '$dir'; kill -INT twice at once after its first checkpoint" \
  judge signals "two quick SIGINTs: the 'continue with' line, its directory quoted" 130 \
  "; continue with: stn train --resume '$dir'" "$status" "${problems[@]}"
# A closed stdout: ignoring SIGPIPE makes it a write error, and that a clean stop.
dir=runs-pipe
status=0
# --iters 4000: a progress line every 200 iterations, so the first write after head has gone
# comes soon.
timeout -k 10 "$per_case_timeout" "$stn" train "${long_args[@]/#1000000/4000}" --out "$dir" 2>err.txt </dev/null |
  head -n 1 >out.txt
status=${PIPESTATUS[0]}
problems=()
named_checkpoint "$dir"
shown_command="stn train ... --out $dir | head -n 1" \
  judge signals "stdout closed (SIGPIPE ignored): a clean stop with a checkpoint, exit 128 + 13" 141 \
  "standard output was closed after iteration" "$status" "${problems[@]}"
# SIGINT in the final phase. The figures: a gnuplot that interrupts stn itself, so the signal
# arrives while the curves are drawn; the run stops with its weights final and checkpointed
# but without result.json, and a resume (with the real gnuplot, if any) finishes it.
mkdir -p gnuplot-interrupts
cat >gnuplot-interrupts/gnuplot <<SH
#!/bin/sh
out=\$(sed -n "s/^set output '\\(.*\\)'\$/\\1/p" "\$1" | head -n 1)
cp '$work/good.png' "\$out"
kill -INT \$PPID
SH
chmod +x gnuplot-interrupts/gnuplot
dir=runs-figures-signal
status=0
PATH="$PWD/gnuplot-interrupts:$PATH" timeout -k 10 "$per_case_timeout" "$stn" train "${fcn_args[@]}" --out "$dir" \
  >out.txt 2>err.txt </dev/null || status=$?
problems=()
[[ -e "$dir/result.json" ]] && problems+=("result.json written")
[[ -f "$dir/checkpoints/step-00000002.safetensors" ]] || problems+=("no final checkpoint")
grep -qF "continue with: stn train --resume $dir" err.txt || problems+=("no 'continue with' line")
cp out.txt interrupted.out; cp err.txt interrupted.err
"$stn" train --resume "$dir" >resume.log 2>&1 </dev/null || problems+=("the resume failed: $(tail -n 1 resume.log)")
[[ -f "$dir/result.json" ]] || problems+=("no result.json after the resume")
mv interrupted.out out.txt; mv interrupted.err err.txt
shown_command="stn train ... --out $dir (gnuplot sends stn SIGINT)" \
  judge signals "SIGINT while the curves are drawn: not swallowed, no result.json; a resume finishes" 130 \
  "interrupted by signal 2 during the figures, after all 2 iterations" "$status" "${problems[@]}"
# The final evaluation: the CNN on 4096 test images (a second or more), SIGINT as soon as
# model.safetensors appears, the last write before the evaluation (a fresh run writes it only
# then). The fragment holds for a signal in the writes just before too: both are the final
# phase, and the message names which.
fake_mnist eval-slow 4096 4096
dir=runs-eval-signal
signalled INT "$dir/model.safetensors" \
  train --dataset mnist --data eval-slow --model cnn --iters 2 --batch 8 --threads 1 --out "$dir"
[[ -e "$dir/result.json" ]] && problems+=("result.json written")
grep -q '"final"' "$dir/metrics.jsonl" && problems+=("the final metrics line written")
grep -qF "continue with: stn train --resume $dir" err.txt || problems+=("no 'continue with' line")
shown_command="stn train --model cnn ... --out $dir; kill -INT once model.safetensors appears" \
  judge signals "SIGINT during the final evaluation: not swallowed, no result.json" 130 \
  "after all 2 iterations; the final checkpoint and weights are written" "$status" "${problems[@]}"
# A full disk: a 64 KiB tmpfs (root only; skipped with a note elsewhere).
if [[ $(id -u) == 0 ]] && mkdir -p full && mount -t tmpfs -o size=64k tmpfs full 2>/dev/null; then
  head -c 60000 /dev/zero >full/filler 2>/dev/null
  check full-disk "warp --out on a full disk" 1 "full/out.png: cannot write temporary file: No space left on device" -- warp --input good.png --out full/out.png --size 200x200
  check full-disk "train --out on a full disk" 1 "No space left on device" -- train "${fcn_args[@]}" --out full/run
  umount full
else
  echo "note: the full-disk cases need root and a tmpfs mount; skipped"
fi
echo "$((cases - failures)) of $cases bad-input cases behave"
if ((table)); then
  echo
  echo "| input | case | command | exit status | message | result |"
  echo "| --- | --- | --- | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
fi
((failures == 0))
