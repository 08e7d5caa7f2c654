#!/usr/bin/env bash
# Crash safety of `stn train` (issue: reliability):
#   1. a run killed with SIGKILL at a random moment and resumed ends with weights
#      bitwise identical to an uninterrupted run (fixed thread count);
#   2. a truncated or byte-flipped newest checkpoint is reported and the previous one used;
#   3. SIGINT finishes the step, writes a checkpoint and exits with 130.
# Usage: resume_test.sh STN_BINARY MNIST_DIR
# STN_RESUME_MODEL picks the model (default cnn); the sanitizer build uses fcn-256, whose
# test-set evaluation is fast enough under AddressSanitizer.
set -euo pipefail
stn=$1
data=$2
[[ -f "$data/train-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--dataset mnist --data "$data" --model "${STN_RESUME_MODEL:-cnn}" --iters 40 --batch 32 --checkpoint-every 5 --threads 2 --log-every 5)
fail() { echo "FAIL: $*"; exit 1; }

"$stn" train "${common[@]}" --out "$work/full" >/dev/null

# 1. SIGKILL at a random moment after the first checkpoint, then resume.
"$stn" train "${common[@]}" --out "$work/killed" >/dev/null 2>&1 &
pid=$!
until [[ -f "$work/killed/checkpoints/step-00000005.safetensors" ]]; do
  kill -0 $pid 2>/dev/null || fail "training ended before its first checkpoint"
  sleep 0.05
done
sleep "0.$((RANDOM % 10))"
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true
echo "killed after checkpoints: $(ls "$work/killed/checkpoints" | grep -c state) kept"
[[ -f "$work/killed/metrics.jsonl" && -f "$work/killed/config.json" ]] || fail "killed run left no metrics/config"
"$stn" train --resume "$work/killed" >"$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "resume failed"; }
cmp "$work/full/model.safetensors" "$work/killed/model.safetensors" || fail "resumed weights differ from the uninterrupted run"
echo "ok: SIGKILL + resume gives bitwise-identical weights"

# 2. Corrupt the newest checkpoint: truncate its weights, or flip bytes in its state.
for damage in truncate flip; do
  cp -r "$work/killed" "$work/$damage"
  rm -f "$work/$damage/result.json"
  newest=$(ls "$work/$damage/checkpoints" | grep -v state | sort | tail -n 1)
  newest_state="${newest%.safetensors}.state.safetensors"
  if [[ $damage == truncate ]]; then
    truncate -s 100 "$work/$damage/checkpoints/$newest"
  else
    printf '\xff\xff\xff\xff' | dd of="$work/$damage/checkpoints/$newest_state" bs=1 seek=20 conv=notrunc 2>/dev/null
  fi
  "$stn" train --resume "$work/$damage" >"$work/$damage.log" 2>&1 || { cat "$work/$damage.log"; fail "resume after $damage failed"; }
  grep -q "unusable" "$work/$damage.log" || { cat "$work/$damage.log"; fail "no message about the corrupt checkpoint ($damage)"; }
  grep -q "from the checkpoint of iteration 35" "$work/$damage.log" || { cat "$work/$damage.log"; fail "did not fall back to iteration 35 ($damage)"; }
  cmp "$work/full/model.safetensors" "$work/$damage/model.safetensors" || fail "weights differ after falling back ($damage)"
  echo "ok: $damage newest checkpoint -> reported, fell back to the previous one"
done

# 3. SIGINT: checkpoint, exit 130, resume to the same end.
"$stn" train "${common[@]}" --out "$work/interrupted" >"$work/int.log" 2>&1 &
pid=$!
until [[ -f "$work/interrupted/checkpoints/step-00000005.safetensors" ]]; do
  kill -0 $pid 2>/dev/null || fail "training ended before its first checkpoint"
  sleep 0.05
done
kill -INT $pid
status=0
wait $pid || status=$?
[[ $status -eq 130 ]] || { cat "$work/int.log"; fail "SIGINT exit status $status, expected 130"; }
grep -q "interrupted by signal 2" "$work/int.log" || fail "no interruption message"
"$stn" train --resume "$work/interrupted" >/dev/null 2>&1 || fail "resume after SIGINT failed"
cmp "$work/full/model.safetensors" "$work/interrupted/model.safetensors" || fail "weights differ after SIGINT + resume"
echo "ok: SIGINT -> checkpoint, exit 130, resume gives identical weights"
echo "1 passed, 0 failed"
