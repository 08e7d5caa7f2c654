#!/usr/bin/env bash
# Data-parallel training over MPI (`mpirun -np 2 stn train`, stn::distributed):
#   1. the CNN and the ST-CNN Aff, 200 iterations of global batch 64 on 2 ranks, end with the
#      weights of one process taking the same batches in 2 micro-batches (--micro-batches 2:
#      the same sums in the same order), bit for bit; two 2-rank runs are bitwise equal; after 5
#      iterations, 2 ranks and one process taking each batch in one pass agree to 1e-4 (that
#      process associates the float sums otherwise, and training grows the difference: by 200
#      iterations it is percents, README, Data-parallel training);
#   2. a rank killed with SIGKILL ends the job within 30 s, non-zero, the launcher naming the
#      rank; `--resume` under mpirun then ends with the uninterrupted 2-rank run's weights, bit
#      for bit; one process resumes a copy of the killed run (with a notice) and evaluates the
#      2-rank run's weights to its recorded test error;
#   3. ranks started with different flags are refused before anything is written; an error on
#      one rank (its data directory) ends every rank with that error; commands other than
#      train refuse to run on several ranks.
# Usage: mpi_test.sh STN_BINARY MNIST_DIR
set -euo pipefail
stn=$(realpath "$1")
data=$(realpath "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
[[ -f "$data/train-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
command -v mpirun >/dev/null 2>&1 || { echo "SKIPPED: mpirun not found (Debian: openmpi-bin libopenmpi-dev; scripts/setup.sh installs them)"; exit 77; }
"$python" -c "import numpy" 2>/dev/null || { echo "needs python3-numpy (scripts/setup.sh installs it)"; exit 1; }
# Open MPI refuses to run as root unless told (CI runs as root); no single-copy shared memory
# (containers often forbid the ptrace it needs); two ranks on two cores may be oversubscribed
# by the build running beside.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
mpi=(mpirun -np 2 --bind-to none)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
compare() { "$python" "$here/mpi/compare_weights.py" "$@"; }
base=(--dataset r --cache "$work/cache" --threads 1 --log-every 50)
common=("${base[@]}" --data "$data" --batch 64 --iters 200)
short=("${base[@]}" --data "$data" --batch 64 --iters 5)

# 1. Two ranks = one process in two micro-batches; two 2-rank runs are equal.
for model in ${STN_MPI_TEST_MODELS:-cnn st-cnn-aff}; do
  "${mpi[@]}" "$stn" train "${common[@]}" --model "$model" --out "$model-np2" >"$model-np2.log" 2>&1 ||
    { cat "$model-np2.log"; fail "$model: mpirun -np 2 failed"; }
  grep -q "on each of 2 ranks" "$model-np2.log" || { cat "$model-np2.log"; fail "$model: the run did not say it ran on 2 ranks"; }
  "${mpi[@]}" "$stn" train "${common[@]}" --model "$model" --out "$model-np2-again" >/dev/null 2>&1 ||
    fail "$model: the second mpirun -np 2 failed"
  "$stn" train "${common[@]}" --model "$model" --micro-batches 2 --out "$model-micro" >/dev/null 2>&1 ||
    fail "$model: the one-process run with --micro-batches 2 failed"
  echo "$model, 2 ranks vs one process in 2 micro-batches: $(compare "$model-np2/model.safetensors" "$model-micro/model.safetensors")"
  compare "$model-np2/model.safetensors" "$model-micro/model.safetensors" --bitwise --rtol 1e-4 >/dev/null ||
    fail "$model: 2 ranks and one process with 2 micro-batches ended with different weights"
  compare "$model-np2/model.safetensors" "$model-np2-again/model.safetensors" --bitwise >/dev/null ||
    fail "$model: two 2-rank runs ended with different weights"
  echo "$model, two 2-rank runs: bitwise equal"
  # Against one process taking each batch in one pass, before training has grown the rounding
  # differences: 5 iterations agree to 1e-4 (a wrongly weighted sum would be off by far more).
  "${mpi[@]}" "$stn" train "${short[@]}" --model "$model" --out "$model-np2-short" >/dev/null 2>&1 ||
    fail "$model: the short 2-rank run failed"
  "$stn" train "${short[@]}" --model "$model" --out "$model-one-short" >/dev/null 2>&1 ||
    fail "$model: the short one-process run failed"
  echo "$model, 5 iterations, 2 ranks vs one process in one pass: $(compare "$model-np2-short/model.safetensors" "$model-one-short/model.safetensors")"
  compare "$model-np2-short/model.safetensors" "$model-one-short/model.safetensors" --rtol 1e-4 >/dev/null ||
    fail "$model: after 5 iterations 2 ranks and one process differ by more than 1e-4"
  "$python" - "$model-np2/result.json" "$model-np2/config.json" <<'PY' || fail "$model: result.json or config.json does not record 2 ranks"
import json, sys
result, config = (json.load(open(p)) for p in sys.argv[1:])
assert result["ranks"] == 2 and result["threads"] == 1 and config["ranks"] == 2, (result, config)
assert result["allreduce_seconds"] > 0, result
PY
done

# 2. A rank killed: the job ends promptly; the run resumes to the uninterrupted weights.
run=killed
"${mpi[@]}" "$stn" train "${common[@]}" --model cnn --checkpoint-every 50 --out "$run" >"$run.log" 2>&1 &
launcher=$!
until [[ -f "$run/checkpoints/step-00000050.state.safetensors" ]]; do
  kill -0 $launcher 2>/dev/null || { cat "$run.log"; fail "the 2-rank run ended before its first checkpoint"; }
  sleep 0.05
done
# Rank 1: the child of mpirun whose environment says so (from /proc: no procps needed).
victim=
for proc in /proc/[0-9]*; do
  stat=$(cat "$proc/stat" 2>/dev/null) || continue
  fields=(${stat##*) })  # after "(command)": state, then the parent's pid
  [[ "${fields[1]:-}" == "$launcher" ]] || continue
  if tr '\0' '\n' <"$proc/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then victim=${proc#/proc/}; fi
done
[[ -n "$victim" ]] || fail "no rank 1 process found under mpirun (pid $launcher)"
kill -9 "$victim"
killed_at=$SECONDS
status=0
for _ in $(seq 300); do kill -0 $launcher 2>/dev/null || break; sleep 0.1; done
if kill -0 $launcher 2>/dev/null; then kill -9 $launcher; fail "mpirun still running 30 s after rank 1 was killed"; fi
wait $launcher || status=$?
took=$((SECONDS - killed_at))
[[ $status -ne 0 ]] || fail "the job exited 0 after rank 1 was killed"
grep -qi "rank 1" "$run.log" || { cat "$run.log"; fail "the launcher's message does not name rank 1"; }
echo "rank 1 killed: mpirun exited with status $status after ${took} s: $(grep -i -m1 'rank 1' "$run.log" | sed 's/^ *//')"
cp -r "$run" "$run-one"
"${mpi[@]}" "$stn" train --resume "$run" >"$run-resume.log" 2>&1 || { cat "$run-resume.log"; fail "--resume under mpirun failed"; }
grep -q "resuming" "$run-resume.log" || { cat "$run-resume.log"; fail "the resumed run did not say it resumed"; }
compare "$run/model.safetensors" cnn-np2/model.safetensors --bitwise >/dev/null ||
  fail "the resumed 2-rank run's weights differ from the uninterrupted 2-rank run's"
echo "killed and resumed under mpirun: bitwise equal to the uninterrupted 2-rank run"
"$stn" train --resume "$run-one" >"$run-one.log" 2>&1 || { cat "$run-one.log"; fail "one process could not resume the 2-rank run"; }
grep -q "was trained on 2 ranks and resumes on 1" "$run-one.log" || { cat "$run-one.log"; fail "no notice that the rank count changed"; }
echo "one process resumed the killed 2-rank run (notice given): $(compare "$run-one/model.safetensors" cnn-np2/model.safetensors)"
"$stn" eval --run cnn-np2 --threads 1 >eval.log 2>&1 || { cat eval.log; fail "stn eval of the 2-rank run failed"; }
"$python" - eval.log cnn-np2/result.json <<'PY' || fail "stn eval's test error differs from the 2-rank run's"
import json, sys
evaluated = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
recorded = json.load(open(sys.argv[2]))
assert evaluated["test_error"] == recorded["test_error"], (evaluated["test_error"], recorded["test_error"])
print(f"stn eval of the 2-rank run in one process: test error {evaluated['test_error']}%, as recorded")
PY

# 3. Refusals.
status=0
mpirun -np 1 --bind-to none "$stn" train "${base[@]}" --iters 200 --data "$data" --model cnn --batch 64 --out differ : \
       -np 1 --bind-to none "$stn" train "${base[@]}" --iters 200 --data "$data" --model cnn --batch 32 --out differ >differ.log 2>&1 || status=$?
[[ $status -ne 0 ]] || fail "ranks with different --batch were not refused"
grep -q "rank 1 of 2 was started with other training flags than rank 0: batch 32 (rank 0: 64)" differ.log ||
  { cat differ.log; fail "the refusal does not name the flag that differs"; }
[[ ! -e differ ]] || fail "a refused job created its run directory"
echo "different flags on the ranks: refused, naming 'batch 32 (rank 0: 64)'; nothing written"
status=0
mpirun -np 1 --bind-to none "$stn" train "${base[@]}" --iters 200 --batch 64 --data "$data" --model cnn --out baddata : \
       -np 1 --bind-to none "$stn" train "${base[@]}" --iters 200 --batch 64 --data "$work/nowhere" --model cnn --out baddata >baddata.log 2>&1 || status=$?
[[ $status -ne 0 ]] || fail "a rank without its data did not fail the job"
grep -q "error (rank 1 of 2): MNIST data directory '$work/nowhere' does not exist" baddata.log ||
  { cat baddata.log; fail "the failing rank's error was not reported"; }
echo "an error on rank 1 (its data directory) ended the job with status $status and its message"
status=0
"${mpi[@]}" "$stn" models --dataset r >models.log 2>&1 || status=$?
[[ $status -ne 0 ]] && grep -q "only \`stn train\` runs on several MPI ranks" models.log ||
  { cat models.log; fail "stn models under mpirun -np 2 was not refused (status $status)"; }
echo "stn models under mpirun -np 2: refused"
echo "ok"
