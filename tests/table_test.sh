#!/usr/bin/env bash
# `stn table` (experiments issue): collects finished runs into the paper's Table 1 layout,
# mean +/- std over seeds, the paper's figure beside ours with "(worse)" where ours is higher,
# rows and columns in the paper's order, and a note for every run it skips (unfinished, or a
# result.json it cannot read). The run directories here are written by hand, as `stn train`
# leaves them: config.json from the start, result.json only once the run has finished.
# Usage: table_test.sh STN_BINARY
set -euo pipefail
stn=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; echo "--- output:"; cat "$work/out"; exit 1; }

run() {  # run NAME DATASET MODEL [TEST_ERROR]
  mkdir -p "$work/runs/$1"
  echo "{\"dataset\": \"$2\", \"model\": \"$3\"}" >"$work/runs/$1/config.json"
  [[ $# -lt 4 ]] || echo "{\"dataset\": \"$2\", \"model\": \"$3\", \"test_error\": $4}" >"$work/runs/$1/result.json"
}
run rts-cnn-s1 rts cnn 1.0
run rts-cnn-s2 rts cnn 2.0
run rts-cnn-s3 rts cnn 3.0
run rts-st-cnn-aff rts st-cnn-aff 0.4
run r-cnn r cnn 1.1
run r-fcn r fcn 2.5
run tc-cnn-killed tc cnn             # killed: no result.json
run tc-cnn tc cnn 3.0
run tc-st-cnn-aff tc st-cnn-aff 1.5
run add-2xst-fcn add 2xst-fcn 6.0
run add-fcn add fcn 40.0
run r-validation r cnn
echo '{"dataset": "r", "model": "cnn", "validation_error": 1.5}' >"$work/runs/r-validation/result.json"
run tc-broken tc cnn 1.0
echo "not json" >"$work/runs/tc-broken/result.json"
mkdir -p "$work/runs/not-a-run"        # no config.json: not a run directory, ignored

"$stn" table --runs "$work/runs" --markdown >"$work/out" 2>&1 || fail "stn table exited with $?"
grep -qF '| model (ours / paper, % test error) | R | RTS |' "$work/out" || fail "header (paper's column order, TC absent: no finished TC run)"
grep -qF '| fcn | 2.50 / 2.1 (worse) | - |' "$work/out" || fail "FCN row"
# Three seeds of the CNN on RTS: mean 2.00, sample standard deviation 1.00.
grep -qF '| cnn | 1.10 / 1.2 | 2.00 ± 1.00 (n=3) / 0.8 (worse) |' "$work/out" || fail "CNN row (mean +/- std over seeds)"
grep -qF '| st-cnn-aff | - | 0.40 / 0.5 |' "$work/out" || fail "ST-CNN row"
# The paper's row order: FCN, CNN, then the ST models.
[[ $(grep -n '^| fcn' "$work/out" | head -n 1 | cut -d: -f1) -lt $(grep -n '^| cnn' "$work/out" | head -n 1 | cut -d: -f1) ]] || fail "row order"
grep -qF "note: skipped $work/runs/tc-cnn-killed (unfinished: no result.json)" "$work/out" || fail "no note for the unfinished run"
grep -qF "note: skipped $work/runs/tc-broken (unreadable result.json)" "$work/out" || fail "no note for the unreadable result"
grep -q "not-a-run" "$work/out" && fail "a directory without config.json was taken for a run"
tail -n 1 "$work/out" | grep -qF '"cnn":{"r":[1.1],"rts":[1.0,2.0,3.0],"tc":[3.0]}' || fail "JSON summary"
# The TC and addition tables, each under its title, in the paper's row order.
grep -qF 'no test error)' "$work/out" || fail "no note for the validation run"
grep -qF "note: skipped $work/runs/r-validation (a --validation run: it has a validation error, no test error)" "$work/out" \
  || fail "the validation run's note"
tc_line=$(grep -n '^\*\*Translated and cluttered MNIST (60x60)\*\*' "$work/out" | cut -d: -f1)
add_line=$(grep -n '^\*\*MNIST addition (Table 4)\*\*' "$work/out" | cut -d: -f1)
[[ -n "$tc_line" && -n "$add_line" && $tc_line -lt $add_line ]] || fail "TC and addition table titles"
sed -n "$tc_line,${add_line}p" "$work/out" | grep -qF '| model (ours / paper, % test error) | TC |' || fail "TC header"
sed -n "$tc_line,${add_line}p" "$work/out" | grep -qF '| cnn | 3.00 / 3.5 |' || fail "TC CNN row"
sed -n "$tc_line,${add_line}p" "$work/out" | grep -qF '| st-cnn-aff | 1.50 / 1.7 |' || fail "TC ST-CNN row"
sed -n "$add_line,\$p" "$work/out" | grep -qF '| model (ours / paper, % test error) | addition |' || fail "addition header"
[[ $(sed -n "$add_line,\$p" "$work/out" | grep -n '^| fcn | 40.00 / 47.7 |' | cut -d: -f1) -lt \
   $(sed -n "$add_line,\$p" "$work/out" | grep -n '^| 2xst-fcn | 6.00 / 5.8 (worse) |' | cut -d: -f1) ]] || fail "addition rows"

# The plain layout: every column as wide as its widest cell (here the 3-seed RTS cell), the
# cells right-aligned, so each line of a table (heading and rows) ends in the same column,
# and two cells never run into each other.
"$stn" table --runs "$work/runs" >"$work/out" 2>&1 || fail "stn table (plain) exited with $?"
table1=$(awk '/^Table 1/ { on = 1; next } /^Translated/ { on = 0 } on && NF' "$work/out")
[[ $(wc -l <<<"$table1") -eq 4 ]] || fail "plain Table 1: heading and 3 rows"
widths=$(export LC_ALL=C.UTF-8; while IFS= read -r line; do echo "${#line}"; done <<<"$table1" | sort -u)  # characters
[[ $(wc -l <<<"$widths") -eq 1 ]] || fail "plain Table 1: lines of different lengths ($(echo $widths)): columns do not line up"
grep -qF 'cnn                  1.10 / 1.2   2.00 ± 1.00 (n=3) / 0.8 (worse)' "$work/out" || fail "plain CNN row (mean +/- std over seeds, padded)"
grep -q ')[^ ]' "$work/out" && grep ')[^ ]' "$work/out" | grep -qv '^{' && fail "plain layout: a cell runs into the next"

# No finished run: a note says so (and what a run directory is), not just an empty summary.
mkdir -p "$work/empty/killed" && echo '{}' >"$work/empty/killed/config.json"
"$stn" table --runs "$work/empty" >"$work/out" 2>&1 || fail "stn table on a directory without finished runs exited with $?"
grep -qF "note: no finished run in $work/empty (1 run directory: " "$work/out" || fail "no note for a directory without finished runs"
echo "ok: stn table"
