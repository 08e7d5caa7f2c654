#!/usr/bin/env bash
# scripts/table1.sh --until TIME: at TIME the run in progress is stopped at a checkpoint
# (SIGTERM, which `stn train` answers by writing one and exiting 143), no later run starts,
# its claim is released and the script exits 0; a time that is not one, or one already past,
# is refused before anything runs; a bare time of day already past means tomorrow's. The
# runs are a stand-in for `stn train` (a script given as --bin), so the test takes seconds.
# Usage: queue_until_test.sh SCRIPTS_DIR
set -euo pipefail
script=$(realpath "$1")/table1.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; echo "--- output:"; cat "$work/out"; exit 1; }

# The stand-in: `train ... --out DIR` writes DIR/config.json and trains until SIGTERM, on which
# it writes a checkpoint and exits 143, as stn train does.
cat >"$work/fake-stn" <<'EOF'
#!/usr/bin/env bash
out=
while (($#)); do [[ $1 == --out ]] && out=$2; shift; done
mkdir -p "$out/checkpoints"
printf '{\n  "iterations": 80000\n}\n' >"$out/config.json"
trap 'touch "$out/checkpoints/step-00002000.safetensors"; echo "stopped by SIGTERM"; exit 143' TERM
echo "train 1/80000"
while :; do sleep 0.1; done
EOF
chmod +x "$work/fake-stn"
queue=(--bin "$work/fake-stn" --threads 1 --out "$work/runs" --only r-cnn --only r-st-cnn-aff)

started=$(date +%s)
status=0
# (a guard of 60 s, so that a queue that ignores --until fails the test instead of hanging it)
timeout --signal=KILL 60 bash "$script" "${queue[@]}" --until 'now + 3 seconds' >"$work/out" 2>&1 || status=$?
pkill -f "$work/fake-stn" 2>/dev/null || true
elapsed=$(($(date +%s) - started))
[[ $status -eq 0 ]] || fail "--until: exit status $status, expected 0"
((elapsed >= 2 && elapsed <= 15)) || fail "--until 'now + 3 seconds' ended after $elapsed s"
grep -q "r-cnn: stopped at the --until time (.*) at a checkpoint; run this script again to resume it" "$work/out" ||
  fail "no message for the run stopped at the deadline"
grep -q "stopped by SIGTERM" "$work/runs/logs/r-cnn.log" || fail "the run was not sent SIGTERM"
[[ -f "$work/runs/r-cnn/checkpoints/step-00002000.safetensors" ]] || fail "the stopped run wrote no checkpoint"
[[ ! -e "$work/runs/r-st-cnn-aff" ]] || fail "a run started after the --until time"
[[ ! -e "$work/runs/claims/r-cnn" ]] || fail "the stopped run's claim was not released"
bash "$script" --status "${queue[@]}" >"$work/out" 2>&1 || fail "--status after --until failed"
grep -qE '^stopped +r-cnn +at the checkpoint of iteration 2000 of 80000 \(resumes\)$' "$work/out" || fail "--status of the stopped run"

# Refused before anything runs: not a time; a date already past.
for bad in 'half past nine-ish' '2001-01-01 00:00'; do
  status=0
  bash "$script" "${queue[@]}" --out "$work/refused" --until "$bad" >"$work/out" 2>&1 || status=$?
  [[ $status -eq 2 ]] || fail "--until '$bad': exit status $status, expected 2"
  [[ ! -e "$work/refused" ]] || fail "--until '$bad' was refused after the queue directory was made"
done
grep -q "is in the past" "$work/out" || fail "no 'in the past' message for a past date"
# A bare time of day already past today is tomorrow's (--list stops before anything runs).
bash "$script" --list --only r-cnn --until "$(date -d '2 minutes ago' +%H:%M)" >"$work/out" 2>&1 ||
  fail "--until with a time of day already past today (tomorrow's) was refused"
echo "ok: table1.sh --until"
