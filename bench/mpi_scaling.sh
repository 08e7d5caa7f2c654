#!/usr/bin/env bash
# Data-parallel throughput on this machine, in one run (ours alternately, `ROUNDS` rounds):
# the CNN and the ST-CNN Aff on R (28x28), global batch 256, as one process with 2 threads,
# 2 ranks of 1 thread, and 2 ranks of 2 threads (4 threads on 2 cores: oversubscribed); the
# allreduce's share of a step (its time inside training, which includes waiting for the slower
# rank, and on its own, from bench/mpi/allreduce.cpp); then the communication cost model for
# K machines (README, Data-parallel training). Prints Markdown.
#
#   bash bench/mpi_scaling.sh [BUILD_DIR]      # default build/; ROUNDS=2 ITERS=150 by default
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath "${1:-$here/build}")
stn=$build/stn
bench=$build/bench/mpi_allreduce
python=/usr/bin/python3
rounds=${ROUNDS:-2}
iters=${ITERS:-150}
[[ -x "$stn" && -x "$bench" ]] || { echo "mpi_scaling: build $stn and $bench first (an MPI build)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "mpi_scaling: mpirun not found (openmpi-bin)" >&2; exit 1; }
[[ -f "$here/data/mnist/train-images-idx3-ubyte" ]] || { echo "mpi_scaling: no MNIST in data/mnist (scripts/setup.sh)" >&2; exit 1; }
if [[ $(id -u) == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_btl_vader_single_copy_mechanism=none
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--dataset r --data "$here/data/mnist" --cache "$work/cache" --iters "$iters" --batch 256
        --log-every 50 --checkpoint-every 100000)
declare -A setups=(
  [np1x2]="$stn train --threads 2"
  [np2x1]="mpirun -np 2 --bind-to core $stn train --threads 1"
  [np2x2]="mpirun -np 2 --oversubscribe --bind-to none $stn train --threads 2"
)
order=(np1x2 np2x1 np2x2)
echo "uptime: $(uptime)" >&2
for round in $(seq "$rounds"); do
  for model in cnn st-cnn-aff; do
    for setup in "${order[@]}"; do
      out="$work/$model-$setup-$round"
      # shellcheck disable=SC2086
      ${setups[$setup]} "${common[@]}" --model "$model" --out "$out" >"$out.log" 2>&1 ||
        { cat "$out.log" >&2; echo "mpi_scaling: $setup $model failed" >&2; exit 1; }
      echo "round $round $model $setup: $(tail -n 1 "$out.log" | cut -c1-120)" >&2
    done
  done
done
# One machine's rate on the 42x42 RTS models too, for the cost model (one process, 2 threads).
for model in cnn st-cnn-aff; do
  out="$work/rts-$model"
  "$stn" train --dataset rts --data "$here/data/mnist" --cache "$work/cache" --iters "${ITERS_RTS:-40}" --batch 256 \
    --log-every 20 --threads 2 --model "$model" --out "$out" >"$out.log" 2>&1 || { cat "$out.log" >&2; exit 1; }
  echo "rts $model np1x2: $(tail -n 1 "$out.log" | cut -c1-120)" >&2
done
mpirun -np 2 --bind-to core "$bench" 105610 105433 >"$work/allreduce.json"
"$python" - "$work" "$rounds" "$stn" <<'PY'
import glob, json, os, statistics, subprocess, sys
work, rounds, stn = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rows = {}
for path in glob.glob(os.path.join(work, "*-np*-*/result.json")):
    name = os.path.basename(os.path.dirname(path))
    model, setup, _ = name.rsplit("-", 2)
    r = json.load(open(path))
    rows.setdefault((model, setup), []).append(r)
alone = {json.loads(l)["floats"]: json.loads(l)["microseconds"] for l in open(os.path.join(work, "allreduce.json"))}
params = {"cnn": 105610, "st-cnn-aff": 105433}
print("| model (R, 28x28, batch 256) | 1 process x 2 threads | 2 ranks x 1 thread | 2 ranks x 2 threads (oversubscribed) | allreduce in the 2x1 step (incl. waiting) | allreduce alone (2 ranks, shared memory) |")
print("| --- | --- | --- | --- | --- | --- |")
for model in ("cnn", "st-cnn-aff"):
    cells = []
    for setup in ("np1x2", "np2x1", "np2x2"):
        rates = [r["samples_per_s"] for r in rows[(model, setup)]]
        cells.append(f"{statistics.median(rates):.0f} samples/s")
    runs = rows[(model, "np2x1")]
    share = statistics.median(r["allreduce_seconds"] / r["seconds"] for r in runs)
    step_ms = statistics.median(1e3 * r["seconds"] / r["iters"] for r in runs)
    us = alone[params[model]]
    print(f"| {model} | {' | '.join(cells)} | {100 * share:.1f}% of {step_ms:.1f} ms | {us:.0f} us = {100 * us / 1e3 / step_ms:.2f}% |")
print()
print(f"(median of {rounds} rounds; `bash bench/mpi_scaling.sh`)")
print()

# The cost model: ring allreduce of the whole gradient against the step's computation at a
# global batch of 256 split over K machines.
def rate(model, dataset):
    if dataset == "r":
        return statistics.median(r["samples_per_s"] for r in rows[(model, "np1x2")])
    return json.load(open(os.path.join(work, f"rts-{model}", "result.json")))["samples_per_s"]
links = {"10 Gbit/s": (10e9 / 8, 25e-6), "100 Gbit/s": (100e9 / 8, 3e-6)}
def communication(k, size, link):
    bandwidth, latency = links[link]
    return 2 * (k - 1) / k * size / bandwidth + 2 * (k - 1) * latency
def break_even(size, samples_per_s, link):
    for k in range(2, 100000):
        if communication(k, size, link) >= 256 / (k * samples_per_s):
            return k
    return None
print("| model | parameters | gradient per step | ring allreduce, K large: 10 / 100 Gbit/s | one machine: step of 256 | K where communication = computation: 10 / 100 Gbit/s |")
print("| --- | --- | --- | --- | --- | --- |")
for dataset, label in (("r", "28x28 (R, P, E)"), ("rts", "42x42 (RTS)")):
    models = json.loads(subprocess.run([stn, "models", "--dataset", dataset], capture_output=True, text=True,
                                       check=True).stdout.strip().splitlines()[-1])["models"]
    for model in ("cnn", "st-cnn-aff"):
        count = next(m["params"] for m in models if m["model"] == model)
        size = 4 * count
        step = 256 / rate(model, dataset)
        far = [2 * size / links[l][0] * 1e3 for l in links]
        ks = [break_even(size, rate(model, dataset), l) for l in links]
        print(f"| {model} {label} | {count:,} | {size / 1e3:.0f} KB | {far[0]:.2f} / {far[1]:.3f} ms | {1e3 * step:.0f} ms "
              f"({rate(model, dataset):.0f} samples/s) | {ks[0]} / {ks[1]} |")
print()
print("(TC 60x60 and addition models: 167k and 136k parameters, 668 KB and 544 KB a step; "
      "latency taken as 25 us a message at 10 Gbit/s, 3 us at 100 Gbit/s)")
PY
