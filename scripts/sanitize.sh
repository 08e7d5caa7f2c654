#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer (STN_SANITIZE=ON,
# RelWithDebInfo, clang++-14) into build-asan/ and runs the whole CTest suite there, leak
# checking on; any sanitizer report fails the test that triggers it, and so this script.
#
#   bash scripts/sanitize.sh                           # configure, build, run every test
#   bash scripts/sanitize.sh -R Idx                    # extra arguments go to ctest
#   bash scripts/sanitize.sh --build-only [TARGET...]  # configure and build (those targets) only
#
# The same build holds the libFuzzer targets (STN_FUZZ=ON; the library carries libFuzzer's
# coverage instrumentation too): scripts/fuzz.sh builds and runs them here, and the tests
# fuzz_corpus_<target> replay the committed corpus of tests/fuzz/ once under the sanitizers.
# One clang build for both instead of a gcc one for the tests and a clang one for the fuzz
# targets: the library is compiled once, and clang compiles it in ~40% less CPU time than gcc
# 12 under the sanitizers (safetensors.cpp: 49.5 -> 29.1 s, elementwise.cpp: 12.7 -> 8.0 s).
# Tests that need MNIST read it from data/mnist (scripts/setup.sh fetches it).
# Needs the Debian packages clang-14, libclang-rt-14-dev and libomp-14-dev (setup.sh installs
# them); CXX=... picks another clang++.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

say() { printf '\033[1m[sanitize]\033[0m %s\n' "$*"; }
die() { printf '[sanitize] error: %s\n' "$*" >&2; exit 1; }

build_only=0
build_targets=()
if [[ "${1:-}" == "--build-only" ]]; then
  build_only=1
  shift
  build_targets=("$@")
  set --
fi

cxx=${CXX:-clang++-14}
command -v "$cxx" >/dev/null 2>&1 ||
  die "$cxx not found; install the Debian packages clang-14 libclang-rt-14-dev libomp-14-dev"
"$cxx" --version | head -n 1 | grep -qi clang || die "$cxx is not clang (the build holds libFuzzer targets)"
[[ -f "$("$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]] ||
  die "clang's libFuzzer runtime is missing; install the Debian package libclang-rt-14-dev"

build=build-asan
flags=(-fsanitize=address,undefined -fno-omit-frame-pointer)
# -gline-tables-only: the sanitizers' stack traces keep every function, file and line
# (inlined frames too); what goes is the variable information a debugger needs, and with it
# ~15% of the compile time.
build_flags=(-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG")
# ccache, where installed: a machine that keeps its cache (CI, a developer's) recompiles only
# what changed; CCACHE_BASEDIR lets clones in other directories share it.
if command -v ccache >/dev/null 2>&1; then
  build_flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$here}"
fi
start=$SECONDS
say "configuring $build ($cxx, STN_SANITIZE=ON, STN_FUZZ=ON, RelWithDebInfo with line tables)"
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja "${build_flags[@]}" -DSTN_SANITIZE=ON -DSTN_FUZZ=ON \
  -DSTN_BUILD_BENCH=OFF >"$build/configure.log" 2>&1 ||
  { tail -n 30 "$build/configure.log" >&2; die "cmake configure failed (full log: $build/configure.log)"; }
say "building ${build_targets[*]:-everything}"
target_args=()
((${#build_targets[@]})) && target_args=(--target "${build_targets[@]}")
cmake --build "$build" -j"$(nproc)" "${target_args[@]}" >"$build/build.log" 2>&1 ||
  { grep -E "error|Error" "$build/build.log" | head -n 30 >&2; die "build failed (full log: $build/build.log)"; }
say "built in $((SECONDS - start)) s"
((build_only)) && exit 0

# detect_leaks: LeakSanitizer at exit. halt_on_error + print_stacktrace: the first UB report
# ends the process with a stack trace (the build also has -fno-sanitize-recover=undefined).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export STN_MNIST_DIR="$here/data/mnist"
# The crash-safety test runs seven short trainings, each ending in a 10k-image evaluation;
# with the CNN that is ~7 min under ASan, with the small FCN well under a minute. The CNN
# path is covered by the normal build's run of the same test.
export STN_RESUME_MODEL="${STN_RESUME_MODEL:-fcn-256}"
# Kill moments of that test: 3 here (the normal build's run does 10).
export STN_KILL_MOMENTS="${STN_KILL_MOMENTS:-3}"
# The full-disk test needs the CNN's slow steps to stop the run at chosen writes; under ASan
# that is ~10 minutes of evaluations for a test of error paths, not of memory: the normal
# build's run covers it, this one skips it (CTest: skipped).
export STN_SKIP_FULL_DISK="${STN_SKIP_FULL_DISK:-1}"
# Likewise the run-directory test: a dozen runs that each read MNIST and evaluate 10k images
# took over 6 minutes under ASan; its lock and --overwrite paths also run in bad_input here.
export STN_SKIP_RUN_DIR_TEST="${STN_SKIP_RUN_DIR_TEST:-1}"
# The test install_and_find_package builds a project against the installed (instrumented)
# library; these make that fresh configure use the same clang and link its sanitizer runtimes.
export CXX="$cxx" CXXFLAGS="${flags[*]}" LDFLAGS="${flags[*]}"

say "running the test suite (ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS)"
test_start=$SECONDS
status=0
# -LE mpi: tests labelled mpi run MPI jobs, and Open MPI's runtime reports its own
# allocations as leaks under LeakSanitizer; they run in the normal suite (scripts/test.sh).
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 1800 -LE mpi "$@" || status=$?
say "test suite: $((SECONDS - test_start)) s (total with build $((SECONDS - start)) s)"
((status == 0)) || die "sanitizer test suite failed (status $status); the sanitizer report is in the test output above"
say "clean: every test passed with no sanitizer report"
