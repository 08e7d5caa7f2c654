#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh, with PyTorch for the one test that loads our weights in
# it) and runs the whole test suite with CTest. Options are setup.sh's.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
bash scripts/setup.sh --with-torch "$@"
export STN_MNIST_DIR="$here/data/mnist"
ctest --test-dir build --output-on-failure -j"$(nproc)"
