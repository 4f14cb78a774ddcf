#!/bin/sh
# Parsing (lib/syslog_parse.c) and framing (lib/frame.c) cost per message.
# $1 is the build directory (build/ by default); the target is < 100 ns per
# 120-byte message.
set -eu
B=${1:-build}
"$B/bench/parse_bench" "${PARSE_BENCH_MESSAGES:-5000000}"
