#!/usr/bin/env bash
# Crash safety of `stn train` (issues: reliability, rounds one and two):
#   1. a run killed with SIGKILL at STN_KILL_MOMENTS random moments (default 10; 40 for the
#      full local check), half of them spread over the whole run and half inside its final
#      phase (final checkpoint, weights, evaluation, metrics line, figures, result), and then
#      resumed (or, killed before its first checkpoint, started again with --overwrite) ends
#      with weights bitwise identical to an uninterrupted run (fixed thread count), the same
#      metrics lines (the window open at the checkpoint is carried) and no temporary file;
#   2. a truncated or byte-flipped newest checkpoint is reported and the previous one used;
#   3. SIGINT finishes the step, writes a checkpoint and exits with 130; SIGHUP likewise
#      (129); a closed stdout (`| head -n 1`) likewise (141); two quick SIGINTs still print
#      the command that continues, with the directory quoted; SIGINT during the final
#      evaluation exits 130 without result.json, and the resume finishes the run;
#   4. a resume from another working directory finds a run started with a relative --data.
# Usage: resume_test.sh STN_BINARY MNIST_DIR
# STN_RESUME_MODEL picks the model (default cnn); the sanitizer build uses fcn-256, whose
# test-set evaluation is fast enough under AddressSanitizer.
set -euo pipefail
stn=$(realpath "$1")
data=$(realpath "$2")
[[ -f "$data/train-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--dataset mnist --data "$data" --model "${STN_RESUME_MODEL:-cnn}" --iters 40 --batch 32 --checkpoint-every 5 --threads 2 --log-every 3)
moments=${STN_KILL_MOMENTS:-10}
fail() { echo "FAIL: $*"; exit 1; }
# metrics.jsonl without the timing field, which differs between any two runs.
metrics_of() { sed -E 's/"samples_per_s":[^,}]*,?//' "$1/metrics.jsonl"; }
same_run() {  # same_run DIR WHAT: DIR ended like the uninterrupted run
  cmp "$work/full/model.safetensors" "$1/model.safetensors" || fail "weights differ from the uninterrupted run ($2)"
  diff <(metrics_of "$work/full") <(metrics_of "$1") >/dev/null || { diff <(metrics_of "$work/full") <(metrics_of "$1") | head || true; fail "metrics differ ($2)"; }
  [[ -f "$1/result.json" ]] || fail "no result.json ($2)"
  local left
  left=$(find "$1" -name '.*.tmp-*' | head -n 3)
  [[ -z "$left" ]] || fail "temporary files left ($2): $left"
}
now_ms() { date +%s%3N; }
start_ms=$(now_ms)
"$stn" train "${common[@]}" --out "$work/full" >/dev/null
full_ms=$(($(now_ms) - start_ms))
echo "uninterrupted run: $full_ms ms"

# 1. SIGKILL at random moments, then resume until the run is finished.
phases=()
for ((k = 0; k < moments; k++)); do
  dir="$work/killed-$k"
  "$stn" train "${common[@]}" --out "$dir" >/dev/null 2>&1 &
  pid=$!
  if ((k % 2 == 0)); then
    sleep "$(awk -v ms=$((RANDOM * full_ms / 32768)) 'BEGIN { printf "%.3f", ms / 1000 }')"
  else
    # Inside the final phase: after the final checkpoint's state file appears.
    until [[ -f "$dir/checkpoints/step-00000040.state.safetensors" ]] || ! kill -0 $pid 2>/dev/null; do sleep 0.005; done
    sleep "0.$(printf '%03d' $((RANDOM % 1000 * full_ms / 4000 % 1000)))"
  fi
  kill -9 $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  phase="training"
  [[ -f "$dir/checkpoints/step-00000040.state.safetensors" ]] && phase="final writes"
  grep -q '"final"' "$dir/metrics.jsonl" 2>/dev/null && phase="figures"
  [[ -f "$dir/result.json" ]] && phase="after the end"
  [[ -d "$dir/checkpoints" ]] || phase="before the first checkpoint"
  phases+=("$phase")
  if [[ ! -f "$dir/result.json" ]]; then
    if ! "$stn" train --resume "$dir" >"$work/resume.log" 2>&1; then
      grep -qE "no usable checkpoint|not a run directory" "$work/resume.log" || { cat "$work/resume.log"; fail "resume failed (moment $k, $phase)"; }
      "$stn" train "${common[@]}" --out "$dir" --overwrite >"$work/resume.log" 2>&1 || { cat "$work/resume.log"; fail "restart failed (moment $k)"; }
    fi
  fi
  same_run "$dir" "moment $k, killed during $phase"
  [[ $k -lt $((moments - 1)) ]] && rm -rf "$dir"
done
printf '%s\n' "${phases[@]}" | sort | uniq -c | sed 's/^/  killed during: /'
echo "ok: SIGKILL at $moments moments + resume gives bitwise-identical weights and metrics every time"
mv "$work/killed-$((moments - 1))" "$work/killed"

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

# 3. Signals. SIGINT: checkpoint, exit 130, resume to the same end. Started from the data's
# parent directory with a relative --data, resumed from elsewhere (item 4).
wait_for_checkpoint() {
  until [[ -f "$1/checkpoints/step-00000005.safetensors" ]]; do
    kill -0 "$2" 2>/dev/null || fail "training ended before its first checkpoint"
    sleep 0.02
  done
}
relative_common=("${common[@]}")
relative_common[3]=$(basename "$data")
(cd "$(dirname "$data")" && exec "$stn" train "${relative_common[@]}" --out "$work/interrupted") >"$work/int.log" 2>&1 &
pid=$!
wait_for_checkpoint "$work/interrupted" $pid
kill -INT $pid
status=0
wait $pid || status=$?
[[ $status -eq 130 ]] || { cat "$work/int.log"; fail "SIGINT exit status $status, expected 130"; }
grep -q "interrupted by signal 2" "$work/int.log" || fail "no interruption message"
(cd "$work" && "$stn" train --resume interrupted >/dev/null 2>&1) || fail "resume after SIGINT (from another directory) failed"
same_run "$work/interrupted" "SIGINT + resume from another directory"
echo "ok: SIGINT -> checkpoint, exit 130, resume from another directory gives identical weights"

# SIGHUP (a closed terminal) is treated like SIGTERM.
"$stn" train "${common[@]}" --out "$work/hangup" >"$work/hup.log" 2>&1 &
pid=$!
wait_for_checkpoint "$work/hangup" $pid
kill -HUP $pid
status=0
wait $pid || status=$?
[[ $status -eq 129 ]] || { cat "$work/hup.log"; fail "SIGHUP exit status $status, expected 129"; }
"$stn" train --resume "$work/hangup" >/dev/null 2>&1 || fail "resume after SIGHUP failed"
same_run "$work/hangup" "SIGHUP + resume"
echo "ok: SIGHUP -> checkpoint, exit 129, resume gives identical weights"

# A closed stdout: `stn train | head -n 1` stops cleanly with a checkpoint.
status=0
"$stn" train "${common[@]}" --out "$work/pipe" 2>"$work/pipe.log" > >(head -n 1 >/dev/null) || status=$?
[[ $status -eq 141 ]] || { cat "$work/pipe.log"; fail "closed stdout: exit status $status, expected 141"; }
grep -q "standard output was closed after iteration" "$work/pipe.log" || { cat "$work/pipe.log"; fail "no message about the closed stdout"; }
"$stn" train --resume "$work/pipe" >/dev/null 2>&1 || fail "resume after a closed stdout failed"
same_run "$work/pipe" "closed stdout + resume"
echo "ok: closed stdout -> checkpoint, exit 141, resume gives identical weights"

# Two quick SIGINTs: the message with the quoted directory still comes out.
spaced="$work/my run"
"$stn" train "${common[@]}" --out "$spaced" >"$work/twice.log" 2>&1 &
pid=$!
wait_for_checkpoint "$spaced" $pid
kill -INT $pid; kill -INT $pid
status=0
wait $pid || status=$?
[[ $status -eq 130 ]] || { cat "$work/twice.log"; fail "two SIGINTs: exit status $status, expected 130"; }
grep -qF "continue with: stn train --resume '$spaced'" "$work/twice.log" || { cat "$work/twice.log"; fail "two SIGINTs: no quoted 'continue with' line"; }
"$stn" train --resume "$spaced" >/dev/null 2>&1 || fail "resume after two SIGINTs failed"
same_run "$spaced" "two SIGINTs + resume"
echo "ok: two quick SIGINTs -> exit 130 with the quoted continue-with line"

# SIGINT during the final evaluation is not swallowed.
"$stn" train "${common[@]}" --out "$work/final" >"$work/final.log" 2>&1 &
pid=$!
until [[ -f "$work/final/checkpoints/step-00000040.state.safetensors" ]] || ! kill -0 $pid 2>/dev/null; do sleep 0.002; done
kill -INT $pid 2>/dev/null || true
status=0
wait $pid || status=$?
if [[ -f "$work/final/result.json" ]]; then
  echo "note: the run finished before the signal arrived (status $status)"
  [[ $status -eq 0 ]] || fail "finished run exited $status"
else
  [[ $status -eq 130 ]] || { cat "$work/final.log"; fail "SIGINT in the final phase: exit status $status, expected 130"; }
  grep -q "after all 40 iterations; the final checkpoint and weights are written" "$work/final.log" || { cat "$work/final.log"; fail "no final-phase message"; }
  "$stn" train --resume "$work/final" >/dev/null 2>&1 || fail "resume after a final-phase SIGINT failed"
  echo "ok: SIGINT in the final phase -> exit 130, no result.json; $(grep -o 'during [a-z ]*,' "$work/final.log" | head -n 1)"
fi
same_run "$work/final" "SIGINT in the final phase + resume"
echo "1 passed, 0 failed"
