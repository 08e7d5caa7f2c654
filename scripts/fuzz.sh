#!/usr/bin/env bash
# Builds the libFuzzer targets of the file readers (tests/fuzz/) with clang++-14 and
# AddressSanitizer + UndefinedBehaviorSanitizer into build-fuzz/, then runs each for a bounded
# time starting from a fresh copy of its committed seed corpus (tests/fuzz/corpus/<target>/).
#
#   bash scripts/fuzz.sh                     # every target, 60 s each
#   bash scripts/fuzz.sh --seconds 20        # what CI (.ci/run) runs: every target, 20 s each
#   bash scripts/fuzz.sh --seconds 300 npy   # one target, longer
#
# Targets: idx (IDX reader, plain and gzip), safetensors (checkpoint decoder and loader),
# npy (npy decoder), image (PNG/image reader), image_memory (the image reader under a small
# decoder memory limit: its allocation-failure paths), config (a run's config.json reader). Fails (exit 1) on any finding: a crash, a
# sanitizer report, a leak, a timeout, an out-of-memory or a broken reader contract; it then
# prints the path of the input that triggers it and the command that replays it. To keep a
# finding as a regression test, copy that input into tests/fuzz/corpus/<target>/crash-<what>
# once the bug is fixed (the test fuzz_corpus_<target> replays the corpus).
#
# Needs clang-14 and its libFuzzer runtime (Debian: clang-14, libclang-rt-14-dev, libomp-14-dev).
# Options: --seconds N (per target, default 60), --build-only, CXX=... to use another clang++.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

all_targets=(idx safetensors npy image image_memory config)
seconds=60
build_only=0
targets=()
while (($#)); do
  case "$1" in
    --seconds)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --seconds needs a positive whole number" >&2; exit 2; }
      seconds=$2; shift 2 ;;
    --seconds=*)
      seconds=${1#--seconds=}
      [[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --seconds needs a positive whole number" >&2; exit 2; }
      shift ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option '$1' (known: --seconds N, --build-only)" >&2; exit 2 ;;
    *)
      [[ " ${all_targets[*]} " == *" $1 "* ]] || { echo "fuzz: unknown target '$1' (known: ${all_targets[*]})" >&2; exit 2; }
      targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")

say() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }
die() { printf '[fuzz] error: %s\n' "$*" >&2; exit 1; }

cxx=${CXX:-clang++-14}
command -v "$cxx" >/dev/null 2>&1 ||
  die "$cxx not found; install the Debian packages clang-14 libclang-rt-14-dev libomp-14-dev"
"$cxx" --version | head -n 1 | grep -qi clang || die "$cxx is not clang (libFuzzer needs clang)"
runtime=$("$cxx" -print-file-name=libclang_rt.fuzzer-x86_64.a)
[[ -f "$runtime" ]] || die "clang's libFuzzer runtime is missing; install the Debian package libclang-rt-14-dev"

build=build-fuzz
# Line tables only (-gline-tables-only): a finding's stack trace keeps its functions, files and
# lines, and the compile is cheaper than with full debug information. ccache where installed
# (see scripts/sanitize.sh).
build_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -gline-tables-only -DNDEBUG")
if command -v ccache >/dev/null 2>&1; then
  build_flags+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$here}"
fi
say "configuring $build ($cxx, -fsanitize=fuzzer,address,undefined)"
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" "${build_flags[@]}" \
  -DSTN_SANITIZE=ON -DSTN_FUZZ=ON \
  -DSTN_BUILD_TESTS=OFF -DSTN_BUILD_BENCH=OFF -DSTN_BUILD_PROGRAM=OFF >"$build/configure.log" 2>&1 ||
  { tail -n 30 "$build/configure.log" >&2; die "cmake configure failed (full log: $build/configure.log)"; }
say "building ${targets[*]/#/fuzz_}"
start=$SECONDS
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >"$build/build.log" 2>&1 ||
  { grep -E "error|Error" "$build/build.log" | head -n 30 >&2; die "build failed (full log: $build/build.log)"; }
say "built in $((SECONDS - start)) s"
((build_only)) && exit 0

# Leaks count as findings; any UB report stops the run with a stack trace.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export OMP_NUM_THREADS=1

failed=()
summary=()
for target in "${targets[@]}"; do
  work="$here/$build/fuzz-runs/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$work/corpus/"
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix="$work/artifacts/")
  [[ -f tests/fuzz/$target.dict ]] && options+=(-dict="$here/tests/fuzz/$target.dict")
  say "$target: ${seconds} s from $(ls "$work/corpus" | wc -l) seed inputs (log: $build/fuzz-runs/$target/fuzz.log)"
  status=0
  (cd "$work" && "$here/$build/fuzz_$target" "${options[@]}" "$work/corpus") >"$work/fuzz.log" 2>&1 || status=$?
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/fuzz.log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
  rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$work/fuzz.log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$work/fuzz.log" | tail -n 1 || true)
  artifact=$(find "$work/artifacts" -type f | head -n 1)
  if ((status != 0)) || [[ -n "$artifact" ]]; then
    failed+=("$target")
    summary+=("$target: FINDING after ${runs:-?} runs (exit status $status)")
    printf '\n[fuzz] %s: finding (exit status %s). Last lines of the log:\n' "$target" "$status" >&2
    grep -nE 'ERROR: |SUMMARY: |runtime error|fuzz check failed|terminate called|==[0-9]+==' "$work/fuzz.log" | head -n 20 >&2 || true
    tail -n 25 "$work/fuzz.log" >&2
    if [[ -n "$artifact" ]]; then
      printf '[fuzz] crashing input: %s\n' "$artifact" >&2
      printf '[fuzz] replay it:      %s/%s/fuzz_%s %s\n\n' "$here" "$build" "$target" "$artifact" >&2
    else
      printf '[fuzz] no input was saved (see %s/fuzz.log)\n\n' "$work" >&2
    fi
  else
    summary+=("$target: ok, ${runs:-?} runs in ${seconds} s (${rate:-?}/s), ${cov:-no coverage line}")
  fi
done

say "summary"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  die "findings in: ${failed[*]} (inputs under $build/fuzz-runs/<target>/artifacts/)"
fi
say "no findings"
