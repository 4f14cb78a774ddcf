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
per write() (the daemon is).  Rounds interleave the systems; the table
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
             "loadgen": ["bench/e2e/loadgen.c"]}
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
    args = ap.parse_args()
    systems = args.systems.split(",")
    if any(s.startswith("rsyslog") for s in systems) and not os.access(RSYSLOGD, os.X_OK):
        sys.exit("rsyslogd is missing: run mk/deps.sh")
    bins = build(args.build)
    tmp = tempfile.mkdtemp(prefix="lrbf")
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
