#!/bin/sh
# Run the parser and framer benchmark built in build dir $1 (default build).
set -eu
B=${1:-build}
exec "$B/bench/parse_bench" "${2:-5000000}"
