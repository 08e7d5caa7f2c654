#!/usr/bin/env bash
# Installs the library into a temporary prefix and checks what a user gets: the public
# headers only (no kernels' headers but sampler_options.h), each resolvable from the prefix
# alone (a file including all of them compiles), a package that says how the library was
# built, and a consumer project that finds it with find_package(stn), builds the README's
# first example against it and runs it (it trains a small model).
set -euo pipefail
build_dir=$1
source_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "install_and_find_package: $*" >&2; exit 1; }

cmake --install "$build_dir" --prefix "$work/prefix" >"$work/install.log"
include=$work/prefix/include
test -f "$include/stn/stn.h" || fail "<stn/stn.h> not installed"
test -f "$include/stn/framework/tape.h" || fail "headers not installed"
kernels=$(cd "$include/stn/framework/kernels" && ls)
[[ "$kernels" == "sampler_options.h" ]] || fail "internal kernels headers installed: $(echo $kernels)"
test ! -e "$include/stn/framework/io/atomic_file.h" || fail "the internal io/atomic_file.h is installed"
echo "installed $(find "$include/stn" -name '*.h' | wc -l) headers; kernels/: $kernels"

# Every installed header, in one translation unit: an include of an uninstalled header fails.
(cd "$include" && find stn -name '*.h' | sort | sed 's/.*/#include <&>/') >"$work/all_headers.cpp"

cmake -S "$source_dir" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DSTN_ALL_HEADERS="$work/all_headers.cpp" \
  >"$work/configure.log" || { cat "$work/configure.log"; exit 1; }
# The package's status line: how the installed library was built.
native=$(sed -n 's/^STN_NATIVE:BOOL=//p' "$build_dir/CMakeCache.txt")
if [[ "$native" == ON ]]; then expected="instruction set native"; else expected="instruction set portable"; fi
grep -- "-- stn [0-9.]*: .* build, $expected" "$work/configure.log" ||
  fail "find_package(stn) did not report '$expected' (STN_NATIVE=$native):$(echo; cat "$work/configure.log")"
cmake --build "$work/build" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$work/build/consumer"
