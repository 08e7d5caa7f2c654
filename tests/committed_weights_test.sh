#!/usr/bin/env bash
# The weights committed under docs/results/ (issue 13, acceptance 5): `stn eval --run` on each
# run directory that holds a model.safetensors must give its result.json's test error again
# (the same count of wrong digits: equal to the hundredth of a percent) and its test loss to
# within 1e-5 relative (evaluation may use another thread count than training did, which
# changes the order of float sums, not the predictions). A negative control checks that the
# comparison can fail: one copied run with its first weight tensor zeroed must not match.
# Evaluation runs in a scratch directory, so the test sets it distorts and caches (the runs
# record the checkout-relative data/cache) do not land in the checkout.
# Usage: committed_weights_test.sh STN_BINARY RESULTS_DIR MNIST_DIR
set -euo pipefail
stn=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
results=$(cd "$2" && pwd)
data=$(cd "$3" && pwd)
python=/usr/bin/python3
[[ -f "$data/t10k-images-idx3-ubyte" ]] || { echo "MNIST not found in $data (run scripts/setup.sh)"; exit 1; }
"$python" -c "import numpy" 2>/dev/null || { echo "needs python3-numpy"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

# compare RESULT_JSON EVAL_OUTPUT: exit status 0 when they agree; prints both figures.
compare() {
  "$python" - "$1" "$2" <<'PY'
import json, sys
recorded = json.load(open(sys.argv[1]))
lines = open(sys.argv[2]).read().strip().splitlines()
measured = json.loads(lines[-1])
error_ok = round(recorded["test_error"], 2) == round(measured["test_error"], 2)
loss_ok = abs(recorded["test_loss"] - measured["test_loss"]) <= 1e-5 * abs(recorded["test_loss"])
print(f"recorded {recorded['test_error']}% (loss {recorded['test_loss']:.9f}), "
      f"stn eval {measured['test_error']}% (loss {measured['test_loss']:.9f})")
sys.exit(0 if error_ok and loss_ok else 1)
PY
}

checked=0
failed=0
while IFS= read -r weights; do
  dir=$(dirname "$weights")
  name=${dir#"$results"/}
  if ! "$stn" eval --run "$dir" --threads 2 --data-dir "$data" >"$work/eval.out" 2>&1; then
    echo "FAIL: $name: stn eval failed:"; cat "$work/eval.out"; failed=$((failed + 1)); continue
  fi
  if compare "$dir/result.json" "$work/eval.out" >"$work/compare.out"; then
    echo "ok   $name: $(cat "$work/compare.out")"
  else
    echo "FAIL: $name: $(cat "$work/compare.out")"; failed=$((failed + 1))
  fi
  checked=$((checked + 1))
done < <(find "$results" -name model.safetensors | sort)
((checked > 0)) || { echo "FAIL: no model.safetensors under $results"; exit 1; }

# Negative control: the first committed run, its first tensor set to zero.
first=$(find "$results" -name model.safetensors | sort | head -n 1)
mkdir "$work/control"
cp "$(dirname "$first")"/{config.json,result.json,model.safetensors} "$work/control/"
"$python" - "$work/control/model.safetensors" <<'PY'
import json, struct, sys
path = sys.argv[1]
raw = bytearray(open(path, "rb").read())
header_size = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + header_size])
name = sorted(k for k in header if k != "__metadata__")[0]
begin, end = header[name]["data_offsets"]
raw[8 + header_size + begin:8 + header_size + end] = bytes(end - begin)
open(path, "wb").write(raw)
PY
"$stn" eval --run "$work/control" --threads 2 --data-dir "$data" >"$work/eval.out" 2>&1 \
  || { echo "FAIL: the control run did not evaluate:"; cat "$work/eval.out"; exit 1; }
if compare "$work/control/result.json" "$work/eval.out" >"$work/compare.out"; then
  echo "FAIL: a run with a zeroed weight tensor still matched its result.json: $(cat "$work/compare.out")"; exit 1
fi
echo "ok   control (zeroed tensor): $(cat "$work/compare.out")"
((failed == 0)) || { echo "FAIL: $failed of $checked committed runs do not reproduce their result.json"; exit 1; }
echo "all $checked committed runs reproduce their test error"
