#!/usr/bin/env bash
# Copies the record of every finished run under RUNS (default runs/table) into
# docs/results/<preset>/NAME/: config.json, result.json, metrics.jsonl, transformer.png if
# there is one, and model.safetensors for the cells whose weights the README promises (seed 1
# of the CNN and ST-CNN-Aff on R and RTS, and of the 2xST-FCN on addition). Unfinished runs
# (no result.json) are left alone. Prints what it copied; commit those files by name.
# Absolute paths in config.json and result.json (a queue started with --out /somewhere) are
# recorded as the README's commands, run from the checkout, record them (data/mnist,
# data/cache, runs/<group>/NAME), so the committed files name no particular machine and
# `stn eval --run docs/results/...` finds the data of any checkout.
#
#   bash scripts/collect_results.sh [RUNS] [PRESET]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=${1:-runs/table}
preset=${2:-$(basename "$runs")}
[[ -d "$runs" ]] || { echo "collect_results: $runs is not a directory" >&2; exit 2; }
destination="$here/docs/results/$preset"
group=$(basename "$runs")
weights=(r-cnn r-st-cnn-aff rts-cnn rts-st-cnn-aff add-2xst-fcn)
scratch=$(mktemp)
trap 'rm -f "$scratch"' EXIT
# Writes FILE of run NAME to standard output with its absolute paths made checkout-relative.
portable() {
  sed -E -e 's#^(  "(data_dir|cache_dir)": )"/[^"]*/([^"/]+)"#\1"data/\3"#' \
         -e 's#^(  "(out|run)": )"/[^"]*"#\1"runs/'"$group/$2"'"#' "$1"
}
for dir in "$runs"/*/; do
  name=$(basename "$dir")
  [[ -f "$dir/result.json" ]] || continue
  if [[ ! $name =~ ^[A-Za-z0-9._-]+$ ]]; then
    echo "collect_results: skipping $dir: a run's name is letters, digits, '.', '_' and '-'" >&2
    continue
  fi
  mkdir -p "$destination/$name"
  files=(config.json result.json metrics.jsonl)
  [[ -f "$dir/transformer.png" ]] && files+=(transformer.png)
  for cell in "${weights[@]}"; do [[ $name == "$cell" ]] && files+=(model.safetensors); done
  for file in "${files[@]}"; do
    source="$dir/$file"
    if [[ $file == config.json || $file == result.json ]]; then
      portable "$source" "$name" > "$scratch"
      source=$scratch
    fi
    if ! cmp -s "$source" "$destination/$name/$file" 2>/dev/null; then
      cp "$source" "$destination/$name/$file"
      echo "docs/results/$preset/$name/$file"
    fi
  done
done
