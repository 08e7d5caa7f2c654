#!/usr/bin/env bash
# A full disk at each kind of write of `stn train` (issue 11, acceptance 3): the run goes on a
# small tmpfs; the test stops the process at a chosen point (SIGSTOP), fills the disk, lets
# it go on, and checks that the failed write of a checkpoint, of the weights, of a metrics
# line and of the curves each ends in a non-zero exit with a message naming the file, that
# metrics.jsonl holds no torn line, and that once space is back the run resumes from its
# previous checkpoint to weights bitwise identical to an uninterrupted run.
# Needs root (to mount the tmpfs); elsewhere it says so and exits 77 (CTest: skipped).
# Usage: full_disk_test.sh STN_BINARY MNIST_DIR
set -euo pipefail
stn=$(realpath "$1")
data=$(realpath "$2")
[[ -f "$data/train-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
if [[ "${STN_SKIP_FULL_DISK:-0}" == 1 ]]; then
  echo "SKIPPED: STN_SKIP_FULL_DISK=1 (scripts/sanitize.sh sets it; the normal build runs this test)"
  exit 77
fi
work=$(mktemp -d)
disk="$work/disk"
trap 'umount "$disk" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$disk"
if [[ $(id -u) != 0 ]] || ! mount -t tmpfs -o size=16m tmpfs "$disk" 2>/dev/null; then
  echo "SKIPPED: the full-disk test needs root and permission to mount a tmpfs (it mounts a 16 MiB one)"
  exit 77
fi
fail() { echo "FAIL: $*"; exit 1; }
common=(--dataset mnist --data "$data" --model cnn --iters 40 --batch 32 --threads 2 --log-every 1)
fill() { dd if=/dev/zero of="$disk/filler" bs=4k >/dev/null 2>&1 || true; }
unfill() { rm -f "$disk/filler"; }
"$stn" train "${common[@]}" --checkpoint-every 5 --out "$work/reference" >/dev/null

# run_until NAME FILE ARGS...: starts a run into the tmpfs, stops it once FILE exists in it.
run_until() {
  local name=$1 file=$2
  shift 2
  "$stn" train "${common[@]}" "$@" --out "$disk/$name" >"$work/$name.log" 2>&1 &
  pid=$!
  until [[ -e "$disk/$name/$file" ]]; do
    kill -0 $pid 2>/dev/null || { cat "$work/$name.log"; fail "$name: the run ended before $file appeared"; }
    sleep 0.005
  done
  kill -STOP $pid
}
# finish NAME FRAGMENT: lets the stopped run go on into the full disk, checks its failure.
finish() {
  local name=$1 fragment=$2 status=0
  kill -CONT $pid
  wait $pid || status=$?
  ((status != 0)) || fail "$name: exit status 0 on a full disk"
  grep -qF -- "$fragment" "$work/$name.log" || { cat "$work/$name.log"; fail "$name: no '$fragment' in the message"; }
  grep -q "No space left on device" "$work/$name.log" || grep -q "gnuplot" "$work/$name.log" ||
    { cat "$work/$name.log"; fail "$name: the message does not say why"; }
  if [[ -f "$disk/$name/metrics.jsonl" ]]; then
    local torn
    torn=$(grep -v '^ *$' "$disk/$name/metrics.jsonl" | grep -cv '^{.*}$' || true)
    [[ $torn == 0 ]] || fail "$name: $torn torn or partial lines in metrics.jsonl"
  fi
  unfill
  "$stn" train --resume "$disk/$name" >"$work/$name.resume.log" 2>&1 || { cat "$work/$name.resume.log"; fail "$name: resume failed"; }
  cmp "$work/reference/model.safetensors" "$disk/$name/model.safetensors" || fail "$name: resumed weights differ"
  echo "ok: $name: status $status, '$(grep -m1 'stn: error' "$work/$name.log" | cut -c1-150)'; resumed to identical weights"
  rm -rf "${disk:?}/$name"
}

# A checkpoint: the disk fills after the checkpoint of iteration 5; the next one fails.
run_until checkpoint checkpoints/step-00000005.safetensors --checkpoint-every 5
fill
finish checkpoint "checkpoints/step-00000010"

# The weights: evaluations every 10 iterations rewrite model.safetensors before the checkpoint.
run_until weights checkpoints/step-00000005.safetensors --checkpoint-every 5 --eval-every 10
fill
finish weights "weights/model.safetensors"

# A metrics line: the disk fills and the last page of metrics.jsonl is padded full (a blank
# line, which a resume drops), so the next line cannot be written.
run_until metrics checkpoints/step-00000020.safetensors --checkpoint-every 20
fill
size=$(stat -c %s "$disk/metrics/metrics.jsonl")
pad=$((4096 - size % 4096 - 1))
((pad < 0)) && pad=$((pad + 4096))
{ head -c "$pad" /dev/zero | tr '\0' ' '; echo; } >>"$disk/metrics/metrics.jsonl" 2>/dev/null || true
finish metrics "metrics/metrics.jsonl: cannot write a metrics line"

# The curves: gnuplot runs into a full disk (a stand-in fills it, then runs the real one).
if real=$(command -v gnuplot); then
  mkdir -p "$work/bin"
  printf '#!/bin/sh\ndd if=/dev/zero of="%s/filler" bs=4k >/dev/null 2>&1\nexec "%s" "$@"\n' "$disk" "$real" >"$work/bin/gnuplot"
  chmod +x "$work/bin/gnuplot"
  PATH="$work/bin:$PATH" run_until curves checkpoints/step-00000005.safetensors --checkpoint-every 5
  finish curves "curves/curves.png"
else
  echo "note: gnuplot is not installed; the curves case is skipped"
fi
echo "1 passed, 0 failed"
