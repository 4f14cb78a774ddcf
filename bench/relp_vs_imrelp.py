#!/usr/bin/python3
"""RELP input: lograild's relp listener against rsyslog's imrelp.

    python3 bench/relp_vs_imrelp.py BUILD_DIR [--n 200000] [--size 120]
        [--window 128] [--rounds 3]

One client (BUILD_DIR/bench/relp_blast, C, lib/relp) sends N frames of SIZE
bytes with WINDOW outstanding to a private daemon on 127.0.0.1 writing one
file (lograild: format raw, fsync never; rsyslogd -n: imrelp with its
default in-memory main queue, omfile of %rawmsg%).  Two times per run, from
the first frame: "acked", the last rsp 200 (the client's figure), and
"written", every record in the file.  For lograild the two coincide by
design (an rsp leaves only after the write); rsyslog acknowledges first.
Daemons alternate within each round; medians are printed.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit("daemon exited with %s" % proc.returncode)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    sys.exit("daemon did not listen on %d" % port)


def start(build, name, d, port):
    """Write the daemon's configuration into d and start it in the
    foreground; (process, output file)."""
    out = os.path.join(d, "out.log")
    if name == "lograild":
        conf = os.path.join(d, "l.conf")
        text = ('threads = 2;\ncontrol = { path = "%s/ctl.sock"; };\n'
                'listen = ( { address = "127.0.0.1:%d"; type = "relp"; } );\n'
                'outputs = ( { path = "%s"; format = "raw"; fsync = "never"; } );\n'
                % (d, port, out))
        argv = [os.path.join(build, "lograild"), "-c", conf]
    else:
        conf = os.path.join(d, "r.conf")
        text = ('global(workDirectory="%s")\nmodule(load="imrelp")\n'
                'template(name="raw" type="string" string="%%rawmsg%%\\n")\n'
                'ruleset(name="in") { action(type="omfile" file="%s" template="raw") }\n'
                'input(type="imrelp" port="%d" ruleset="in")\n' % (d, out, port))
        argv = ["/usr/sbin/rsyslogd", "-n", "-f", conf, "-i", os.path.join(d, "pid")]
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "err"), "wb"))
    return p, out


def one(build, name, n, size, window):
    with tempfile.TemporaryDirectory(prefix="rb") as d:
        port = free_port()
        proc, out = start(build, name, d, port)
        try:
            wait_port(port, proc)
            time.sleep(0.2)
            t0 = time.monotonic()
            bl = subprocess.run([os.path.join(build, "bench", "relp_blast"), str(port), str(n),
                                 str(size), str(window)], capture_output=True, text=True,
                                timeout=600)
            if bl.returncode != 0:
                sys.exit("relp_blast: " + bl.stderr)
            acked = float(bl.stdout.split(" in ")[1].split()[0])
            lines = 0
            with open(out, "rb") as f:
                while lines < n:
                    b = f.read(1 << 20)
                    if not b:
                        if time.monotonic() - t0 > 600:
                            sys.exit("%s wrote %d of %d" % (name, lines, n))
                        time.sleep(0.002)
                        continue
                    lines += b.count(b"\n")
            written = time.monotonic() - t0
            return acked, written
        finally:
            proc.terminate()
            proc.wait(60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--size", type=int, default=120)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    res = {"lograild": [], "rsyslog": []}
    for r in range(a.rounds):
        for name in res:
            res[name].append(one(build, name, a.n, a.size, a.window))
            print("round %d %-8s acked %.3f s, written %.3f s" % (r + 1, name, *res[name][-1]),
                  flush=True)
    med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for k, v in res.items()}
    print("RELP %d x %d B, window %d, median of %d:" % (a.n, a.size, a.window, a.rounds))
    for k, (ac, wr) in med.items():
        print("  %-8s acked %.3f s (%.0f msg/s), written %.3f s (%.0f msg/s)"
              % (k, ac, a.n / ac, wr, a.n / wr))
    print("  lograild / rsyslog (written): %.2fx" % (med["rsyslog"][1] / med["lograild"][1]))


if __name__ == "__main__":
    main()
