#!/usr/bin/env bash
# Builds the libFuzzer targets of the file readers (tests/fuzz/) with clang++-14 and
# AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ (scripts/sanitize.sh's
# build), then runs each for a bounded time, two at a time, starting from a fresh copy of its
# committed seed corpus (tests/fuzz/corpus/<target>/).
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
# Options: --seconds N (per target, default 60), --jobs N (targets run at once, default: the
# number of cores), --build-only, CXX=... to use another clang++.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

all_targets=(idx safetensors npy image image_memory config)
seconds=60
jobs=$(nproc)
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
    --jobs)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --jobs needs a positive whole number" >&2; exit 2; }
      jobs=$2; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "fuzz: unknown option '$1' (known: --seconds N, --jobs N, --build-only)" >&2; exit 2 ;;
    *)
      [[ " ${all_targets[*]} " == *" $1 "* ]] || { echo "fuzz: unknown target '$1' (known: ${all_targets[*]})" >&2; exit 2; }
      targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=("${all_targets[@]}")

say() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }
die() { printf '[fuzz] error: %s\n' "$*" >&2; exit 1; }

# The fuzz targets live in scripts/sanitize.sh's build (build-asan/: clang++-14, ASan + UBSan,
# the library with libFuzzer's coverage instrumentation), so that CI compiles the library
# once for the sanitizer suite and the fuzzers; after sanitize.sh this build does nothing.
# sanitize.sh checks for clang and its libFuzzer runtime (CXX=... picks another clang++).
build=build-asan
start=$SECONDS
bash scripts/sanitize.sh --build-only "${targets[@]/#/fuzz_}" || die "could not build the fuzz targets (see above)"
say "fuzz targets ready in $((SECONDS - start)) s"
((build_only)) && exit 0

# Leaks count as findings; any UB report stops the run with a stack trace.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
export OMP_NUM_THREADS=1

# Two targets at a time by default (--jobs): libFuzzer runs one process per target, on one
# core, so on a 2-core machine two of them take the time of one; each still gets its full
# --seconds.
fuzz_one() {  # fuzz_one TARGET: one bounded run; its exit status goes to fuzz-runs/TARGET/status
  local target=$1 work="$here/$build/fuzz-runs/$1" status=0
  local options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
                 -artifact_prefix="$work/artifacts/")
  [[ -f tests/fuzz/$target.dict ]] && options+=(-dict="$here/tests/fuzz/$target.dict")
  (cd "$work" && "$here/$build/fuzz_$target" "${options[@]}" "$work/corpus") >"$work/fuzz.log" 2>&1 || status=$?
  echo "$status" >"$work/status"
}
running=0
for target in "${targets[@]}"; do
  work="$here/$build/fuzz-runs/$target"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp tests/fuzz/corpus/"$target"/* "$work/corpus/"
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
  say "$target: ${seconds} s from $(ls "$work/corpus" | wc -l) seed inputs (log: $build/fuzz-runs/$target/fuzz.log)"
  fuzz_one "$target" &
  running=$((running + 1))
done
wait

failed=()
summary=()
for target in "${targets[@]}"; do
  work="$here/$build/fuzz-runs/$target"
  status=$(cat "$work/status" 2>/dev/null || echo "unknown")
  runs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/fuzz.log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
  rate=$(grep -Eo 'stat::average_exec_per_sec: *[0-9]+' "$work/fuzz.log" | grep -Eo '[0-9]+$' | tail -n 1 || true)
  cov=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$work/fuzz.log" | tail -n 1 || true)
  artifact=$(find "$work/artifacts" -type f | head -n 1)
  if [[ "$status" != 0 ]] || [[ -n "$artifact" ]]; then
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
