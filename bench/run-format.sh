#!/bin/sh
# Formatting cost per record for each output format (lib/format.c).
# $1 is the build directory (build/ by default); the target is < 150 ns per
# 120-byte record in traditional.
set -eu
B=${1:-build}
"$B/bench/format_bench" "${FORMAT_BENCH_RECORDS:-5000000}"
