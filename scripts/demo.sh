#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs the main job: trains the CNN on MNIST for
# one epoch and prints its test error (the last line is a JSON summary).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh
./build/stn train --dataset mnist --model cnn --epochs 1 --out runs/demo
