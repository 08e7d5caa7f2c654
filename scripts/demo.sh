#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs the main job: an ST-CNN (affine) trained on
# RTS-distorted MNIST with the demo preset; prints the test error (the last line is a JSON
# summary) and writes runs/demo/transformer.png (input, sampling box, transformer output).
# --overwrite: each run of the script replaces the previous demo run (a fresh run refuses a
# run directory that holds one).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
./build/stn train --preset demo --out runs/demo --overwrite
