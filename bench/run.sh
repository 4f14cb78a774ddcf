#!/bin/sh
# Benchmarks, run by `make bench` as: sh bench/run.sh BUILD_DIR
#
# 1. The channel: BUILD_DIR/bench/chan_bench (lograil's chan and a mutex
#    ring baseline) and, when rustc is on PATH, bench/rust/sync_bench.rs
#    (Rust's std::sync::mpsc::sync_channel) built into BUILD_DIR/bench/.
#    Prints one merged table and writes it to bench/results/chan.csv.
# 2. Every bench/run-*.sh, each run as: sh bench/run-X.sh BUILD_DIR.
#    To add a benchmark, drop a script there; this file need not change.
#
# Environment: CHAN_BENCH_ITEMS (items per run), CHAN_BENCH_RUNS (runs per
# figure, median reported) shorten or lengthen the channel part.
set -eu

B=${1:-build}
case $B in
/*) ;;
*) B=$(pwd)/$B ;;
esac
cd "$(dirname "$0")/.."

args=""
if [ -n "${CHAN_BENCH_ITEMS:-}" ]; then args="$args -n $CHAN_BENCH_ITEMS"; fi
if [ -n "${CHAN_BENCH_RUNS:-}" ]; then args="$args -r $CHAN_BENCH_RUNS"; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

echo "== channel: lograil chan vs mutex ring vs Rust sync_channel"
# shellcheck disable=SC2086 # args is a list of words on purpose
"$B/bench/chan_bench" -m $args >"$tmp/chan.csv"

: >"$tmp/rust.csv"
if command -v rustc >/dev/null 2>&1; then
    mkdir -p "$B/bench"
    if rustc -O --edition 2021 -o "$B/bench/sync_bench" bench/rust/sync_bench.rs; then
        # shellcheck disable=SC2086
        "$B/bench/sync_bench" -m $args >"$tmp/rust.csv"
    else
        echo "note: bench/rust/sync_bench.rs did not compile; the Rust baseline is skipped"
    fi
else
    echo "note: rustc is not on PATH; the Rust baseline is skipped"
fi

mkdir -p bench/results
awk -F, -v csv=bench/results/chan.csv '
    function ratio(a, b) { return (a != "" && b != "" && b + 0 > 0) ? sprintf("%.2f", a / b) : "" }
    function show(x) { return x == "" ? "-" : x }
    $1 ~ /^(chan|mutex|rust)$/ && NF == 4 {
        key = $2 "," $3
        if (!(key in seen)) { seen[key] = 1; keys[++n] = key }
        v[$1, key] = $4
    }
    END {
        print "size,producers,chan_mps,mutex_mps,rust_mps,chan_over_mutex,chan_over_rust" >csv
        printf "%6s %4s %10s %10s %10s %11s %10s\n", "size", "P", "chan M/s", "mutex M/s",
            "rust M/s", "chan/mutex", "chan/rust"
        for (i = 1; i <= n; i++) {
            k = keys[i]; split(k, f, ",")
            c = v["chan", k]; m = v["mutex", k]; r = v["rust", k]
            cm = ratio(c, m); cr = ratio(c, r)
            printf "%6s %4s %10s %10s %10s %11s %10s\n", f[1], f[2], show(c), show(m), show(r),
                show(cm), show(cr)
            print k "," c "," m "," r "," cm "," cr >csv
        }
    }' "$tmp/chan.csv" "$tmp/rust.csv"
echo "(written to bench/results/chan.csv; the receiver uses chan_recv_many for chan and"
echo " the mutex ring, one recv per item for Rust, which has no batch receive)"

status=0
for script in bench/run-*.sh; do
    [ -f "$script" ] || continue
    echo
    echo "== $script"
    sh "$script" "$B" || { echo "$script failed" >&2; status=1; }
done
exit $status
