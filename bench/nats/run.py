#!/usr/bin/python3
"""NATS JetStream benchmark: Unix stream clients -> lograild -> a three-node
JetStream cluster on 127.0.0.1, an R3 file stream.

    make bench-nats
    python3 bench/nats/run.py --rounds 3 --msgs 250000

4 clients x 250,000 records x 120 bytes (bench/e2e/loadgen.c, 64 records
per write) into lograild with one nats output (json, subject
"bench.%{app}"), measured from the clients' start until the stream holds
every record (polled with nats_read --info).  Beside it, in the same run and
interleaved, the floor: bench/nats/floor.c publishes the same number of
120-byte messages with nats.c's async JetStream publish, a Msg-Id each, the
same window (4096), until js_PublishAsyncComplete.

Each run gets a fresh stream (deleted after).  The table shows medians:
records/s, lograild's rate over the floor's (per round, then the median),
lograild's CPU (user + system) per record, and its peak RSS (VmHWM).
"""

import argparse
import importlib.util
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NATS_SERVER = "/usr/sbin/nats-server"

# The process figures (cpu_s, hwm_kib) are the forwarding benchmark's.
_spec = importlib.util.spec_from_file_location(
    "bench_forward_run", os.path.join(REPO, "bench", "forward", "run.py"))
fwdbench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fwdbench)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def build(out):
    os.makedirs(out, exist_ok=True)
    cc = ["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]
    subprocess.run(cc + ["-o", os.path.join(out, "loadgen"), "bench/e2e/loadgen.c", "-lssl",
                         "-lcrypto"], cwd=REPO, check=True)  # loadgen -t (W7) needs them
    subprocess.run(cc + ["-o", os.path.join(out, "floor"), "bench/nats/floor.c", "-lnats"],
                   cwd=REPO, check=True)
    return {"loadgen": os.path.join(out, "loadgen"), "floor": os.path.join(out, "floor")}


class Cluster:
    def __init__(self, d):
        self.dir = d
        ports = free_ports(6)
        self.client, routes = ports[:3], ports[3:]
        r = ", ".join('"nats://127.0.0.1:%d"' % p for p in routes)
        self.procs = []
        for i in range(3):
            conf = os.path.join(d, "n%d.conf" % i)
            with open(conf, "w") as f:
                f.write('server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: "%s" }\n'
                        'cluster { name: c1, listen: 127.0.0.1:%d, routes: [%s] }\n'
                        % (i + 1, self.client[i], os.path.join(d, "d%d" % i), routes[i], r))
            log = open(os.path.join(d, "n%d.log" % i), "wb")
            self.procs.append(subprocess.Popen([NATS_SERVER, "-c", conf], stdout=log,
                                               stderr=subprocess.STDOUT))
        self.urls = ["nats://127.0.0.1:%d" % p for p in self.client]

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait()


def nats_read(args, *a, check=True):
    r = subprocess.run([args.nats_read, ",".join(args.urls)] + list(a), capture_output=True,
                       timeout=300)
    if check and r.returncode != 0:
        sys.exit("nats_read %s: %s" % (" ".join(a), r.stderr.decode()))
    return r


def make_stream(args, name, subject):
    end = time.monotonic() + 60
    while True:
        r = nats_read(args, name, "--create", subject, "3", "120000", check=False)
        if r.returncode == 0:
            return
        if time.monotonic() > end:
            sys.exit("cannot create the stream: " + r.stderr.decode())
        time.sleep(0.5)


def count(args, name):
    r = nats_read(args, name, "--info", check=False)
    if r.returncode != 0:
        return -1
    return int(r.stdout.decode().split("\n")[0].split()[1])


def run_floor(args, bins, rnd):
    name = "FLOOR%d" % rnd
    make_stream(args, name, "floor%d.>" % rnd)
    total = args.clients * args.msgs
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([bins["floor"], ",".join(args.urls), "floor%d.x" % rnd, str(total),
                        str(args.size)], capture_output=True, timeout=900)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    out = r.stdout.decode()
    if r.returncode != 0:
        sys.exit("floor failed: %s %s" % (out, r.stderr.decode()))
    secs = float(out.split("elapsed_s=")[1].split()[0])
    got = count(args, name)
    nats_read(args, name, "--delete")
    if got != total:
        sys.exit("floor: %d in the stream, wanted %d" % (got, total))
    return {"rate": total / secs, "secs": secs, "cpu_us": cpu / total * 1e6}


def run_lograild(args, bins, rnd, tmp):
    name = "LOGS%d" % rnd
    make_stream(args, name, "lg%d.>" % rnd)
    d = os.path.join(tmp, "lograild%d" % rnd)
    os.makedirs(d)
    sock = os.path.join(d, "s.sock")
    conf = os.path.join(d, "l.conf")
    with open(conf, "w") as f:
        f.write('threads = 2;\ncontrol = { path = "%s/ctl.sock"; };\n'
                'listen = ( { path = "%s"; type = "stream"; } );\n'
                'outputs = ( { nats = { servers = [%s]; subject = "lg%d.%%{app}"; stream = "%s";\n'
                '  spool = { path = "%s/spool"; }; }; format = "%s"; fsync = "never"; } );\n'
                % (d, sock, ", ".join('"%s"' % u for u in args.urls), rnd, name, d, args.format))
    err = open(os.path.join(d, "stderr"), "wb")
    p = subprocess.Popen([args.lograild, "-c", conf],
                         stderr=err)
    end = time.monotonic() + 30
    while not os.path.exists(sock):
        if p.poll() is not None or time.monotonic() > end:
            sys.exit("lograild did not start: see %s/stderr" % d)
        time.sleep(0.05)
    total = args.clients * args.msgs
    c0 = fwdbench.cpu_s(p.pid)
    t0 = time.monotonic()
    lg = subprocess.run([bins["loadgen"], "-s", sock, "-c", str(args.clients), "-n",
                         str(args.msgs), "-S", str(args.size), "-k", "64", "-T", "900"],
                        capture_output=True)
    if lg.returncode != 0:
        sys.exit("loadgen failed: " + lg.stderr.decode())
    while count(args, name) < total:
        if time.monotonic() - t0 > 900:
            sys.exit("lograild: the stream never got every record")
        time.sleep(0.1)
    secs = time.monotonic() - t0
    cpu = fwdbench.cpu_s(p.pid) - c0
    hwm = fwdbench.hwm_kib(p.pid)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    err.close()
    got = count(args, name)
    nats_read(args, name, "--delete")
    if got != total:
        sys.exit("lograild: %d in the stream, wanted %d" % (got, total))
    return {"rate": total / secs, "secs": secs, "cpu_us": cpu / total * 1e6,
            "rss_mib": hwm / 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lograild", default=os.path.join(REPO, "build", "lograild"))
    ap.add_argument("--nats-read", default=None)
    ap.add_argument("--build", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--msgs", type=int, default=250000)
    ap.add_argument("--size", type=int, default=120)
    ap.add_argument("--format", default="json", help="lograild's format (raw: the floor's bytes)")
    args = ap.parse_args()
    args.nats_read = args.nats_read or os.path.join(os.path.dirname(args.lograild), "tests",
                                                    "nats_read")
    tmp = tempfile.mkdtemp(prefix="lgnb")
    bins = build(args.build or os.path.join(tmp, "bin"))
    cl = Cluster(tmp)
    args.urls = cl.urls
    try:
        floor, lgd, ratios = [], [], []
        for rnd in range(args.rounds):
            order = [0, 1] if rnd % 2 == 0 else [1, 0]
            res = {}
            for k in order:
                res[k] = run_floor(args, bins, rnd) if k == 0 else run_lograild(args, bins, rnd, tmp)
            floor.append(res[0])
            lgd.append(res[1])
            ratios.append(res[1]["rate"] / res[0]["rate"])
            print("round %d: floor %.0f/s (%.2f s, %.2f us CPU/record), lograild %.0f/s "
                  "(%.2f s), ratio %.2f, %.2f us CPU/record, peak RSS %.1f MiB"
                  % (rnd, res[0]["rate"], res[0]["secs"], res[0]["cpu_us"], res[1]["rate"],
                     res[1]["secs"], ratios[-1], res[1]["cpu_us"], res[1]["rss_mib"]), flush=True)
        med = statistics.median
        print()
        print("| %d clients x %d x %d B, R3, lograild format %s | records/s (median) | "
              "lograild / floor | CPU/record | peak RSS |"
              % (args.clients, args.msgs, args.size, args.format))
        print("| --- | --- | --- | --- | --- |")
        print("| floor (nats.c async publish) | %.0f | | %.2f us | |"
              % (med([r["rate"] for r in floor]), med([r["cpu_us"] for r in floor])))
        print("| lograild | %.0f | %.2f | %.2f us | %.1f MiB |"
              % (med([r["rate"] for r in lgd]), med(ratios), med([r["cpu_us"] for r in lgd]),
                 med([r["rss_mib"] for r in lgd])))
    finally:
        cl.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
