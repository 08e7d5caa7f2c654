#!/usr/bin/env bash
# scripts/pack_unfinished.sh: a queue's unfinished runs, packed (config, metrics, newest
# checkpoint, log) and unpacked into another directory, resume there to the weights of an
# uninterrupted run, bit for bit; finished runs, runs without a checkpoint, older checkpoints,
# locks and provisional weights stay out of the archive; bad calls write nothing.
# Usage: pack_unfinished_test.sh STN_BINARY MNIST_DIR SCRIPTS_DIR
set -euo pipefail
stn=$(realpath "$1")
data=$(realpath "$2")
pack="$(realpath "$3")/pack_unfinished.sh"
[[ -f "$data/train-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*"; exit 1; }
# The queue's runs read MNIST from a directory of their own, which is gone on the "other
# machine" (moved): the resume there is told where it is now.
mkdir mnist && ln -s "$data"/*-ubyte mnist/
common=(--dataset mnist --model fcn --iters 3000 --batch 16 --threads 1 --checkpoint-every 50 --log-every 50)

"$stn" train "${common[@]}" --data "$data" --out full >/dev/null
# The queue directory: one run stopped part-way (SIGINT: a checkpoint, then exit 130), one
# finished, one that stopped before its first checkpoint.
mkdir -p queue/logs
"$stn" train "${common[@]}" --data mnist --out queue/stopped >queue/logs/stopped.log 2>&1 &
pid=$!
until [[ -f queue/stopped/checkpoints/step-00000150.safetensors ]]; do
  kill -0 $pid 2>/dev/null || fail "the run to stop ended before its third checkpoint (machine too fast?)"
  sleep 0.01
done
kill -INT $pid
status=0
wait $pid || status=$?
[[ $status -eq 130 ]] || fail "the stopped run exited with $status, expected 130"
[[ ! -f queue/stopped/result.json ]] || fail "the stopped run finished before the SIGINT reached it"
cp -r full queue/finished
mkdir queue/fresh && cp full/config.json queue/fresh/
newest=$(ls queue/stopped/checkpoints | sed -nE 's/^(step-[0-9]+)\.safetensors$/\1/p' | sort | tail -n 1)
older=$(ls queue/stopped/checkpoints | sed -nE 's/^(step-[0-9]+)\.safetensors$/\1/p' | sort | head -n 1)
[[ $newest != "$older" ]] || fail "the stopped run kept only one checkpoint: the test wants older ones to leave out"

bash "$pack" queue unfinished.tar.gz >pack.log 2>&1 || { cat pack.log; fail "pack_unfinished.sh failed"; }
grep -q "fresh has no checkpoint yet: left out" pack.log || { cat pack.log; fail "no note for the run without a checkpoint"; }
tar -tzf unfinished.tar.gz | sort >members
printf '%s\n' logs/stopped.log stopped/checkpoints/$newest.safetensors stopped/checkpoints/$newest.state.safetensors \
  stopped/config.json stopped/metrics.jsonl | sort >expected
diff expected members || fail "the archive holds other files than the stopped run's config, metrics, newest checkpoint and log"

# Elsewhere: unpack into a new queue directory and resume, with the data moved.
mkdir -p elsewhere/queue
tar -xzf unfinished.tar.gz -C elsewhere/queue
mv mnist elsewhere/mnist
status=0
(cd elsewhere && "$stn" train --resume queue/stopped --threads 1 >resume.log 2>&1) || status=$?
[[ $status -ne 0 ]] && grep -qF "data directory $work/mnist (recorded in its config.json) does not exist; if the files are elsewhere now" elsewhere/resume.log ||
  { cat elsewhere/resume.log; fail "a resume whose recorded data directory has gone: status $status, no message naming it"; }
(cd elsewhere && "$stn" train --resume queue/stopped --threads 1 --data mnist --cache cache >resume.log 2>&1) ||
  { cat elsewhere/resume.log; fail "the unpacked run did not resume with --data"; }
grep -qF "resumes with its data in $work/elsewhere/mnist (recorded: $work/mnist)" elsewhere/resume.log ||
  { cat elsewhere/resume.log; fail "no note that the data directory moved"; }
grep -qF "\"data_dir\": \"$work/elsewhere/mnist\"" elsewhere/queue/stopped/config.json || fail "config.json does not record the new data directory"
grep -q "from the checkpoint of iteration ${newest#step-}" elsewhere/resume.log ||
  grep -q "from the checkpoint of iteration $((10#${newest#step-}))" elsewhere/resume.log ||
  { cat elsewhere/resume.log; fail "the resume did not start from the packed checkpoint ($newest)"; }
cmp full/model.safetensors elsewhere/queue/stopped/model.safetensors ||
  fail "the unpacked run resumed to other weights than the uninterrupted run's"

# Bad calls write nothing.
status=0; bash "$pack" queue unfinished.tar.gz >err.log 2>&1 || status=$?
[[ $status -eq 2 ]] && grep -q "unfinished.tar.gz exists" err.log || { cat err.log; fail "an existing archive was not refused"; }
status=0; bash "$pack" full nothing.tar.gz >err.log 2>&1 || status=$?
[[ $status -eq 2 && ! -e nothing.tar.gz ]] && grep -q "no unfinished run with a checkpoint" err.log ||
  { cat err.log; fail "a directory without unfinished runs: status $status, or an archive was written"; }
status=0; bash "$pack" queue archive.zip >err.log 2>&1 || status=$?
[[ $status -eq 2 && ! -e archive.zip ]] || { cat err.log; fail "an archive name without .tar.gz was taken"; }
status=0; bash "$pack" no-such-dir a.tar.gz >err.log 2>&1 || status=$?
[[ $status -eq 2 ]] && grep -q "no-such-dir is not a directory" err.log || { cat err.log; fail "a missing RUNS directory"; }
echo "ok: pack_unfinished"
