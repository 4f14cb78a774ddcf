#!/bin/sh
# The reader's benchmark (issue 18): lograil --since, and --grep over plain
# and zstd archives, against zcat | grep, grep -F and zstdcat.  See
# bench/reader_bench.py for the set and the environment (READER_BENCH_MB
# for a quicker run).
set -eu
echo "== reader: lograil --since / --grep vs zcat|grep, grep -F, zstdcat"
sh "$(dirname "$0")/../mk/deps.sh" bench || echo "note: systemd-journal-remote could not be installed"
exec /usr/bin/python3 "$(dirname "$0")/reader_bench.py" "${1:-build}"
