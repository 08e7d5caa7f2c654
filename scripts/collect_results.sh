#!/usr/bin/env bash
# Copies the record of every finished run under RUNS (default runs/table) into
# docs/results/<preset>/NAME/: config.json, result.json, metrics.jsonl, transformer.png if
# there is one, and model.safetensors for the cells whose weights the README promises (seed 1
# of the CNN and ST-CNN-Aff on R and RTS, and of the 2xST-FCN on addition). Unfinished runs
# (no result.json) are left alone. Prints what it copied; commit those files by name.
#
#   bash scripts/collect_results.sh [RUNS] [PRESET]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=${1:-runs/table}
preset=${2:-$(basename "$runs")}
[[ -d "$runs" ]] || { echo "collect_results: $runs is not a directory" >&2; exit 2; }
destination="$here/docs/results/$preset"
weights=(r-cnn r-st-cnn-aff rts-cnn rts-st-cnn-aff add-2xst-fcn)
for dir in "$runs"/*/; do
  name=$(basename "$dir")
  [[ -f "$dir/result.json" ]] || continue
  mkdir -p "$destination/$name"
  files=(config.json result.json metrics.jsonl)
  [[ -f "$dir/transformer.png" ]] && files+=(transformer.png)
  for cell in "${weights[@]}"; do [[ $name == "$cell" ]] && files+=(model.safetensors); done
  for file in "${files[@]}"; do
    if ! cmp -s "$dir/$file" "$destination/$name/$file" 2>/dev/null; then
      cp "$dir/$file" "$destination/$name/$file"
      echo "docs/results/$preset/$name/$file"
    fi
  done
done
