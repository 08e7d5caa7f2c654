#!/usr/bin/env bash
# The README's result tables are the committed runs' (issue 13, acceptance 3): the block that
# `stn table --runs docs/results/table --markdown` prints (its three tables, without the notes
# and the JSON line) must stand in the README verbatim, so that a run committed without the
# README's tables being made again, or a figure edited by hand, fails here.
# Usage: readme_tables_test.sh STN_BINARY README RESULTS_DIR
set -euo pipefail
stn=$1
readme=$2
results=$3
tables=$("$stn" table --runs "$results" --markdown | grep -v -e '^note: ' -e '^{')
[[ $(grep -c '^| ' <<<"$tables") -gt 10 ]] || { echo "FAIL: stn table printed no tables for $results"; exit 1; }
TABLES=$tables /usr/bin/python3 - "$readme" "$results" <<'PY'
import os, sys
readme = open(sys.argv[1], encoding="utf-8").read()
tables = os.environ["TABLES"]
if tables not in readme:
    print("FAIL: the README does not show the tables of " + sys.argv[2] + " as stn table prints them; make them")
    print("again with: build/stn table --runs docs/results/table --markdown (less the notes and the JSON line)")
    print("--- stn table prints:")
    print(tables)
    sys.exit(1)
print("ok: the README's tables are stn table's of " + sys.argv[2])
PY
