#!/usr/bin/env bash
# Run directories (experiments/run_dir.h): two `stn train` into one directory at once, the
# second refused while the first finishes untouched; a fresh run refusing a directory that
# holds a run; --overwrite replacing it (the new run's weights equal a run in a new
# directory); --overwrite refusing a directory with files stn did not write; a killed run's
# lock released, so it resumes.
# Usage: run_dir_test.sh STN_BINARY MNIST_DIR
set -euo pipefail
stn=$(realpath "$1")
data=$(realpath "$2")
[[ -f "$data/train-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
if [[ "${STN_SKIP_RUN_DIR_TEST:-0}" == 1 ]]; then
  echo "SKIPPED: STN_SKIP_RUN_DIR_TEST=1 (scripts/sanitize.sh sets it; the normal build runs this test)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
common=(--dataset mnist --data "$data" --model fcn --batch 32 --threads 1 --log-every 5 --checkpoint-every 10)

# Two at once: the second is refused and the first ends as if alone.
"$stn" train "${common[@]}" --iters 300 --seed 2 --out reference >/dev/null
"$stn" train "${common[@]}" --iters 300 --seed 2 --out shared >first.log 2>&1 &
first=$!
until [[ -f shared/config.json ]]; do kill -0 $first 2>/dev/null || fail "the first run ended early"; sleep 0.01; done
status=0
"$stn" train "${common[@]}" --iters 300 --seed 3 --out shared >second.log 2>&1 || status=$?
[[ $status -eq 1 ]] || { cat second.log; fail "second run into a busy directory: status $status, expected 1"; }
grep -q "shared: in use by another stn process (pid $first)" second.log || { cat second.log; fail "second run: no 'in use' message naming pid $first"; }
status=0
"$stn" train --resume shared >third.log 2>&1 || status=$?
[[ $status -eq 1 ]] && grep -q "in use by another stn process" third.log || { cat third.log; fail "--resume of a running run was not refused (status $status)"; }
wait $first || { cat first.log; fail "the first run failed"; }
cmp reference/model.safetensors shared/model.safetensors || fail "the first run's weights were disturbed"
[[ $(grep -c '"iter"' shared/metrics.jsonl) == $(grep -c '"iter"' reference/metrics.jsonl) ]] || fail "metrics.jsonl got extra lines"
echo "ok: a second stn train and a --resume of a running run are refused; the first run is untouched"

# A fresh run into a directory holding a run is refused; --overwrite replaces it.
status=0
"$stn" train "${common[@]}" --iters 20 --seed 5 --out shared >refused.log 2>&1 || status=$?
[[ $status -eq 1 ]] && grep -q "shared: the run directory is not empty" refused.log || { cat refused.log; fail "non-empty directory not refused"; }
grep -q "stn train --resume shared" refused.log && grep -q -- "--overwrite" refused.log || fail "the refusal does not say how to go on"
cmp reference/model.safetensors shared/model.safetensors || fail "a refused run changed the old one"
"$stn" train "${common[@]}" --iters 20 --seed 5 --out fresh >/dev/null
"$stn" train "${common[@]}" --iters 20 --seed 5 --out shared --overwrite >/dev/null || fail "--overwrite failed"
cmp fresh/model.safetensors shared/model.safetensors || fail "--overwrite: weights differ from a run in a new directory"
[[ $(ls shared/checkpoints | grep -c state) -le 3 && ! -e shared/checkpoints/step-00000300.safetensors ]] || fail "--overwrite kept old checkpoints: $(ls shared/checkpoints)"
"$stn" train --resume shared --iters 30 >/dev/null || fail "resume after --overwrite failed"
"$stn" train --resume fresh --iters 30 >/dev/null
cmp fresh/model.safetensors shared/model.safetensors || fail "resume after --overwrite continued the old run"
echo "ok: a non-empty run directory is refused; --overwrite replaces the old run, and a resume continues the new one"

# --overwrite touches nothing in a directory holding files stn did not write.
mkdir mine && echo "notes" >mine/notes.txt && "$stn" train "${common[@]}" --iters 5 --out mine-run >/dev/null
cp -r mine-run/* mine/
status=0
"$stn" train "${common[@]}" --iters 5 --out mine --overwrite >mine.log 2>&1 || status=$?
[[ $status -eq 1 ]] && grep -q "'notes.txt' is not one of those" mine.log || { cat mine.log; fail "--overwrite of a foreign directory not refused"; }
[[ -f mine/notes.txt && -f mine/model.safetensors ]] || fail "--overwrite removed files before refusing"
echo "ok: --overwrite refuses a directory holding other files, and removes nothing"

# A killed run's lock goes with it.
"$stn" train "${common[@]}" --iters 5000 --out killed >/dev/null 2>&1 &
pid=$!
until [[ -f killed/checkpoints/step-00000010.safetensors ]]; do kill -0 $pid 2>/dev/null || fail "ended early"; sleep 0.01; done
kill -9 $pid; wait $pid 2>/dev/null || true
"$stn" train --resume killed --iters 5000 --threads 1 >/dev/null 2>&1 &
pid=$!
sleep 1
kill -0 $pid 2>/dev/null || { wait $pid; fail "resume of a killed run did not start"; }
kill -INT $pid; wait $pid 2>/dev/null || true
echo "ok: the lock of a run killed with SIGKILL is released"
echo "1 passed, 0 failed"
