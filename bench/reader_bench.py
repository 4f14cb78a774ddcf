#!/usr/bin/env python3
"""The reader's benchmark (issue 18): lograil against zcat | grep, grep -F
and zstdcat on a generated set of lograild json files.

    python3 bench/reader_bench.py [BUILD_DIR]

The set is READER_BENCH_MB (default 2048) MiB of json records like lograild
writes, in archives of READER_BENCH_ARCHIVE_MB (default 32) MiB named as
lograild names them: the older half compressed with zstd, the newer half
plain, then the live file.  It is made once under READER_BENCH_DIR (default
/tmp/lograil-reader-bench) and reused while its size matches.  Each figure
is the median of READER_BENCH_RUNS (default 5) runs after one warm-up run,
so the files are in the page cache: this measures the reader, not the disk.

Figures:
  since-plain  lograil --since T | head -1, T near the end (a plain archive),
               against zstdcat -f ... | grep -m1 for the same first line
  since-zstd   the same with T inside a zstd archive
  grep-plain   lograil -g LITERAL over the plain archives, GB/s, against grep -F
  grep-zstd    the same over the zstd archives, against zstdcat > /dev/null
  journalctl   when systemd-journal-remote is installed (mk/deps.sh bench):
               journalctl -D --since T | head -1 on a journal of the same
               records, beside since-plain
"""

import datetime
import glob
import os
import shutil
import statistics
import subprocess
import sys
import time

B = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
LOGRAIL = os.path.join(B, "lograil")
MB = int(os.environ.get("READER_BENCH_MB", "2048"))
ARCH_MB = int(os.environ.get("READER_BENCH_ARCHIVE_MB", "32"))
RUNS = int(os.environ.get("READER_BENCH_RUNS", "5"))
DIR = os.environ.get("READER_BENCH_DIR", "/tmp/lograil-reader-bench")
BASE = "messages.json"
STEP_US = 50
NEEDLE = "needle-7f3a"
T0 = datetime.datetime(2026, 11, 20, 0, 0, 0, tzinfo=datetime.timezone.utc)
T0_US = 1795132800 * 1000000  # T0 in microseconds since the epoch
JREMOTE = "/lib/systemd/systemd-journal-remote"


def stamp(us):
    t = T0 + datetime.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def generate():
    """Write the set; return nothing (the files are the result)."""
    if os.path.isdir(DIR):
        shutil.rmtree(DIR)
    os.makedirs(DIR)
    target = MB << 20
    per_arch = ARCH_MB << 20
    n_arch = max(2, target // per_arch)
    apps = ["web", "db", "cron", "sshd", "api", "worker"]
    rec = 0
    written = 0
    zst = []
    jr = None
    if os.access(JREMOTE, os.X_OK):
        os.makedirs(os.path.join(DIR, "journal"))
        jr = subprocess.Popen([JREMOTE, "-o", os.path.join(DIR, "journal", "remote.journal"), "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    for f in range(n_arch + 1):
        path = os.path.join(DIR, BASE)
        out = []
        size = 0
        while size < (per_arch if f < n_arch else per_arch // 4):
            lines = []
            jl = []
            for _ in range(2000):
                us = rec * STEP_US
                s = stamp(us)
                msg = ("GET /api/v1/items/%d 200 %d.%03dms user=u%d" % (rec % 99991, rec % 97, rec % 1000, rec % 5003)
                       if rec % 100000 != 77 else "%s found in request %d" % (NEEDLE, rec))
                lines.append('{"time":"%s+00:00","recv_time":"%sZ","facility":"user","severity":"info",'
                             '"host":"bench","app":"%s","procid":"%d","msg":"%s","pid":%d,"uid":0,'
                             '"gid":0,"syntax":"rfc3164"}\n'
                             % (s, s, apps[rec % 6], 1000 + rec % 4000, msg, 1000 + rec % 4000))
                if jr is not None:
                    jl.append("__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n"
                              "_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=bench\n"
                              "SYSLOG_IDENTIFIER=%s\n_PID=%d\nPRIORITY=6\nSYSLOG_FACILITY=1\n"
                              "MESSAGE=%s\n\n"
                              % (T0_US + us, us + 1, apps[rec % 6], 1000 + rec % 4000, msg))
                rec += 1
            if jr is not None:
                jr.stdin.write("".join(jl).encode())
            chunk = "".join(lines).encode()
            out.append(chunk)
            size += len(chunk)
        data = b"".join(out)
        written += len(data)
        if f < n_arch:
            rot = T0 + datetime.timedelta(microseconds=rec * STEP_US)
            path = os.path.join(DIR, "%s.%s.000" % (BASE, rot.strftime("%Y%m%dT%H%M%SZ")))
            if f < n_arch // 2:
                zst.append(path)
        with open(path, "wb") as fh:
            fh.write(data)
    if jr is not None:
        jr.stdin.close()
        jr.wait()
    subprocess.run(["zstd", "-q", "-3", "-T0", "--rm"] + zst, check=True)
    with open(os.path.join(DIR, "made"), "w") as fh:
        fh.write("%d %d %d\n" % (MB, ARCH_MB, rec))


def ensure():
    want = "%d %d" % (MB, ARCH_MB)
    try:
        with open(os.path.join(DIR, "made")) as fh:
            if fh.read().startswith(want + " "):
                return
    except OSError:
        pass
    t = time.monotonic()
    print("generating %d MiB under %s ..." % (MB, DIR), flush=True)
    generate()
    print("  done in %.0f s" % (time.monotonic() - t), flush=True)


def timed(cmd, runs=RUNS):
    """Median wall time and median CPU time (user + system of the whole
    pipeline) of a shell command, after one warm-up; and its output.  The
    machine is shared: CPU time shows the work done when the wall clock also
    counts waiting for a core."""
    out = subprocess.run(cmd, shell=True, capture_output=True, check=False).stdout
    walls, cpus = [], []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", cmd], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        _, _, ru = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t)
        cpus.append(ru.ru_utime + ru.ru_stime)
    return Fig(statistics.median(walls), statistics.median(cpus)), out


class Fig:
    def __init__(self, wall, cpu):
        self.wall, self.cpu = wall, cpu

    def ms(self):
        return "%.1f ms (cpu %.1f)" % (self.wall * 1000, self.cpu * 1000)

    def rate(self, nbytes):
        return "%.2f GB/s (cpu %.2f)" % (nbytes / self.wall / 1e9, nbytes / max(self.cpu, 1e-9) / 1e9)


def ratio(a, b):
    return "%.2fx (cpu %.2fx)" % (a.wall / b.wall, a.cpu / max(b.cpu, 1e-9))


def q(s):
    return "'" + s.replace("'", "'\\''") + "'"


def main():
    ensure()
    zst = sorted(glob.glob(os.path.join(DIR, BASE + ".*.zst")))
    plain = sorted(p for p in glob.glob(os.path.join(DIR, BASE + ".*")) if not p.endswith(".zst"))
    live = os.path.join(DIR, BASE)
    every = zst + plain + [live]
    with open(os.path.join(DIR, "made")) as fh:
        recs = int(fh.read().split()[2])
    size = lambda fs: sum(os.path.getsize(f) for f in fs)  # noqa: E731
    print("set: %d records, %d zstd archives (%.0f MiB on disk), %d plain (%.0f MiB), live %.0f MiB"
          % (recs, len(zst), size(zst) / 2**20, len(plain), size(plain) / 2**20,
             os.path.getsize(live) / 2**20))
    print("median of %d runs, files in the page cache" % RUNS)
    rows = []
    for name, frac in (("since-plain", 0.97), ("since-zstd", 0.30)):
        us = int(recs * frac) * STEP_US + 7
        t_iso = stamp(us) + "Z"
        first = stamp((us // STEP_US + 1) * STEP_US)
        lr, out = timed("%s -q -o raw --since %s %s | head -n1" % (LOGRAIL, t_iso, q(live)))
        assert first in out.decode(), (name, out[:200], first)
        zg, out2 = timed("zstdcat -qcf %s | grep -m1 -F %s" % (
            " ".join(q(f) for f in every), q('"recv_time":"%sZ"' % first)), runs=max(1, RUNS // 2))
        assert out2.strip() == out.strip(), (out2[:200], out[:200])
        rows.append((name, lr.ms(), "zstdcat|grep " + zg.ms(), "zstdcat|grep / lograil " + ratio(zg, lr)))
        jdir = os.path.join(DIR, "journal")
        if name == "since-plain" and os.path.isdir(jdir):
            # The first record at or after T, as lograil's.
            jt = (T0 + datetime.timedelta(microseconds=(us // STEP_US + 1) * STEP_US)).strftime(
                "%Y-%m-%d %H:%M:%S.%f UTC")
            jc, jout = timed("journalctl -q -D %s --since %s -o short-iso-precise --utc | head -n1"
                             % (q(jdir), q(jt)))
            jfirst = jout.decode(errors="replace").strip()
            assert first.replace(".", ",")[:19] in jfirst.replace(".", ",") and first[-6:] in jfirst, (jfirst, first)
            rows.append(("journalctl", jc.ms(), "same first record",
                         "journalctl / lograil " + ratio(jc, lr)))
        elif name == "since-plain":
            print("note: %s is not installed (sh mk/deps.sh bench): no journalctl figure" % JREMOTE)
    b_plain = size(plain)
    lr, out = timed("%s -q -o raw -g %s %s > /dev/null" % (LOGRAIL, NEEDLE, " ".join(map(q, plain))))
    gr, _ = timed("grep -F %s %s > /dev/null" % (NEEDLE, " ".join(map(q, plain))))
    rows.append(("grep-plain", lr.rate(b_plain), "grep -F " + gr.rate(b_plain),
                 "lograil / grep -F " + ratio(lr, gr)))
    raw = 0
    for f in zst:
        r = subprocess.run(["zstd", "-lv", f], capture_output=True, text=True).stdout
        for line in r.splitlines():
            if line.strip().startswith("Decompressed Size:"):
                raw += int(line.split("(")[1].split()[0].replace(",", ""))
    lr, _ = timed("%s -q -o raw -g %s %s > /dev/null" % (LOGRAIL, NEEDLE, " ".join(map(q, zst))))
    zc, _ = timed("zstdcat %s > /dev/null" % " ".join(map(q, zst)))
    rows.append(("grep-zstd", lr.rate(raw), "zstdcat " + zc.rate(raw),
                 "lograil / zstdcat " + ratio(lr, zc)))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
    # The matches are the same as grep's.
    n_lr = subprocess.run("%s -q -o raw -g %s %s | wc -l" % (LOGRAIL, NEEDLE, " ".join(map(q, plain))),
                          shell=True, capture_output=True, text=True).stdout.strip()
    n_gr = subprocess.run("grep -cF %s %s | awk -F: '{s+=$NF} END {print s}'" % (NEEDLE, " ".join(map(q, plain))),
                          shell=True, capture_output=True, text=True).stdout.strip()
    print("matches in the plain archives: lograil %s, grep %s" % (n_lr, n_gr))


if __name__ == "__main__":
    main()
