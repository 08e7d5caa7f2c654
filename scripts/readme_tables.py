#!/usr/bin/env python3
"""Writes the README's result tables from the committed runs, or checks them.

The tables stand between the README's two markers
    <!-- tables: ... -->
    <!-- end of tables -->
and are what `stn table --runs docs/results/table --markdown` prints, less its notes and its
JSON line. Without --check the block is replaced (the rest of the README is kept byte for
byte); with --check nothing is written and the exit status is 1 when the README's tables are
not the runs' (a run committed without the tables being made again, or a figure edited by
hand), with a diff.

    python3 scripts/readme_tables.py            # after collect_results.sh: make them again
    python3 scripts/readme_tables.py --check    # what the test readme_tables_are_committed_runs runs
"""
import argparse
import difflib
import os
import subprocess
import sys

BEGIN = "<!-- tables: "
END = "<!-- end of tables -->\n"


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when they differ")
    parser.add_argument("--bin", default=os.path.join(here, "build", "stn"), help="the stn binary (default build/stn)")
    parser.add_argument("--readme", default=os.path.join(here, "README.md"))
    parser.add_argument("--runs", default=os.path.join(here, "docs", "results", "table"))
    args = parser.parse_args()

    if not os.access(args.bin, os.X_OK):
        sys.exit(f"readme_tables: {args.bin} is not an executable (build it with scripts/setup.sh, or give --bin)")
    printed = subprocess.run([args.bin, "table", "--runs", args.runs, "--markdown"], capture_output=True, text=True)
    if printed.returncode != 0:
        sys.exit(f"readme_tables: stn table --runs {args.runs} failed ({printed.returncode}): {printed.stderr.strip()}")
    lines = [line for line in printed.stdout.splitlines(keepends=True)
             if not line.startswith("note: ") and not line.startswith("{")]
    tables = "".join(lines).rstrip("\n") + "\n"
    if tables.count("\n| ") < 10:
        sys.exit(f"readme_tables: stn table printed no tables for {args.runs}")

    with open(args.readme, encoding="utf-8") as f:
        readme = f.read()
    begin = readme.find(BEGIN)
    end = readme.find(END, begin + 1) if begin >= 0 else -1
    if begin < 0 or end < 0 or readme.find(BEGIN, begin + 1) >= 0:
        sys.exit(f"readme_tables: {args.readme} needs exactly one pair of markers, a line starting "
                 f"'{BEGIN}' and a line '{END.strip()}'")
    start = readme.index("\n", begin) + 1  # the block starts after the opening marker's line
    current = readme[start:end]
    if current == tables:
        print(f"readme_tables: {args.readme}'s tables are stn table's of {args.runs}")
        return 0
    if args.check:
        print(f"readme_tables: {args.readme}'s tables are not those of {args.runs}; make them again with "
              "python3 scripts/readme_tables.py")
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(keepends=True), tables.splitlines(keepends=True),
                                                   "README.md (now)", "stn table"))
        return 1
    partial = args.readme + ".partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(readme[:start] + tables + readme[end:])
    os.replace(partial, args.readme)
    print(f"readme_tables: wrote the tables of {args.runs} into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
