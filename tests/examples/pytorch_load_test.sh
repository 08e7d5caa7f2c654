#!/usr/bin/env bash
# The README's PyTorch snippet: loads the file tests/examples/weights.cpp writes into
# torch.nn.Sequential by name and must compute the same logits (to 1e-4). Skipped (77)
# without python3 and torch (Debian: python3-torch).
set -euo pipefail
example=$1
script=$2
# Debian's python3-torch lives in /usr/bin/python3, which another python3 on PATH may hide.
python=
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null && "$candidate" -c "import torch" 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "skipped: no python3 that can import torch (Debian: apt-get install python3-torch)"
  exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ours=$("$example" "$work/net.safetensors" | grep '^logits ')
theirs=$("$python" "$script" "$work/net.safetensors")
echo "stn:     $ours"
echo "PyTorch: $theirs"
"$python" - "$ours" "$theirs" <<'PY'
import sys
ours, theirs = ([float(v) for v in line.split()[1:]] for line in sys.argv[1:3])
if len(ours) != 3 or len(ours) != len(theirs) or any(abs(a - b) > 1e-4 for a, b in zip(ours, theirs)):
    sys.exit(f"the logits differ: {ours} against {theirs}")
PY
