#!/usr/bin/env bash
# scripts/table1.sh --status: where each run of a queue's --out stands. The run directories
# are written by hand as `stn train` and the script leave them: a finished run (result.json),
# a running one (a claim held by a live process, progress lines in its log), a stopped one
# (config.json and checkpoints, no claim holder alive), and the rest queued.
# Usage: queue_status_test.sh SCRIPTS_DIR
set -euo pipefail
script=$(realpath "$1")/table1.sh
work=$(mktemp -d)
sleep 600 &
holder=$!
trap 'kill "$holder" 2>/dev/null || true; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; echo "--- output:"; cat "$work/out"; exit 1; }
out=$work/runs
mkdir -p "$out/r-cnn" "$out/r-st-cnn-aff/checkpoints" "$out/p-cnn/checkpoints" "$out/logs" \
  "$out/claims/r-st-cnn-aff" "$out/claims/p-cnn"
printf '{\n  "seconds": 1830.5,\n  "test_error": 1.08,\n  "threads": 1\n}\n' >"$out/r-cnn/result.json"
echo '{"iterations": 80000}' >"$out/r-st-cnn-aff/config.json"
printf 'training st-cnn-aff on r\ntrain 4000/80000  loss 0.1  ETA 50:00\ntrain 8000/80000  loss 0.08  ETA 46:12\n' \
  >"$out/logs/r-st-cnn-aff.log"
echo "$holder" >"$out/claims/r-st-cnn-aff/pid"
printf '{\n  "iterations": 80000,\n  "seed": 1\n}\n' >"$out/p-cnn/config.json"
touch "$out/p-cnn/checkpoints/step-00002000.safetensors" "$out/p-cnn/checkpoints/step-00014000.safetensors"
# A run held back by hand: a live claim, no log.
mkdir "$out/claims/p-st-cnn-aff" && echo "$holder" >"$out/claims/p-st-cnn-aff/pid"
# A claim left by a process that has gone: the run counts as stopped, not running.
echo 999999999 >"$out/claims/p-cnn/pid"

bash "$script" --status --out "$out" >"$work/out" 2>&1 || fail "--status failed"
grep -qE '^done +r-cnn +test error 1.08%, 31 min of training$' "$work/out" || fail "the finished run"
grep -qE '^running +r-st-cnn-aff +train 8000/80000  loss 0.08  ETA 46:12$' "$work/out" || fail "the running run"
grep -qE '^stopped +p-cnn +at the checkpoint of iteration 14000 of 80000 \(resumes\)$' "$work/out" || fail "the stopped run"
grep -qE "^claimed +p-st-cnn-aff +by process $holder, no progress line yet$" "$work/out" || fail "the held run"
grep -qE '^queued +rts-cnn$' "$work/out" || fail "a queued run"
grep -q '1 done, 1 running, 1 claimed, 1 stopped, 48 queued (of 52 in' "$work/out" || fail "the summary"
bash "$script" --status --out "$out" --only 'r-*' >"$work/out" 2>&1 || fail "--status --only failed"
grep -q '1 done, 1 running, 0 claimed, 0 stopped, 10 queued (of 12 in' "$work/out" || fail "the summary with --only"
# --status reads and never writes: the claims and directories are as they were.
[[ $(cat "$out/claims/p-cnn/pid") == 999999999 ]] || fail "--status touched a claim"
grep -q 'does not exist' "$work/out" && fail "a note that an existing --out does not exist"
# An --out that does not exist (a mistyped directory): everything queued, and a note says why.
bash "$script" --status --out "$work/no-such-queue" >"$work/out" 2>&1 || fail "--status on a missing --out failed"
grep -q "0 done, .* 52 queued" "$work/out" || fail "the summary of a missing --out"
grep -qF "$work/no-such-queue does not exist (yet): no run of this queue has started there" "$work/out" || fail "no note for a missing --out"
[[ ! -e "$work/no-such-queue" ]] || fail "--status created the --out directory"
# A run stopped before its first checkpoint (config.json, no checkpoints directory): stopped
# at iteration 0, and the listing goes on past it.
mkdir "$out/e-cnn" && printf '{\n  "iterations": 80000\n}\n' >"$out/e-cnn/config.json"
bash "$script" --status --out "$out" >"$work/out" 2>&1 || fail "--status with a run stopped before its first checkpoint failed"
grep -qE '^stopped +e-cnn +at the checkpoint of iteration 0 of 80000 \(resumes\)$' "$work/out" || fail "the run without checkpoints"
grep -q '2 stopped, 47 queued (of 52 in' "$work/out" || fail "the summary with the run without checkpoints"
# A relative --out is taken from where the script was started, not from the checkout.
(cd "$work" && bash "$script" --status --out runs) >"$work/out" 2>&1 || fail "--status with a relative --out failed"
grep -qF "1 done, 1 running, 1 claimed, 2 stopped, 47 queued (of 52 in $work/runs)" "$work/out" || fail "a relative --out"
echo "ok"
