#!/usr/bin/env bash
# The README's result tables are the committed runs' (issue 13, acceptance 3):
# scripts/readme_tables.py --check finds between the README's markers exactly what
# `stn table --runs docs/results/table --markdown` prints (less its notes and JSON line). On a
# copy of the README with one figure edited, --check fails with a diff naming it, and the
# script without --check makes the copy the README again, byte for byte.
# Usage: readme_tables_test.sh STN_BINARY README RESULTS_DIR SCRIPTS_DIR
set -euo pipefail
stn=$1
readme=$2
results=$3
script="$4/readme_tables.py"
python=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
tables() { "$python" "$script" --bin "$stn" --runs "$results" "$@"; }

tables --check --readme "$readme" || fail "the README's tables are not stn table's of $results"
# An edited figure: the first cell of the table's FCN row.
sed -E '0,/^\| fcn \| [0-9.]+ /s//| fcn | 99.99 /' "$readme" >"$work/README.md"
! cmp -s "$readme" "$work/README.md" || fail "the test's edit changed nothing"
status=0
tables --check --readme "$work/README.md" >"$work/out" 2>&1 || status=$?
[[ $status -eq 1 ]] || { cat "$work/out"; fail "--check on an edited figure: status $status, expected 1"; }
grep -q '^-| fcn | 99.99 ' "$work/out" || { cat "$work/out"; fail "--check's diff does not show the edited row"; }
tables --readme "$work/README.md" >/dev/null || fail "writing the tables failed"
cmp "$readme" "$work/README.md" || fail "the tables written are not the README's"
# A README without the markers is refused, unchanged.
grep -v '^<!-- ' "$readme" >"$work/plain.md"
cp "$work/plain.md" "$work/plain.orig"
status=0
tables --readme "$work/plain.md" >"$work/out" 2>&1 || status=$?
[[ $status -ne 0 ]] && grep -q "needs exactly one pair of markers" "$work/out" || { cat "$work/out"; fail "a README without markers"; }
cmp -s "$work/plain.md" "$work/plain.orig" || fail "a README without markers was changed"
echo "ok: the README's tables are stn table's of $results"
