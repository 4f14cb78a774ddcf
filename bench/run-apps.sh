#!/bin/sh
# Per-app files (bench/apps_bench.py): a %{app} output with max_files 64,
# rotation and compression, against the same records into one file; 100,000
# app names.  $1 is the build directory.  APPS_BENCH_ARGS adds options
# (e.g. "--rounds 5 --records 2000000").
B=${1:-build}
# shellcheck disable=SC2086 # a list of words on purpose
exec /usr/bin/python3 "$(dirname "$0")/apps_bench.py" --build "$B" ${APPS_BENCH_ARGS:-}
