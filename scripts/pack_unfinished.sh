#!/usr/bin/env bash
# Packs the unfinished runs of a queue directory into one archive, so that they can resume on
# another machine (or after the run directory is gone): for each run under RUNS with a
# config.json and no result.json, its config.json, metrics.jsonl, newest checkpoint (weights
# and optimizer state) and console log (RUNS/logs/NAME.log). Finished runs are left out
# (scripts/collect_results.sh keeps their records); so are older checkpoints, the run's lock
# and its provisional model.safetensors. A run still in progress is packed as of its newest
# checkpoint, with a warning. Unpack into the queue directory and start the queue again:
#
#   bash scripts/pack_unfinished.sh runs/table unfinished.tar.gz
#   # ... elsewhere, in a checkout set up with scripts/setup.sh:
#   mkdir -p runs/table && tar -xzf unfinished.tar.gz -C runs/table
#   bash scripts/table1.sh --preset table --threads 1 --out runs/table   # resumes them
#
# A resumed run ends with the weights the uninterrupted run would have had, bit for bit, when
# it keeps the run's thread count and is built from the same code.
#
#   bash scripts/pack_unfinished.sh [RUNS] ARCHIVE.tar.gz
set -euo pipefail
die() { echo "pack_unfinished: $*" >&2; exit 2; }
case $# in
  1) runs=runs/table archive=$1 ;;
  2) runs=$1 archive=$2 ;;
  *) die "usage: $0 [RUNS] ARCHIVE.tar.gz" ;;
esac
[[ -d "$runs" ]] || die "$runs is not a directory"
[[ $archive == *.tar.gz || $archive == *.tgz ]] || die "$archive: the archive's name must end in .tar.gz or .tgz"
[[ ! -e "$archive" ]] || die "$archive exists; give a new name (nothing was written)"

members=()
for dir in "$runs"/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  [[ -f "$dir/config.json" && ! -f "$dir/result.json" ]] || continue
  newest=$({ ls "$dir/checkpoints" 2>/dev/null || true; } | sed -nE 's/^(step-[0-9]+)\.safetensors$/\1/p' | sort | tail -n 1)
  if [[ -z "$newest" ]]; then
    echo "pack_unfinished: $name has no checkpoint yet: left out (it starts afresh)" >&2
    continue
  fi
  [[ -f "$dir/checkpoints/$newest.state.safetensors" ]] ||
    { echo "pack_unfinished: $name: $newest has no optimizer state file: left out" >&2; continue; }
  holder=$(cat "$dir/.lock" 2>/dev/null || true)
  if [[ $holder =~ ^[0-9]+$ ]] && kill -0 "$holder" 2>/dev/null; then
    echo "pack_unfinished: $name is still running (pid $holder): packed as of its $newest" >&2
  fi
  members+=("$name/config.json" "$name/checkpoints/$newest.safetensors" "$name/checkpoints/$newest.state.safetensors")
  [[ -f "$dir/metrics.jsonl" ]] && members+=("$name/metrics.jsonl")
  [[ -f "$runs/logs/$name.log" ]] && members+=("logs/$name.log")
  echo "$name: $newest"
done
((${#members[@]})) || die "no unfinished run with a checkpoint under $runs (nothing was written)"
partial="$archive.partial.$$"
trap 'rm -f "$partial"' EXIT
tar -czf "$partial" -C "$runs" -- "${members[@]}"
mv -- "$partial" "$archive"
trap - EXIT
echo "packed ${#members[@]} files into $archive; unpack with: tar -xzf $archive -C RUNS"
