#!/bin/sh
# Ingest alone and writer alone (bench/ingest_bench.c, bench/writer_bench.c):
# median of 3 runs each.  $1 is the build directory.
B=${1:-build}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
rate() { sed -n 's/.*rate=\([0-9]*\).*/\1/p'; }

echo "== ingest alone: 4 clients, 120-byte messages, records/s (median of 3)"
printf '%-8s %-7s %12s\n' threads type rate
for t in 1 2 4; do
    for ty in stream dgram; do
        n=250000; [ "$ty" = dgram ] && n=100000
        r=$(for i in 1 2 3; do "$B/bench/ingest_bench" $t $ty 4 $n | rate; done | median)
        printf '%-8s %-7s %12s\n' "$t" "$ty" "$r"
    done
done

echo "== writer alone: channel pre-filled with 500,000 120-byte records, records/s (median of 3)"
printf '%-12s %-7s %12s\n' format fsync rate
for f in traditional rfc5424 json raw; do
    for s in never always; do
        r=$(for i in 1 2 3; do "$B/bench/writer_bench" $f $s 500000 | rate; done | median)
        printf '%-12s %-7s %12s\n' "$f" "$s" "$r"
    done
done
