#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the whole test suite with CTest.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh "$@"
export STN_MNIST_DIR="$here/data/mnist"
ctest --test-dir build --output-on-failure -j"$(nproc)"
