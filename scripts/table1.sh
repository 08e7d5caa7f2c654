#!/usr/bin/env bash
# Runs the experiments of the paper's Table 1 (and the TC column) one after another with one
# preset, then prints the table (`stn table --markdown`). Safe to stop and start again: a run
# with a result.json is skipped, an unfinished one is resumed from its newest checkpoint.
#
#   bash scripts/table1.sh                       # the fast preset, every run, 2 threads
#   bash scripts/table1.sh --only 'rts-*'        # the runs whose name (DATASET-MODEL) matches
#   bash scripts/table1.sh --preset paper --only 'r-cnn' --only 'r-st-cnn-aff'
#
# Options: --preset NAME (default fast), --threads N (default 0: all cores), --out DIR
# (default runs/<preset>), --only GLOB (repeatable), --list (print the runs and stop).
# Each run writes OUT/DATASET-MODEL/ and its console output to OUT/logs/DATASET-MODEL.log.
# SIGINT or SIGTERM stops the current run at a checkpoint (exit 130/143) and the queue with it.
# Needs the set-up (scripts/setup.sh): build/stn and data/mnist.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

say() { printf '\033[1m[table1]\033[0m %s\n' "$*"; }
die() { printf '[table1] error: %s\n' "$*" >&2; exit 2; }

preset=fast
threads=0
out=
only=()
list=0
while (($#)); do
  case "$1" in
    --preset) [[ $# -ge 2 ]] || die "--preset needs a name"; preset=$2; shift 2 ;;
    --threads) [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--threads needs a whole number"; threads=$2; shift 2 ;;
    --out) [[ $# -ge 2 ]] || die "--out needs a directory"; out=$2; shift 2 ;;
    --only) [[ $# -ge 2 ]] || die "--only needs a pattern such as 'rts-*'"; only+=("$2"); shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (known: --preset, --threads, --out, --only, --list)" ;;
  esac
done
[[ -n "$out" ]] || out="runs/$preset"

# The acceptance list of the experiments issue: four models on the four 28/42 px datasets,
# the CNN and the affine ST-CNN on translated + cluttered MNIST.
runs=()
for dataset in r rts p e; do
  for model in cnn st-cnn-aff st-cnn-tps fcn; do runs+=("$dataset $model"); done
done
runs+=("tc cnn" "tc st-cnn-aff")

selected=()
for run in "${runs[@]}"; do
  name=${run/ /-}
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
((${#selected[@]})) || die "no run matches --only ${only[*]} (runs are named DATASET-MODEL, e.g. rts-st-cnn-aff)"
if ((list)); then
  for run in "${selected[@]}"; do echo "${run/ /-}"; done
  exit 0
fi
[[ -x build/stn ]] || die "build/stn not found: run bash scripts/setup.sh first"

mkdir -p "$out/logs"
# Each run uses its own copy of the binary, so rebuilding build/stn meanwhile is harmless.
binary=$(mktemp "${TMPDIR:-/tmp}/stn-table1.XXXXXX")
trap 'rm -f "$binary"' EXIT

start=$SECONDS
done_count=0
for run in "${selected[@]}"; do
  read -r dataset model <<<"$run"
  name="$dataset-$model"
  dir="$out/$name"
  log="$out/logs/$name.log"
  if [[ -f "$dir/result.json" ]]; then
    say "$name: finished earlier, skipped ($dir/result.json)"
    done_count=$((done_count + 1))
    continue
  fi
  cp build/stn "$binary" && chmod u+x "$binary"
  if [[ -f "$dir/config.json" ]]; then
    say "$name: resuming the unfinished run in $dir (log: $log)"
    command=("$binary" train --resume "$dir" --threads "$threads")
  else
    say "$name: starting ($preset preset, log: $log)"
    command=("$binary" train --preset "$preset" --dataset "$dataset" --model "$model" --threads "$threads" --out "$dir")
  fi
  status=0
  run_start=$SECONDS
  "${command[@]}" >>"$log" 2>&1 || status=$?
  case $status in
    0) say "$name: done in $((SECONDS - run_start)) s: $(tail -n 1 "$log")"; done_count=$((done_count + 1)) ;;
    130|143) say "$name: interrupted; its checkpoint is kept, run this script again to resume"; exit "$status" ;;
    *) tail -n 20 "$log" >&2; die "$name failed with status $status (full log: $log)" ;;
  esac
done
say "$done_count of ${#selected[@]} runs finished ($((SECONDS - start)) s in this call)"
"$here/build/stn" table --runs "$out" --markdown
