#!/usr/bin/env bash
# `stn train --preset`: the preset's numbers reach the run's config.json for the dataset and
# model given on the command line (the table preset's localisation rate depends on both),
# and a flag given beside the preset overrides it.
# Usage: preset_cli_test.sh STN_BINARY MNIST_DIR
set -euo pipefail
stn=$(realpath "$1")
data=$(realpath "$2")
[[ -f "$data/train-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
loc_scale() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["loc_lr_scale"], 4))' "$1/config.json"; }
run() { # NAME ARGS...: one iteration, config.json kept
  local name=$1; shift
  "$stn" train --data "$data" --cache cache --iters 1 --threads 1 --batch 8 --out "$name" "$@" >"$name.log" 2>&1 ||
    { cat "$name.log"; fail "stn train $* failed"; }
}
expect() { # NAME WANT
  local got; got=$(loc_scale "$1")
  [[ "$got" == "$2" ]] || fail "$1: loc_lr_scale $got, expected $2"
}

run rts-st-fcn-aff --preset table --dataset rts --model st-fcn-aff
expect rts-st-fcn-aff 0.3
run rts-st-fcn-proj --preset table --dataset rts --model st-fcn-proj
expect rts-st-fcn-proj 1.0
run rts-st-fcn-aff-1x --preset table --dataset rts --model st-fcn-aff --loc-lr-scale 1
expect rts-st-fcn-aff-1x 1.0
run rts-st-fcn-aff-fast --preset fast --dataset rts --model st-fcn-aff
expect rts-st-fcn-aff-fast 1.0
run p-st-cnn-aff --preset table --dataset p --model st-cnn-aff
expect p-st-cnn-aff 0.3
echo "ok: the table preset gives RTS ST-FCN-Aff 0.3x and RTS ST-FCN-Proj 1x, P 0.3x; --loc-lr-scale overrides it; fast keeps 1x"
