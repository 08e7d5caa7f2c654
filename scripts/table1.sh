#!/usr/bin/env bash
# Runs the paper's experiments with one preset, one after another, the most informative
# first, then prints the tables (`stn table --markdown`): Table 1 (8 models on R, RTS, P and
# E), TC (4 models), MNIST addition (4 models), and seeds 2 and 3 of the CNN and ST-CNN-Aff on
# R and RTS and of the CNN and 2xST-FCN on addition. Safe to stop and start again: a run with
# a result.json is skipped, an unfinished one is resumed from its newest checkpoint. Two
# copies may run at once on the same --out (one per core): each claims a run before starting
# it (OUT/claims/NAME, holding its process id), so they never take the same run.
#
#   bash scripts/table1.sh --preset table --threads 1       # every run
#   bash scripts/table1.sh --only 'rts-*'                   # the runs whose name matches
#   bash scripts/table1.sh --preset paper --only 'r-cnn' --only 'r-st-cnn-aff'
#
# Options: --preset NAME (default table), --threads N (default 0: all cores; keep it fixed
# for a run: it is part of the run's bits), --out DIR (default runs/<preset> in the
# checkout), --bin FILE (the stn binary to run, used as it is: copy it somewhere no build
# writes to; default: a private copy of build/stn per run; a relative --out or --bin is
# taken from the directory the script was started in), --only GLOB (repeatable), --list (print the runs and stop),
# --status (where each run of --out stands: done with its test error, running with its last
# progress line, claimed by a live process with no log yet, stopped at a checkpoint, or
# queued; then stop; safe beside running copies). To hold runs back from running copies,
# claim them by hand: mkdir OUT/claims/NAME and write a live process id to its pid file.
# Runs are named DATASET-MODEL for seed 1 and DATASET-MODEL-sN for seed N. Each writes
# OUT/NAME/ and its console output to OUT/logs/NAME.log.
# SIGINT or SIGTERM stops the current run at a checkpoint (exit 130/143) and the queue with it.
# --until TIME (anything `date -d` reads: "23:30", "2026-12-03 06:00", "now + 5 hours"; a bare
# time of day already past means tomorrow's) ends the queue at that time on its own, for a
# machine or job with a time limit: no run starts after it, and the run in progress is stopped
# at a checkpoint (SIGTERM) to resume later; the script then exits 0.
# Needs the set-up (scripts/setup.sh): build/stn (or --bin) and data/mnist.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
caller=$PWD
cd "$here"
# A relative --out or --bin names a path from where the script was started (the default
# runs/<preset> is the checkout's).
from_caller() { if [[ $1 == /* || $caller == "$here" ]]; then echo "$1"; else echo "$caller/$1"; fi; }

say() { printf '\033[1m[table1]\033[0m %s\n' "$*"; }
die() { printf '[table1] error: %s\n' "$*" >&2; exit 2; }

preset=table
threads=0
out=
bin=
only=()
list=0
status_only=0
until_text=
while (($#)); do
  case "$1" in
    --preset) [[ $# -ge 2 ]] || die "--preset needs a name"; preset=$2; shift 2 ;;
    --threads) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--threads needs a whole number"; threads=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a directory"; out=$2; shift 2 ;;
    --bin) [[ $# -ge 2 ]] || die "--bin needs the path of an stn binary"; bin=$2; shift 2 ;;
    --only) [[ $# -ge 2 ]] || die "--only needs a pattern such as 'rts-*'"; only+=("$2"); shift 2 ;;
    --list) list=1; shift ;;
    --status) status_only=1; shift ;;
    --until) [[ $# -ge 2 ]] || die "--until needs a time, e.g. 23:30 or 'now + 5 hours'"; until_text=$2; shift 2 ;;
    -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown option '$1' (known: --preset, --threads, --out, --bin, --only, --list, --status, --until)" ;;
  esac
done
if [[ -n "$out" ]]; then out=$(from_caller "$out"); else out="runs/$preset"; fi
[[ -z "$bin" ]] || bin=$(from_caller "$bin")
deadline=
if [[ -n "$until_text" ]]; then
  deadline=$(date -d "$until_text" +%s 2>/dev/null) || die "--until '$until_text' is not a time date -d reads (e.g. 23:30, '2026-12-03 06:00', 'now + 5 hours')"
  if ((deadline <= $(date +%s))) && [[ $until_text =~ ^[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?$ ]]; then
    deadline=$(date -d "tomorrow $until_text" +%s)
  fi
  ((deadline > $(date +%s))) || die "--until '$until_text' is in the past ($(date -d "@$deadline" '+%F %T'))"
fi

# "DATASET MODEL SEED", the most informative first: the CNN and ST-CNN-Aff where the paper's
# gap is clearest (R, P), then RTS and E, TC and addition, then the other rows, then seeds.
runs=()
for dataset in r p rts e; do runs+=("$dataset cnn 1" "$dataset st-cnn-aff 1"); done
runs+=("tc cnn 1" "tc st-cnn-aff 1" "add cnn 1" "add 2xst-fcn 1")
for dataset in r p rts e; do
  for model in st-cnn-tps st-cnn-proj fcn st-fcn-aff st-fcn-proj st-fcn-tps; do runs+=("$dataset $model 1"); done
done
runs+=("tc fcn 1" "tc st-fcn-aff 1" "add fcn 1" "add st-fcn-tps 1")
for seed in 2 3; do
  for run in "r cnn" "r st-cnn-aff" "rts cnn" "rts st-cnn-aff" "add cnn" "add 2xst-fcn"; do runs+=("$run $seed"); done
done

run_name() {  # DATASET MODEL SEED
  if [[ $3 == 1 ]]; then echo "$1-$2"; else echo "$1-$2-s$3"; fi
}

selected=()
for run in "${runs[@]}"; do
  read -r dataset model seed <<<"$run"
  name=$(run_name "$dataset" "$model" "$seed")
  if ((${#only[@]})); then
    keep=0
    for pattern in "${only[@]}"; do
      # shellcheck disable=SC2053  # the pattern is a glob on purpose
      [[ $name == $pattern ]] && keep=1
    done
    ((keep)) || continue
  fi
  selected+=("$run")
done
((${#selected[@]})) || die "no run matches --only ${only[*]} (runs are named DATASET-MODEL[-sSEED], e.g. rts-st-cnn-aff)"
if ((list)); then
  for run in "${selected[@]}"; do read -r dataset model seed <<<"$run"; run_name "$dataset" "$model" "$seed"; done
  exit 0
fi
# The process id holding run NAME's claim, when that process is alive (else nothing).
live_holder() {
  local holder
  holder=$(cat "$out/claims/$1/pid" 2>/dev/null || true)
  if [[ -n "$holder" ]] && kill -0 "$holder" 2>/dev/null; then echo "$holder"; fi
}
if ((status_only)); then
  # A JSON number field of a pretty-printed result.json, or "?".
  field() { sed -nE "s/^ *\"$2\": *([-0-9.eE+]+),?$/\1/p" "$1" | head -n 1 | grep . || echo "?"; }
  declare -A count=([done]=0 [running]=0 [claimed]=0 [stopped]=0 [queued]=0)
  for run in "${selected[@]}"; do
    read -r dataset model seed <<<"$run"
    name=$(run_name "$dataset" "$model" "$seed")
    dir="$out/$name"
    holder=$(live_holder "$name")
    if [[ -f "$dir/result.json" ]]; then
      seconds=$(field "$dir/result.json" seconds)
      minutes=$([[ $seconds == "?" ]] && echo "?" || awk -v s="$seconds" 'BEGIN { printf "%.0f", s / 60 }')
      state=done detail="test error $(field "$dir/result.json" test_error)%, $minutes min of training"
    elif [[ -n "$holder" ]]; then
      detail=$(grep -E '^(train|resuming|training) ' "$out/logs/$name.log" 2>/dev/null | tail -n 1 || true)
      state=running
      # No progress line: just started, or held back by hand (a claim holding a live process id).
      [[ -n "$detail" ]] || state=claimed detail="by process $holder, no progress line yet"
    elif [[ -f "$dir/config.json" ]]; then
      # No checkpoints directory yet (stopped before its first checkpoint): iteration 0.
      newest=$({ ls "$dir/checkpoints" 2>/dev/null || true; } | sed -nE 's/^step-0*([0-9]+)\.safetensors$/\1/p' | sort -n | tail -n 1)
      state=stopped detail="at the checkpoint of iteration ${newest:-0} of $(field "$dir/config.json" iterations) (resumes)"
    else
      state=queued detail=
    fi
    if [[ -n "$detail" ]]; then printf '%-8s %-22s %s\n' "$state" "$name" "$detail"; else printf '%-8s %s\n' "$state" "$name"; fi
    count[$state]=$((count[$state] + 1))
  done
  say "${count[done]} done, ${count[running]} running, ${count[claimed]} claimed, ${count[stopped]} stopped, ${count[queued]} queued (of ${#selected[@]} in $out)"
  [[ -d "$out" ]] || say "$out does not exist (yet): no run of this queue has started there; check --out and --preset"
  exit 0
fi
if [[ -n "$bin" ]]; then
  [[ -x "$bin" ]] || die "--bin $bin is not an executable file"
  binary=$bin
else
  [[ -x build/stn ]] || die "build/stn not found: run bash scripts/setup.sh first (or give --bin)"
  # Each run uses its own copy of the binary, so rebuilding build/stn meanwhile is harmless.
  binary=$(mktemp "${TMPDIR:-/tmp}/stn-table1.XXXXXX")
  trap 'rm -f "$binary"' EXIT
fi

mkdir -p "$out/logs" "$out/claims"
# A claim is a directory made atomically (mkdir); one whose process has gone is taken over.
claim() {
  local claim_dir="$out/claims/$1"
  if ! mkdir "$claim_dir" 2>/dev/null; then
    [[ -z $(live_holder "$1") ]] || return 1
    rm -rf "$claim_dir"
    mkdir "$claim_dir" 2>/dev/null || return 1
  fi
  echo $$ >"$claim_dir/pid"
}
release() { rm -rf "$out/claims/$1"; }

start=$SECONDS
done_count=0
for run in "${selected[@]}"; do
  read -r dataset model seed <<<"$run"
  name=$(run_name "$dataset" "$model" "$seed")
  dir="$out/$name"
  log="$out/logs/$name.log"
  if [[ -f "$dir/result.json" ]]; then
    done_count=$((done_count + 1))
    continue
  fi
  if [[ -n "$deadline" ]] && (($(date +%s) + 1 >= deadline)); then
    say "the --until time ($(date -d "@$deadline" '+%F %T')) has come: $name and the runs after it not started"
    exit 0
  fi
  if ! claim "$name"; then
    say "$name: taken by another copy of this script, skipped"
    continue
  fi
  [[ -n "$bin" ]] || { cp build/stn "$binary" && chmod u+x "$binary"; }
  if [[ -f "$dir/config.json" ]]; then
    say "$name: resuming the unfinished run in $dir (log: $log)"
    # The checkout's data, as for a fresh run (a run unpacked from another machine recorded that one's).
    command=("$binary" train --resume "$dir" --threads "$threads" --data data/mnist --cache data/cache)
  else
    say "$name: starting ($preset preset, seed $seed, log: $log)"
    command=("$binary" train --preset "$preset" --dataset "$dataset" --model "$model" --seed "$seed"
             --threads "$threads" --out "$dir")
    # A run killed before it wrote its config.json left nothing to resume: start it afresh.
    [[ ! -d "$dir" ]] || command+=(--overwrite)
  fi
  status=0
  run_start=$SECONDS
  if [[ -n "$deadline" ]]; then
    # At the deadline timeout sends SIGTERM: the run stops at a checkpoint and timeout says 124.
    timeout --foreground --signal=TERM "$((deadline - $(date +%s)))" "${command[@]}" >>"$log" 2>&1 || status=$?
  else
    "${command[@]}" >>"$log" 2>&1 || status=$?
  fi
  release "$name"
  case $status in
    124) say "$name: stopped at the --until time ($(date -d "@$deadline" '+%F %T')) at a checkpoint; run this script again to resume it"
         exit 0 ;;
    0) say "$name: done in $((SECONDS - run_start)) s: $(tail -n 1 "$log")"; done_count=$((done_count + 1)) ;;
    130|143) say "$name: interrupted; its checkpoint is kept, run this script again to resume"; exit "$status" ;;
    *) tail -n 20 "$log" >&2; die "$name failed with status $status (full log: $log)" ;;
  esac
done
say "$done_count of ${#selected[@]} runs finished ($((SECONDS - start)) s in this call)"
"$binary" table --runs "$out" --markdown
