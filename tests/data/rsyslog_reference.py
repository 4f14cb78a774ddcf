#!/usr/bin/env python3
"""Build tests/data/device_lines.ref: what rsyslog makes of each line of
tests/data/device_lines.txt, as received over TCP (imtcp, LF framing).

A private rsyslogd runs in the foreground on a temporary directory with a
template that prints %pri%, %hostname%, %syslogtag%, %programname% and %msg%
as JSON; each output line is written to the .ref file as tab-separated
fields with \\t, \\n and \\\\ escaped.  rsyslog puts the sender's address in
%hostname% when a message carries none: with DNS off that is 127.0.0.1,
written as an empty host.  Run by hand when the corpus changes:
    python3 tests/data/rsyslog_reference.py
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "device_lines.txt")
REF = os.path.join(HERE, "device_lines.ref")

CONF = """
global(workDirectory="{d}" net.enableDNS="off" maxMessageSize="64k")
module(load="imtcp")
template(name="j" type="list") {{
  constant(value="{{\\"pri\\":\\"") property(name="pri")
  constant(value="\\",\\"host\\":\\"") property(name="hostname" format="json")
  constant(value="\\",\\"tag\\":\\"") property(name="syslogtag" format="json")
  constant(value="\\",\\"prog\\":\\"") property(name="programname" format="json")
  constant(value="\\",\\"msg\\":\\"") property(name="msg" format="json")
  constant(value="\\"}}\\n")
}}
ruleset(name="in" queue.type="Direct") {{ action(type="omfile" file="{d}/out.json" template="j") }}
input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="in")
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def main():
    lines = open(CORPUS, "rb").read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        with open(os.path.join(d, "r.conf"), "w") as f:
            f.write(CONF.format(d=d, port=port))
        rs = subprocess.Popen(["rsyslogd", "-n", "-f", os.path.join(d, "r.conf"),
                               "-i", os.path.join(d, "pid")])
        try:
            for _ in range(200):
                try:
                    c = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                sys.exit("rsyslogd did not listen")
            c.sendall(b"".join(l + b"\n" for l in lines))
            c.close()
            out = os.path.join(d, "out.json")
            for _ in range(400):
                if os.path.exists(out) and open(out, "rb").read().count(b"\n") >= len(lines):
                    break
                time.sleep(0.05)
            got = open(out, "rb").read().decode("utf-8").splitlines()
        finally:
            rs.terminate()
            rs.wait()
    if len(got) != len(lines):
        sys.exit("rsyslog wrote %d lines for %d" % (len(got), len(lines)))
    with open(REF, "w", encoding="utf-8") as f:
        f.write("# pri\thost\ttag\tprogramname\tmsg -- rsyslog 8.2302 imtcp, one line per line of device_lines.txt\n")
        for g in got:
            j = json.loads(g)
            host = "" if j["host"] == "127.0.0.1" else j["host"]
            f.write("\t".join(esc(x) for x in (j["pri"], host, j["tag"], j["prog"], j["msg"])) + "\n")
    print("wrote", REF, len(got), "lines")


if __name__ == "__main__":
    main()
