#!/usr/bin/python3
"""Forwarding benchmark: Unix stream clients -> daemon -> TCP sink on 127.0.0.1.

    make bench-forward
    python3 bench/forward/run.py --rounds 5 --systems lograild-tcp,rsyslog-omfwd,floor

4 clients x 250,000 records x 120 bytes (bench/e2e/loadgen.c) into the
daemon under test, forwarded to a no-parse sink (sink.c; a minimal RELP
server with -r), measured from the clients' start until the last record is
at the sink.  Systems:

  floor          relay.c: one thread, Unix socket -> one TCP connection, whole lines
  lograild-tcp   a forward output, protocol "tcp" (spool on the temporary directory)
  lograild-relp  a forward output, protocol "relp"
  rsyslog-omfwd  imptcp path= -> omfwd TCP octet-counted, RFC 5424 template
  rsyslog-omrelp imptcp path= -> omrelp

syslog-ng is not run: Debian's syslog-ng-core and rsyslog conflict (one
replaces the other), and the tests need rsyslog.

Two workloads: one record per write() (the clients are the limit) and 64
per write() (the daemon is).  With --outage, the outage workload instead:
the sink is away while the clients send at --rate records/s for
--outage-secs, then comes up; measured: the spool (lograild) at that moment,
the time from the sink's start until its first byte (reconnect back-off)
and until the last record (drain), and peak RSS.  Rounds interleave the systems; the table
shows medians and, per round, lograild's ratio to the best peer of the
same protocol and to the floor (medians of those ratios).
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RSYSLOGD = "/usr/sbin/rsyslogd"
SYSTEMS = ["floor", "lograild-tcp", "rsyslog-omfwd", "lograild-relp", "rsyslog-omrelp"]


def build(out):
    os.makedirs(out, exist_ok=True)
    cc = ["cc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pthread"]
    progs = {"sink": ["bench/forward/sink.c", "lib/relp.c", "-Ilib"],
             "relay": ["bench/forward/relay.c"],
             "loadgen": ["bench/e2e/loadgen.c", "-lssl", "-lcrypto"]}  # loadgen -t (W7)
    for name, src in progs.items():
        subprocess.run(cc + ["-o", os.path.join(out, name)] + src, cwd=REPO, check=True)
    return {n: os.path.join(out, n) for n in progs}


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def wait_socket(path, proc, timeout=15):
    import socket
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("exited with %s" % proc.returncode)
        if os.path.exists(path):
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(path)
                return
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("socket %s never accepted" % path)


def start_system(name, d, sock, port, lograild, bins):
    log = open(os.path.join(d, "daemon.log"), "wb")
    if name == "floor":
        argv = [bins["relay"], "-s", sock, "-p", str(port)]
    elif name.startswith("lograild"):
        proto = name.split("-")[1]
        conf = os.path.join(d, "l.conf")
        with open(conf, "w") as f:
            f.write('control = { path = "%s/ctl.sock"; };\n'
                    'listen = ( { path = "%s"; type = "stream"; } );\n'
                    'outputs = ( { forward = { address = "127.0.0.1:%d"; protocol = "%s"; '
                    'spool = { path = "%s/spool"; }; }; } );\n' % (d, sock, port, proto, d))
        argv = [lograild, "-c", conf]
    else:
        action = ('action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" '
                  'TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")' % port
                  if name == "rsyslog-omfwd" else
                  'action(type="omrelp" target="127.0.0.1" port="%d")' % port)
        conf = os.path.join(d, "r.conf")
        with open(conf, "w") as f:
            f.write('global(workDirectory="%s")\nmodule(load="imuxsock" SysSock.Use="off")\n'
                    'module(load="imptcp")\n%s\nruleset(name="out") { %s }\n'
                    'input(type="imptcp" path="%s" ruleset="out")\n'
                    % (d, 'module(load="omrelp")' if "relp" in name else "", action, sock))
        argv = [RSYSLOGD, "-n", "-f", conf, "-i", os.path.join(d, "pid")]
    p = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    wait_socket(sock, p)
    return p


def one_run(name, per_write, args, bins, tmp):
    d = tempfile.mkdtemp(dir=tmp, prefix=name[:6])
    sock = os.path.join(d, "in.sock")
    n = args.clients * args.msgs
    sink = subprocess.Popen([bins["sink"], "-n", str(n), "-T", str(args.timeout)]
                            + (["-r"] if "relp" in name else []),
                            stdout=subprocess.PIPE, text=True)
    port = int(sink.stdout.readline().split("=")[1])
    sysp = start_system(name, d, sock, port, args.lograild, bins)
    time.sleep(0.2)
    cpu0 = cpu_s(sysp.pid)
    lg = subprocess.run([bins["loadgen"], "-s", sock, "-c", str(args.clients), "-n",
                         str(args.msgs), "-S", str(args.size), "-k", str(per_write),
                         "-T", str(args.timeout)], capture_output=True, text=True)
    res = {"system": name, "per_write": per_write, "ok": False}
    if lg.returncode == 0:
        kv = dict(x.split("=") for x in lg.stdout.split())
        line = sink.stdout.readline().strip()
        if line.startswith("end_ns="):
            end = int(line.split()[0].split("=")[1])
            secs = (end - int(kv["start_ns"])) / 1e9
            res.update(ok=True, secs=secs, rate=n / secs,
                       cpu_us=(cpu_s(sysp.pid) - cpu0) * 1e6 / n,
                       rss_mib=hwm_kib(sysp.pid) / 1024)
    for p in (sysp, sink):
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    shutil.rmtree(d, ignore_errors=True)
    return res


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def control_stats(d):
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(d, "ctl.sock"))
        s.sendall(b"stats\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    return dict(l.split(": ", 1) for l in data.decode().splitlines() if ": " in l)


def outage_run(name, args, bins, tmp):
    d = tempfile.mkdtemp(dir=tmp, prefix=name[:6])
    sock = os.path.join(d, "in.sock")
    port = free_port()
    per_client = args.rate * args.outage_secs // args.clients
    n = per_client * args.clients
    sysp = start_system(name, d, sock, port, args.lograild, bins)
    lg = subprocess.run([bins["loadgen"], "-s", sock, "-c", str(args.clients), "-n",
                         str(per_client), "-S", str(args.size), "-r", str(args.rate),
                         "-T", str(args.timeout)], capture_output=True, text=True)
    res = {"system": name, "ok": False}
    if lg.returncode == 0:
        time.sleep(0.5)  # the last records reach the spool
        spool = int(control_stats(d).get("spool_bytes", 0)) if name.startswith("lograild") else 0
        up = time.monotonic_ns()
        sink = subprocess.Popen([bins["sink"], "-p", str(port), "-n", str(n), "-T",
                                 str(args.outage_wait)] + (["-r"] if "relp" in name else []),
                                stdout=subprocess.PIPE, text=True)
        sink.stdout.readline()
        line = sink.stdout.readline().strip()
        if line.startswith("end_ns="):
            kv = dict(x.split("=") for x in line.split())
            res.update(ok=True, n=n, spool_mib=spool / 2**20,
                       reconnect_s=(int(kv["first_ns"]) - up) / 1e9,
                       drain_s=(int(kv["end_ns"]) - int(kv["first_ns"])) / 1e9,
                       rss_mib=hwm_kib(sysp.pid) / 1024)
        elif line.startswith("timeout"):
            res["lost"] = n - int(line.split("=")[1])
        sink.send_signal(signal.SIGTERM)
        sink.wait()
    sysp.send_signal(signal.SIGTERM)
    try:
        sysp.wait(60)
    except subprocess.TimeoutExpired:
        sysp.kill()
        sysp.wait()
    shutil.rmtree(d, ignore_errors=True)
    return res


def outage_main(args, systems, bins, tmp):
    results = []
    for r in range(args.rounds):
        for s in systems:
            if s == "floor":
                continue  # the floor relay has no spool: it cannot start without its sink
            res = outage_run(s, args, bins, tmp)
            res["round"] = r
            results.append(res)
            print("round %d  outage %-15s %s" % (r + 1, s, (
                "spool %.1f MiB  reconnect %.2f s  drain %.2f s (%.0f rec/s)  RSS %.1f MiB" % (
                    res["spool_mib"], res["reconnect_s"], res["drain_s"],
                    res["n"] / res["drain_s"], res["rss_mib"])) if res["ok"] else
                "FAILED: %s of %d records never reached the sink within %d s"
                % (res.get("lost", "?"), args.rate * args.outage_secs, args.outage_wait)),
                  flush=True)
    print("\noutage: sink away while %d clients send %d rec/s for %d s (medians)"
          % (args.clients, args.rate, args.outage_secs))
    print("%-15s %10s %12s %9s %14s %9s" % ("system", "spool MiB", "reconnect s", "drain s",
                                            "drain x build", "RSS MiB"))
    for s in systems:
        mine = [r for r in results if r["system"] == s and r["ok"]]
        if not mine:
            continue
        drain = statistics.median(r["drain_s"] for r in mine)
        print("%-15s %10.1f %12.2f %9.2f %14.1f %9.1f" % (
            s, max(r["spool_mib"] for r in mine), statistics.median(r["reconnect_s"] for r in mine),
            drain, args.outage_secs / drain, max(r["rss_mib"] for r in mine)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lograild", default=os.path.join(REPO, "build", "lograild"))
    ap.add_argument("--build", default=os.path.join(REPO, "build", "bench-forward"))
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--msgs", type=int, default=250000, help="records per client")
    ap.add_argument("--size", type=int, default=120)
    ap.add_argument("--per-write", default="1,64")
    ap.add_argument("--timeout", type=int, default=180)
    ap.add_argument("--outage", action="store_true", help="run the outage workload instead")
    ap.add_argument("--outage-secs", type=int, default=10)
    ap.add_argument("--rate", type=int, default=50000, help="outage: records/s over all clients")
    ap.add_argument("--outage-wait", type=int, default=60,
                    help="outage: how long the sink waits for the backlog")
    args = ap.parse_args()
    systems = args.systems.split(",")
    if any(s.startswith("rsyslog") for s in systems) and not os.access(RSYSLOGD, os.X_OK):
        sys.exit("rsyslogd is missing: run mk/deps.sh")
    bins = build(args.build)
    tmp = tempfile.mkdtemp(prefix="lrbf")
    if args.outage:
        try:
            outage_main(args, systems, bins, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    results = []
    try:
        for r in range(args.rounds):
            for k in [int(x) for x in args.per_write.split(",")]:
                for s in systems:
                    res = one_run(s, k, args, bins, tmp)
                    res["round"] = r
                    results.append(res)
                    print("round %d  k=%-3d %-15s %s" % (r + 1, k, s, "%.3f s  %.2f M/s  %.2f µs CPU/rec  %.1f MiB"
                          % (res["secs"], res["rate"] / 1e6, res["cpu_us"], res["rss_mib"])
                          if res["ok"] else "FAILED"), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, systems, args)


def report(results, systems, args):
    print("\n%d clients x %d records x %d B, %d rounds (medians)" %
          (args.clients, args.msgs, args.size, args.rounds))
    print("%-4s %-15s %9s %9s %12s %9s %9s %9s" % ("k", "system", "secs", "M rec/s", "CPU µs/rec",
                                                  "RSS MiB", "x floor", "x peer"))
    for k in sorted({r["per_write"] for r in results}):
        rows = [r for r in results if r["per_write"] == k and r["ok"]]

        def of(sys_, rnd):
            return next((r for r in rows if r["system"] == sys_ and r["round"] == rnd), None)

        for s in systems:
            mine = [r for r in rows if r["system"] == s]
            if not mine:
                print("%-4d %-15s   failed" % (k, s))
                continue
            xf, xp = [], []
            for r in mine:
                fl = of("floor", r["round"])
                if fl:
                    xf.append(r["rate"] / fl["rate"])
                if s.startswith("lograild"):
                    peer = of("rsyslog-om" + ("fwd" if s.endswith("tcp") else "relp"), r["round"])
                    if peer:
                        xp.append(r["rate"] / peer["rate"])
            print("%-4d %-15s %9.3f %9.2f %12.2f %9.1f %9s %9s" % (
                k, s, statistics.median(r["secs"] for r in mine),
                statistics.median(r["rate"] for r in mine) / 1e6,
                statistics.median(r["cpu_us"] for r in mine),
                max(r["rss_mib"] for r in mine),
                "%.2f" % statistics.median(xf) if xf else "-",
                "%.2f" % statistics.median(xp) if xp else "-"))


if __name__ == "__main__":
    main()
