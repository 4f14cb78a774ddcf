#!/usr/bin/python3
"""apps_bench: what per-app files cost (issue 14, point 2).

Starts the real lograild (BUILD/lograild) on a temporary directory and
sends the same records, over 4 Unix stream connections, to each of these
configurations, alternating them over several rounds:

  one      every record into one file (the reference)
  apps     a `%{app}` output with max_files = 64, rotation (max_size) and
           gzip compression on, the records in a skewed mix of 100,000 app
           names: every name once (the long tail of rare ones) and the rest
           drawn by Zipf (s = 1.3: a few busy names)
  worst    the same output, every record for a different file that exists
           and is closed (the names in turn, each file made by a first pass)

For each it reports records/s from the first byte sent until the daemon has
written the last record (its stats), the most descriptors seen in
/proc/PID/fd (sampled every 2 ms), and the time from the last record
written until the daemon is idle (its CPU time stops growing: less than
one clock tick in 100 ms).  Medians of the rounds; ratios to `one`.

  python3 bench/apps_bench.py [--build build] [--records N] [--names N]
                              [--rounds R] [--zipf S] [--fsync never|1s]
                              [--dir /dev/shm]

The daemon writes under --dir, tmpfs by default: on a busy ext4 the cost
of creating a new inode (tens of thousands of new files) is the file
system's, not the daemon's, and dominates everything else.
"""

import argparse
import bisect
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK = os.sysconf("SC_CLK_TCK")


def conf_text(d, outputs, fsync):
    outs = []
    for o in outputs:
        parts = ['path = "%s";' % os.path.join(d, o["path"]), 'format = "raw";',
                 'fsync = "%s";' % fsync]
        if "max_files" in o:
            parts.append("max_files = %d;" % o["max_files"])
        if "rotate" in o:
            parts.append("rotate = { %s };" % " ".join(
                '%s = %s;' % (k, v if isinstance(v, int) else '"%s"' % v)
                for k, v in o["rotate"].items()))
        outs.append("{ " + " ".join(parts) + " }")
    return "\n".join([
        "threads = 2;",
        "queue = { capacity = 65536; };",
        'control = { path = "%s"; };' % os.path.join(d, "ctl.sock"),
        'listen = ( { path = "%s"; type = "stream"; } );' % os.path.join(d, "s.sock"),
        "outputs = ( %s );" % ", ".join(outs),
    ]) + "\n"


def stats(ctl):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(ctl)
        s.sendall(b"stats\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    out, cur = {}, None
    for line in data.decode().splitlines():
        if line.startswith("# "):
            cur = out.setdefault(line[2:], {})
        elif ": " in line and cur is not None:
            k, v = line.split(": ", 1)
            cur[k] = int(v) if v.lstrip("-").isdigit() else v
    return out


def written(ctl):
    return sum(v.get("records", 0) for k, v in stats(ctl).items() if k.startswith("output "))


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


class FdSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.path = "/proc/%d/fd" % pid
        self.max = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.max = max(self.max, len(os.listdir(self.path)))
            except FileNotFoundError:
                return
            time.sleep(0.002)


class Daemon:
    def __init__(self, build, outputs, fsync, where):
        self.dir = tempfile.mkdtemp(prefix="lrapps", dir=where)
        self.conf = os.path.join(self.dir, "lograild.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text(self.dir, outputs, fsync))
        self.err = open(os.path.join(self.dir, "stderr"), "wb")
        self.proc = subprocess.Popen([os.path.join(build, "lograild"), "-c", self.conf],
                                     stdout=self.err, stderr=self.err, stdin=subprocess.DEVNULL)
        self.sock = os.path.join(self.dir, "s.sock")
        self.ctl = os.path.join(self.dir, "ctl.sock")
        end = time.monotonic() + 30
        while not (os.path.exists(self.sock) and os.path.exists(self.ctl)):
            if self.proc.poll() is not None or time.monotonic() > end:
                sys.exit("lograild did not start:\n" + open(self.err.name).read())
            time.sleep(0.01)

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(120)
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def send(path, chunks):
    def one(data):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(data)
    ts = [threading.Thread(target=one, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    return ts


def run(d, chunks, n, base=0):
    """Send, wait until n more records are written; (seconds, max fds, idle s)."""
    sampler = FdSampler(d.proc.pid)
    sampler.start()
    t0 = time.monotonic()
    ts = send(d.sock, chunks)
    while written(d.ctl) < base + n:
        if d.proc.poll() is not None:
            sys.exit("lograild exited with %s; stderr:\n%s"
                     % (d.proc.returncode, open(d.err.name).read()))
        time.sleep(0.005)
    t1 = time.monotonic()
    for t in ts:
        t.join()
    # Idle: the CPU time stops growing (less than one tick per 100 ms).
    last = cpu_ticks(d.proc.pid)
    idle_at = None
    while time.monotonic() - t1 < 30:
        time.sleep(0.1)
        now = cpu_ticks(d.proc.pid)
        if now - last < 1:
            idle_at = time.monotonic() - 0.1
            break
        last = now
    sampler.stop.set()
    sampler.join()
    idle = max(0.0, idle_at - t1) if idle_at is not None else float("inf")
    return t1 - t0, sampler.max, idle


def zipf_names(n_records, n_names, s, rng):
    weights = [1.0 / (k ** s) for k in range(1, n_names + 1)]
    cum, acc = [], 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    return [bisect.bisect_left(cum, rng.random() * acc) for _ in range(n_records)]


def records(ids, prefix=b"app"):
    return [b"<13>Nov 26 11:03:56 %s%06d: message %07d with some text to make it 120 bytes long ......"
            % (prefix, a, i) for i, a in enumerate(ids)]


def split(lines, k=4):
    return [b"\n".join(lines[i::k]) + b"\n" for i in range(k)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--records", type=int, default=1000000)
    ap.add_argument("--names", type=int, default=100000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--zipf", type=float, default=1.3)
    ap.add_argument("--fsync", default="never")
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else "/tmp",
                    help="where the daemon writes (default tmpfs: the daemon's cost, not "
                         "the file system's cost of creating 100,000 inodes)")
    a = ap.parse_args()
    rng = random.Random(14)
    # Every name at least once (the long tail), the rest drawn by Zipf.
    ids = zipf_names(a.records - a.names, a.names, a.zipf, rng) + list(range(a.names))
    rng.shuffle(ids)
    mix = split(records(ids))
    distinct = len(set(ids))
    busy = sum(1 for i in ids if i < 64) / len(ids)
    worst_n = min(a.records, a.names)
    worst = split(records(list(range(worst_n)), b"w"))

    rot = {"max_size": "1M", "keep": 3, "compress": "gzip"}
    apps_out = [{"path": "apps/%{app}.log", "max_files": 64, "rotate": rot}]
    res = {"one": [], "apps": [], "worst": []}
    for r in range(a.rounds):
        d = Daemon(a.build, [{"path": "one.log", "rotate": rot}], a.fsync, a.dir)
        time.sleep(0.2)
        base_fds = len(os.listdir("/proc/%d/fd" % d.proc.pid))
        res["one"].append(run(d, mix, a.records) + (base_fds,))
        d.close()

        d = Daemon(a.build, apps_out, a.fsync, a.dir)
        time.sleep(0.2)
        base_fds = len(os.listdir("/proc/%d/fd" % d.proc.pid))
        res["apps"].append(run(d, mix, a.records) + (base_fds,))
        d.close()

        d = Daemon(a.build, apps_out, a.fsync, a.dir)
        time.sleep(0.2)
        base_fds = len(os.listdir("/proc/%d/fd" % d.proc.pid))
        run(d, worst, worst_n)  # makes the files; then every one is closed
        res["worst"].append(run(d, worst, worst_n, worst_n) + (base_fds,))
        d.close()
        print("round %d done" % (r + 1), file=sys.stderr)

    print("apps_bench: %d records (%d distinct of %d names, zipf s=%.2f; the 64 busiest "
          "names carry %.0f%%), 4 stream clients, fsync %s, rotate max_size 1M keep 3 gzip, "
          "max_files 64; in %s; medians of %d rounds"
          % (a.records, distinct, a.names, a.zipf, busy * 100, a.fsync, a.dir, a.rounds))
    print("%-6s %9s %12s %8s %9s %9s %8s" % ("case", "records", "records/s", "ratio",
                                              "max fds", "base fds", "idle s"))
    one_rate = statistics.median(a.records / t[0] for t in res["one"])
    for k, n in (("one", a.records), ("apps", a.records), ("worst", worst_n)):
        rate = statistics.median(n / t[0] for t in res[k])
        print("%-6s %9d %12.0f %8.2f %9d %9d %8.2f" % (
            k, n, rate, rate / one_rate, max(t[1] for t in res[k]), res[k][0][3],
            statistics.median(t[2] for t in res[k])))


if __name__ == "__main__":
    main()
