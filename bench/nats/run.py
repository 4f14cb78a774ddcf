#!/usr/bin/python3
"""NATS JetStream benchmark: Unix stream clients -> lograild -> a three-node
JetStream cluster on 127.0.0.1, an R3 file stream.

    make bench-nats
    python3 bench/nats/run.py --rounds 3 --msgs 250000
    python3 bench/nats/run.py --workloads kill-node,kill-lograild

Three workloads, each with a fresh stream per run (deleted after):

flood: 4 clients x 250,000 records x 120 bytes (bench/e2e/loadgen.c, 64
  records per write) into lograild with one nats output (json, subject
  "lgN.%{app}"), measured from the clients' start until the stream holds
  every record (polled with nats_read --info).  Beside it, in the same run
  and interleaved, the floor: bench/nats/floor.c publishes the same records
  (the lines lograild's format makes of loadgen's messages, taken once from
  a file output before the rounds) to a subject of the same length, with
  nats.c's async JetStream publish, a Msg-Id of lograild's shape each, the
  same window (4096), until js_PublishAsyncComplete.  The table shows
  medians: records/s, lograild's rate over the floor's (per round, then the
  median), CPU (user + system) per record, lograild's peak RSS (VmHWM).

kill-node: the flood, and when a quarter of the records are in the stream
  the stream's leader (from the stream's own info) is killed with SIGKILL;
  it is started again once the rest are in.  The stream is then read back
  whole: every (client, sequence) of loadgen's tokens must be there once.

kill-lograild: the flood, and at a quarter lograild is killed with
  SIGKILL; the clients' sends then fail.  lograild is started again on the
  same spool and runs until its spool is acknowledged.  Read back: each
  client's records must be an unbroken prefix (what reached the spool), each
  once; what lograild published after the restart and, of that, JetStream's
  duplicates (resends it dropped by their Msg-Id) are shown.

Loss and duplicates are counted in every run and shown per run; any loss or
duplicate makes the exit status 1.
"""

import argparse
import collections
import importlib.util
import os
import re
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
WORKLOADS = ("flood", "kill-node", "kill-lograild")
TOKEN = re.compile(rb"lg=(\d{3})\.(\d{9})\.")

# The process figures (cpu_s, hwm_kib) are the forwarding benchmark's.
_spec = importlib.util.spec_from_file_location(
    "bench_forward_run", os.path.join(REPO, "bench", "forward", "run.py"))
fwdbench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fwdbench)
# The control socket's stats, by section, are the apps benchmark's.
_spec = importlib.util.spec_from_file_location(
    "bench_apps", os.path.join(REPO, "bench", "apps_bench.py"))
appsbench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(appsbench)


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
        self.confs = []
        for i in range(3):
            conf = os.path.join(d, "n%d.conf" % i)
            with open(conf, "w") as f:
                f.write('server_name: n%d\nlisten: 127.0.0.1:%d\njetstream { store_dir: "%s" }\n'
                        'cluster { name: c1, listen: 127.0.0.1:%d, routes: [%s] }\n'
                        % (i + 1, self.client[i], os.path.join(d, "d%d" % i), routes[i], r))
            self.confs.append(conf)
        self.procs = [None] * 3
        self.urls = ["nats://127.0.0.1:%d" % p for p in self.client]
        for i in range(3):
            self.start(i)

    def start(self, i):
        log = open(os.path.join(self.dir, "n%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen([NATS_SERVER, "-c", self.confs[i]], stdout=log,
                                         stderr=subprocess.STDOUT)
        log.close()

    def kill(self, i):
        self.procs[i].kill()
        self.procs[i].wait()
        self.procs[i] = None

    def live_urls(self):
        return [u for u, p in zip(self.urls, self.procs) if p is not None]

    def stop(self):
        for p in self.procs:
            if p is not None:
                p.terminate()
        for p in self.procs:
            if p is not None:
                p.wait()


def nats_read(args, *a, check=True, timeout=300):
    r = subprocess.run([args.nats_read, ",".join(args.cluster.live_urls())] + list(a),
                       capture_output=True, timeout=timeout)
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


def info(args, name):
    r = nats_read(args, name, "--info", check=False, timeout=30)
    if r.returncode != 0:
        return {}
    out = {}
    for line in r.stdout.decode().splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def count(args, name):
    v = info(args, name).get("messages")
    return int(v) if v is not None else -1


def wait_count(args, name, at_least, t0, what):
    while count(args, name) < at_least:
        if time.monotonic() - t0 > 900:
            sys.exit("%s: the stream never got %d records" % (what, at_least))
        time.sleep(0.1)


def tokens(args, name):
    """{client: Counter(sequence)} of loadgen's tokens in the stream, and the
    number of Msg-Ids stored more than once."""
    r = nats_read(args, name, timeout=600)
    per = collections.defaultdict(collections.Counter)
    ids = collections.Counter()
    for line in r.stdout.split(b"\n"):
        if not line:
            continue
        parts = line.split(b"\t", 2)
        if len(parts) == 3:
            ids[parts[1]] += 1
        m = TOKEN.search(line)
        if m:
            per[int(m.group(1))][int(m.group(2))] += 1
    return per, sum(v - 1 for v in ids.values())


def control_stats(path):
    """The nats output's counters from lograild's control socket."""
    out = appsbench.stats(path)
    return out[next(k for k in out if k.startswith("forward nats "))]


class Lograild:
    """lograild with one nats output, in directory d (its spool stays there
    across a restart)."""

    def __init__(self, args, d, rnd, name, fmt):
        self.args, self.d = args, d
        os.makedirs(d, exist_ok=True)
        self.sock = os.path.join(d, "s.sock")
        self.ctl = os.path.join(d, "ctl.sock")
        self.conf = os.path.join(d, "l.conf")
        with open(self.conf, "w") as f:
            f.write('threads = 2;\ncontrol = { path = "%s"; };\n'
                    'listen = ( { path = "%s"; type = "stream"; } );\n'
                    'outputs = ( { nats = { servers = [%s]; subject = "lg%d.%%{app}"; stream = "%s";\n'
                    '  spool = { path = "%s/spool"; }; }; format = "%s"; fsync = "never"; } );\n'
                    % (self.ctl, self.sock, ", ".join('"%s"' % u for u in args.urls), rnd, name,
                       d, fmt))
        self.p = None

    def start(self):
        for path in (self.sock, self.ctl):
            if os.path.exists(path):
                os.unlink(path)
        err = open(os.path.join(self.d, "stderr"), "ab")
        self.p = subprocess.Popen([self.args.lograild, "-c", self.conf], stderr=err)
        err.close()
        end = time.monotonic() + 30
        while not (os.path.exists(self.sock) and os.path.exists(self.ctl)):
            if self.p.poll() is not None or time.monotonic() > end:
                sys.exit("lograild did not start: see %s/stderr" % self.d)
            time.sleep(0.05)
        return self

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(60)


def loadgen(args, bins, sock, msgs=None):
    return subprocess.Popen([bins["loadgen"], "-s", sock, "-c", str(args.clients), "-n",
                             str(msgs or args.msgs), "-S", str(args.size), "-k", "64", "-T",
                             "900"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def payload_sample(args, bins, tmp, fmt):
    """The records as lograild formats loadgen's messages (a file output in
    the same format), one per line: what the floor publishes."""
    d = os.path.join(tmp, "sample-" + fmt)
    os.makedirs(d)
    sock, out = os.path.join(d, "s.sock"), os.path.join(d, "out")
    conf = os.path.join(d, "l.conf")
    with open(conf, "w") as f:
        f.write('listen = ( { path = "%s"; type = "stream"; } );\n'
                'outputs = ( { path = "%s"; format = "%s"; fsync = "never"; } );\n'
                % (sock, out, fmt))
    p = subprocess.Popen([args.lograild, "-c", conf], stderr=subprocess.DEVNULL)
    fwdbench.wait_socket(sock, p)
    n = min(args.msgs, 2500)
    lg = loadgen(args, bins, sock, n)
    lg.communicate(timeout=120)
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    with open(out, "rb") as f:
        lines = [ln for ln in f.read().split(b"\n") if ln]
    if len(lines) != n * args.clients:
        sys.exit("payload sample: %d lines, wanted %d" % (len(lines), n * args.clients))
    return out, sum(len(ln) for ln in lines) / len(lines)


def run_floor(args, bins, rnd, sample):
    name = "FLOOR%d" % rnd
    make_stream(args, name, "fl%d.>" % rnd)
    total = args.clients * args.msgs
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([bins["floor"], ",".join(args.urls), "fl%d.loadgen" % rnd, str(total),
                        "@" + sample], capture_output=True, timeout=900)
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


def run_flood(args, bins, rnd, tmp):
    name = "LOGS%d" % rnd
    make_stream(args, name, "lg%d.>" % rnd)
    d = Lograild(args, os.path.join(tmp, "lograild%d" % rnd), rnd, name, args.format).start()
    total = args.clients * args.msgs
    c0 = fwdbench.cpu_s(d.p.pid)
    t0 = time.monotonic()
    lg = loadgen(args, bins, d.sock)
    _, lerr = lg.communicate()
    if lg.returncode != 0:
        sys.exit("loadgen failed: " + lerr.decode())
    wait_count(args, name, total, t0, "lograild")
    secs = time.monotonic() - t0
    cpu = fwdbench.cpu_s(d.p.pid) - c0
    hwm = fwdbench.hwm_kib(d.p.pid)
    d.stop()
    got = count(args, name)
    nats_read(args, name, "--delete")
    if got != total:
        sys.exit("lograild: %d in the stream, wanted %d" % (got, total))
    return {"rate": total / secs, "secs": secs, "cpu_us": cpu / total * 1e6,
            "rss_mib": hwm / 1024}


def run_kill_node(args, bins, rnd, tmp):
    name = "KN%d" % rnd
    make_stream(args, name, "lg%d.>" % rnd)
    d = Lograild(args, os.path.join(tmp, "kn%d" % rnd), rnd, name, args.format).start()
    total = args.clients * args.msgs
    t0 = time.monotonic()
    lg = loadgen(args, bins, d.sock)
    wait_count(args, name, total // 4, t0, "kill-node")
    leader = info(args, name).get("leader", "")
    if leader not in ("n1", "n2", "n3"):
        sys.exit("kill-node: no stream leader in the stream's info (%r)" % leader)
    node = int(leader[1]) - 1
    at = count(args, name)
    args.cluster.kill(node)
    _, lerr = lg.communicate()
    if lg.returncode != 0:
        sys.exit("loadgen failed: " + lerr.decode())
    wait_count(args, name, total, t0, "kill-node")
    secs = time.monotonic() - t0
    st = control_stats(d.ctl)
    d.stop()
    args.cluster.start(node)
    per, twice_ids = tokens(args, name)
    missing = sum(1 for c in range(args.clients) for s in range(args.msgs) if per[c][s] == 0)
    dup = sum(v - 1 for c in per.values() for v in c.values())
    nats_read(args, name, "--delete")
    return {"rate": total / secs, "secs": secs, "leader": leader, "at": at, "lost": missing,
            "dup": dup + twice_ids, "ack_errors": st.get("nats_ack_errors", 0),
            "js_dups": st.get("nats_duplicates", 0), "disconnects": st.get("disconnects", 0)}


def run_kill_lograild(args, bins, rnd, tmp):
    name = "KL%d" % rnd
    make_stream(args, name, "lg%d.>" % rnd)
    d = Lograild(args, os.path.join(tmp, "kl%d" % rnd), rnd, name, args.format).start()
    total = args.clients * args.msgs
    t0 = time.monotonic()
    lg = loadgen(args, bins, d.sock)
    wait_count(args, name, total // 4, t0, "kill-lograild")
    d.p.kill()
    d.p.wait()
    at = count(args, name)
    lg.communicate()  # its sends fail once lograild is gone
    d.start()
    end = time.monotonic() + 300
    while True:
        st = control_stats(d.ctl)
        if st["spool_unacked_bytes"] == 0 and st.get("nats_in_flight", 0) == 0:
            break
        if time.monotonic() > end:
            sys.exit("kill-lograild: the spool was never acknowledged after the restart")
        time.sleep(0.2)
    d.stop()
    per, twice_ids = tokens(args, name)
    # What reached the spool before the kill is each client's prefix; a gap
    # in it is a record lost from the middle.
    stored = sum(sum(c.values()) for c in per.values())
    gaps = sum(max(c) + 1 - len(c) for c in per.values() if c)
    dup = sum(v - 1 for c in per.values() for v in c.values())
    nats_read(args, name, "--delete")
    return {"at": at, "stored": stored, "lost": gaps, "dup": dup + twice_ids,
            "resent": st.get("records_sent", 0), "js_dups": st.get("nats_duplicates", 0)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lograild", default=os.path.join(REPO, "build", "lograild"))
    ap.add_argument("--nats-read", default=None)
    ap.add_argument("--build", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--msgs", type=int, default=250000)
    ap.add_argument("--size", type=int, default=120)
    ap.add_argument("--format", default="json", help="lograild's format (and the floor's records)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated, of: " + ", ".join(WORKLOADS))
    args = ap.parse_args()
    wls = args.workloads.split(",")
    for w in wls:
        if w not in WORKLOADS:
            sys.exit("unknown workload %r (have: %s)" % (w, ", ".join(WORKLOADS)))
    args.nats_read = args.nats_read or os.path.join(os.path.dirname(args.lograild), "tests",
                                                    "nats_read")
    tmp = tempfile.mkdtemp(prefix="lgnb")
    bins = build(args.build or os.path.join(tmp, "bin"))
    cl = Cluster(tmp)
    args.cluster, args.urls = cl, cl.urls
    med = statistics.median
    bad = 0
    try:
        if "flood" in wls:
            sample, avg = payload_sample(args, bins, tmp, args.format)
            print("flood: the floor publishes lograild's %s records (%.0f bytes on average)"
                  % (args.format, avg), flush=True)
            floor, lgd, ratios = [], [], []
            for rnd in range(args.rounds):
                order = [0, 1] if rnd % 2 == 0 else [1, 0]
                res = {}
                for k in order:
                    res[k] = (run_floor(args, bins, rnd, sample) if k == 0
                              else run_flood(args, bins, rnd, tmp))
                floor.append(res[0])
                lgd.append(res[1])
                ratios.append(res[1]["rate"] / res[0]["rate"])
                print("round %d: floor %.0f/s (%.2f s, %.2f us CPU/record), lograild %.0f/s "
                      "(%.2f s), ratio %.2f, %.2f us CPU/record, peak RSS %.1f MiB"
                      % (rnd, res[0]["rate"], res[0]["secs"], res[0]["cpu_us"], res[1]["rate"],
                         res[1]["secs"], ratios[-1], res[1]["cpu_us"], res[1]["rss_mib"]),
                      flush=True)
            print()
            print("| flood: %d clients x %d x %d B, R3, format %s | records/s (median) | "
                  "lograild / floor | CPU/record | peak RSS |"
                  % (args.clients, args.msgs, args.size, args.format))
            print("| --- | --- | --- | --- | --- |")
            print("| floor (nats.c async publish) | %.0f | | %.2f us | |"
                  % (med([r["rate"] for r in floor]), med([r["cpu_us"] for r in floor])))
            print("| lograild | %.0f | %.2f | %.2f us | %.1f MiB |"
                  % (med([r["rate"] for r in lgd]), med(ratios), med([r["cpu_us"] for r in lgd]),
                     med([r["rss_mib"] for r in lgd])))
            print(flush=True)
        if "kill-node" in wls:
            print("| kill-node round | leader killed at | records/s | lost | stored twice | "
                  "PubAck errors | JetStream duplicates | reconnects |")
            print("| --- | --- | --- | --- | --- | --- | --- | --- |")
            for rnd in range(args.rounds):
                r = run_kill_node(args, bins, 100 + rnd, tmp)
                bad += r["lost"] + r["dup"]
                print("| %d | %s at %d | %.0f | %d | %d | %d | %d | %d |"
                      % (rnd, r["leader"], r["at"], r["rate"], r["lost"], r["dup"],
                         r["ack_errors"], r["js_dups"], r["disconnects"]), flush=True)
            print()
        if "kill-lograild" in wls:
            print("| kill-lograild round | killed at | stored | lost (gaps) | stored twice | "
                  "published after restart | of them JetStream duplicates |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for rnd in range(args.rounds):
                r = run_kill_lograild(args, bins, 200 + rnd, tmp)
                bad += r["lost"] + r["dup"]
                print("| %d | %d | %d | %d | %d | %d | %d |"
                      % (rnd, r["at"], r["stored"], r["lost"], r["dup"], r["resent"],
                         r["js_dups"]), flush=True)
            print()
    finally:
        cl.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if bad:
        sys.exit("lost or stored twice: %d records in all" % bad)


if __name__ == "__main__":
    main()
