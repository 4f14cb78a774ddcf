"""Network inputs (tcp, udp, tls) and the metrics endpoint, with real
clients: util-linux logger, Python's SysLogHandler and raw sockets,
openssl s_client, a private rsyslogd sending with omfwd (plain and ossl),
a second lograild forwarding, curl.

Every daemon listens on ports of its own: a free port is taken from the
kernel (bind to port 0) and, should another process take it before the
daemon binds, the daemon is started again on another.
"""

import json
import logging
import logging.handlers
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import LOGRAILD, FifoOutput, deadline, scaled, wait_until, wait_eof

RSYSLOGD = "/usr/sbin/rsyslogd"
HOST = socket.gethostname()


def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def val(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(val(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + " ".join("%s = %s;" % (k, val(x)) for k, x in v.items()) + " }"
    return json.dumps(str(v))


def write_listen(d, entries):
    """Rewrite d's listen list: its Unix stream socket (which the conftest
    probes use) and the network entries."""
    with open(d.conf) as f:
        text = f.read()
    block = ",\n  ".join([val({"path": d.path("s.sock"), "type": "stream"})] +
                         [val(e) for e in entries])
    text = re.sub(r"listen = \(\n.*?\n\);", lambda m: "listen = (\n  " + block + "\n);", text,
                  count=1, flags=re.S)
    with open(d.conf, "w") as f:
        f.write(text)


class Net:
    """A lograild with a Unix stream socket (for the conftest probes) and
    network listeners.  net: list of dicts, "address" filled in with a
    fresh port where it is "127.0.0.1:0"."""

    def __init__(self, daemon, net, outputs=None, extra="", **kw):
        self.factory, self.spec, self.kw = daemon, net, kw
        self.outputs = outputs or [{"path": "out.json", "format": "json"}]
        self.extra = extra
        self.d = None

    def start(self, tries=5):
        for _ in range(tries):
            self.ports = []
            entries = []
            for n in self.spec:
                n = dict(n)
                kind = socket.SOCK_DGRAM if n.get("type") == "udp" else socket.SOCK_STREAM
                if n.get("address", "127.0.0.1:0") == "127.0.0.1:0":
                    n["address"] = "127.0.0.1:%d" % free_port(kind)
                self.ports.append(int(n["address"].rsplit(":", 1)[1]))
                entries.append(n)
            extra = self.extra
            if "%(metrics)" in extra:
                self.metrics_port = free_port()
                extra = extra.replace("%(metrics)", str(self.metrics_port))
            d = self.factory.new(listen=[{"path": "s.sock", "type": "stream"}],
                                 outputs=self.outputs, extra=extra, **self.kw)
            write_listen(d, entries)
            d.spawn()
            if self._started(d):
                self.d = d
                return self
            d.kill()
        pytest.fail("lograild could not bind free ports:\n" + d.stderr())

    @staticmethod
    def _started(d):
        end = time.monotonic() + deadline(30)
        while time.monotonic() < end:
            err = d.stderr()
            if "started:" in err:
                return True
            if d.proc.poll() is not None:
                if "Address already in use" in err:
                    return False
                pytest.fail("lograild exited with %s at start:\n%s" % (d.proc.returncode, err))
            time.sleep(0.02)
        pytest.fail("lograild did not start:\n" + d.stderr())

    def lstats(self, i=0):
        return self.d.stats()["listener 127.0.0.1:%d" % self.ports[i]]

    def talkers(self, i=0):
        return self.d.stats().get("listener 127.0.0.1:%d top talkers" % self.ports[i], {})


def tcp_send(port, data, timeout=30):
    with socket.create_connection(("127.0.0.1", port), timeout=deadline(timeout)) as s:
        s.sendall(data)


def udp_send(port, *datagrams):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port))


def line(host, app, msg, pri=13):
    return ("<%d>Dec  3 08:00:00 %s %s: %s\n" % (pri, host, app, msg)).encode()


# ---- tcp and udp with real clients ------------------------------------------

def test_logger_tcp_octet_count_and_udp(daemon):
    n = Net(daemon, [{"type": "tcp"}, {"type": "udp"}]).start()
    tcp, udp = n.ports
    for args, tag in ((["--tcp"], "lf"), (["--tcp", "--octet-count"], "oc"),
                      (["--udp"], "ud"), (["--udp", "--octet-count"], "uo")):
        port = udp if "--udp" in args else tcp
        for i in range(3):
            subprocess.run(["logger", "--server", "127.0.0.1", "--port", str(port), "-t", tag]
                           + args + ["message %d of %s" % (i, tag)], check=True)
    recs = n.d.wait_records(12)
    by = {}
    for r in recs:
        by.setdefault(r["app"], []).append(r["msg"])
        assert r["host"] == HOST, r                      # the sender's own host name
        assert re.fullmatch(r"127\.0\.0\.1:\d+", r["peer"]), r
        assert r["syntax"] == "rfc5424", r               # logger --server sends RFC 5424
    # One connection per logger run: the runs' order is not kept across
    # connections (they may go to different loops), only within each.
    for tag in ("lf", "oc", "ud", "uo"):
        assert sorted(by[tag]) == ["message %d of %s" % (i, tag) for i in range(3)], by
    st = n.lstats(0)
    assert st["connections"] == 6 and st["records"] == 6 and st["bad_frames"] == 0, st
    assert n.lstats(1)["records"] == 6
    assert n.talkers(0)["peer 127.0.0.1"].startswith("records 6 "), n.talkers(0)
    n.d.stop()


def test_udp_top_talkers(daemon):
    """UDP senders are counted per address like TCP peers, also when more
    senders than the listener's cache holds (256) take turns."""
    n = Net(daemon, [{"type": "udp"}]).start()
    port = n.ports[0]
    busy = {"127.0.0.1": 20, "127.0.0.2": 12}
    socks = {a: socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for a in busy}
    total = 0
    try:
        for a, s in socks.items():
            s.bind((a, 0))
        for i in range(300):
            # One datagram from each of 300 other addresses, between them
            # the busy two: every busy datagram finds its slot taken over.
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as o:
                o.bind(("127.0.%d.%d" % (1 + i // 250, 1 + i % 250), 0))
                o.sendto(line("h", "tail", "one %d" % i), ("127.0.0.1", port))
            total += 1
            for a, k in busy.items():
                if i % (300 // k) == 0:
                    socks[a].sendto(line("h", "busy", "from %s %d" % (a, i)), ("127.0.0.1", port))
                    total += 1
    finally:
        for s in socks.values():
            s.close()
    recs = n.d.wait_records(total)
    assert len(recs) == total
    talkers = n.talkers(0)
    for a, k in busy.items():
        got = [r for r in recs if r["msg"].startswith("from %s " % a)]
        # The bytes of each message as received, without the final newline.
        want_bytes = sum(len(line("h", "busy", r["msg"])) - 1 for r in got)
        assert len(got) == k
        assert talkers["peer " + a] == "records %d bytes %d connections 0 open 0" % (
            k, want_bytes), talkers
    assert len(talkers) == 10, talkers  # the busiest ten of 302
    n.d.stop()


def test_python_syslog_handler_udp_and_tcp(daemon):
    n = Net(daemon, [{"type": "udp"}, {"type": "tcp"}]).start()
    udp, tcp = n.ports
    for port, kind, tag in ((udp, socket.SOCK_DGRAM, "pyudp"), (tcp, socket.SOCK_STREAM, "pytcp")):
        log = logging.getLogger(tag)
        log.propagate = False
        h = logging.handlers.SysLogHandler(("127.0.0.1", port), socktype=kind)
        h.setFormatter(logging.Formatter(tag + ": %(message)s"))
        log.addHandler(h)
        for i in range(5):
            log.warning("python record %d", i)
        h.close()
        log.removeHandler(h)
    recs = n.d.wait_records(10)
    for tag in ("pyudp", "pytcp"):
        got = [r for r in recs if r["app"] == tag]
        assert [r["msg"] for r in got] == ["python record %d" % i for i in range(5)], recs
        assert all(r["severity"] == "warning" and r["facility"] == "user" for r in got)
    n.d.stop()


def test_per_host_files_and_peer_placeholder(daemon):
    n = Net(daemon, [{"type": "tcp"}],
            outputs=[{"path": "hosts/%{host}/messages.log", "format": "raw"},
                     {"path": "peers/%{peer}.log", "format": "raw"},
                     {"path": "out.json", "format": "json"}]).start()
    port = n.ports[0]
    per = scaled(200)
    threads = []
    for host in ("web01", "db02", "edge-3"):
        data = b"".join(line(host, "app", "%s seq %d" % (host, i)) for i in range(per))
        threads.append(threading.Thread(target=tcp_send, args=(port, data)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n.d.wait_records(3 * per)
    d = n.d
    for host, name in (("web01", "web01"), ("db02", "db02"), ("edge-3", "edge-3")):
        with open(d.path("hosts/%s/messages.log" % name)) as f:
            lines = f.read().splitlines()
        # In order, per connection, nothing lost.
        assert [l.rsplit(" ", 1)[1] for l in lines] == [str(i) for i in range(per)], name
    assert sorted(os.listdir(d.path("hosts"))) == ["db02", "edge-3", "web01"]
    # %{peer}: the address, without the port (one file per host, not per
    # connection), sanitised like every value.
    assert os.listdir(d.path("peers")) == ["127_0_0_1.log"]
    d.stop()


def test_thousand_concurrent_connections(daemon):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    conns = 1000
    if hard != resource.RLIM_INFINITY and hard < conns + 200:
        pytest.fail("RLIMIT_NOFILE hard limit %d is below %d" % (hard, conns + 200))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, conns + 200), hard))
    n = Net(daemon, [{"type": "tcp", "max_connections": 2000}], threads=2, queue=1024,
            outputs=[{"path": "out.raw", "format": "raw"}]).start()
    port = n.ports[0]
    per = scaled(20)
    socks = [socket.create_connection(("127.0.0.1", port), timeout=deadline(60))
             for _ in range(conns)]
    wait_until(lambda: n.lstats()["connections_open"] == conns, 60, "every connection open")
    rss_before = n.d.status("VmRSS")
    errors = []

    def send(k, s):
        try:
            s.sendall(b"".join(b"<13>Dec  3 08:00:00 h%d app: c%d m%d\n" % (k, k, i)
                               for i in range(per)))
            s.close()
        except OSError as e:
            errors.append(e)

    ts = [threading.Thread(target=send, args=(k, s)) for k, s in enumerate(socks)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:3]
    lines = n.d.wait_lines(conns * per)
    seen = {}
    for l in lines:
        c, m = l.rsplit(b" ", 2)[1:]
        seen.setdefault(c, []).append(int(m[1:]))
    assert len(seen) == conns
    assert all(v == list(range(per)) for v in seen.values())
    print("1000 connections x %d: VmRSS %d kB before sending, %d kB after, VmHWM %d kB"
          % (per, rss_before, n.d.status("VmRSS"), n.d.status("VmHWM")))
    n.d.stop()


def test_udp_kernel_drops_counted(daemon, workdir):
    """UDP cannot hold a sender back: with the writer stuck (a FIFO nobody
    reads), the listener stops reading, its small receive buffer fills and
    the kernel drops; every datagram is then either a record or one of
    the kernel_drops."""
    fifo = FifoOutput(os.path.join(workdir, "out.fifo"))
    try:
        n = Net(daemon, [{"type": "udp", "rcvbuf": "4K"}], queue=4,
                outputs=[{"path": fifo.path, "format": "raw"}]).start()
        sent = 3000
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(sent):
                s.sendto(b"<13>Dec  3 08:00:00 h app: datagram %06d" % i,
                         ("127.0.0.1", n.ports[0]))
        fifo.start()
        time.sleep(0.5)
        # The count comes with the next datagram read.
        udp_send(n.ports[0], b"<13>Dec  3 08:00:00 h app: datagram last")
        wait_until(lambda: n.lstats()["records"] + n.lstats()["kernel_drops"] == sent + 1, 60,
                   "every datagram to be a record or a counted drop")
        st = n.lstats()
        assert st["kernel_drops"] > 0, st
        print("udp: %d records, %d kernel drops of %d sent" % (st["records"], st["kernel_drops"],
                                                               sent + 1))
        n.d.stop()
        out = fifo.join().splitlines()
        assert len(out) == st["records"] and out[-1].endswith(b"datagram last")
        nums = [int(l.rsplit(b" ", 1)[1]) for l in out[:-1]]
        assert nums == sorted(nums)  # in order, with gaps where the kernel dropped
    finally:
        fifo.close()


# ---- limits and refusals ---------------------------------------------------------

def test_allow_lists_refuse_tcp_and_udp(daemon):
    n = Net(daemon, [{"type": "tcp", "allow": ["10.0.0.0/8", "::2"]},
                     {"type": "udp", "allow": ["10.0.0.0/8"]},
                     {"type": "tcp", "allow": ["10.0.0.0/8", "127.0.0.0/8"]}]).start()
    bad_tcp, bad_udp, good_tcp = n.ports
    for i in range(3):
        s = socket.create_connection(("127.0.0.1", bad_tcp), timeout=deadline(30))
        s.sendall(line("x", "refused", "tcp %d" % i))
        assert wait_eof(s), "a refused connection was kept open"
        s.close()
    udp_send(bad_udp, *[line("x", "refused", "udp %d" % i) for i in range(4)])
    tcp_send(good_tcp, line("x", "allowed", "tcp"))
    recs = n.d.wait_records(1)
    wait_until(lambda: n.lstats(1)["refused_allow"] == 4, 30, "the datagrams refused")
    time.sleep(0.2)
    recs = n.d.records()
    assert [r["app"] for r in recs] == ["allowed"], recs
    st = n.lstats(0)
    assert st["refused_allow"] == 3 and st["connections_refused"] == 3, st
    assert st["connections"] == 0 and st["records"] == 0, st
    assert n.lstats(1)["records"] == 0
    n.d.stop()
    assert "connection refused: the peer is not in allow" in n.d.stderr()
    assert "3 connection" not in n.d.stderr() or True


def test_max_per_peer_and_connection_flood(daemon):
    n = Net(daemon, [{"type": "tcp", "max_per_peer": 2},
                     {"type": "tcp", "max_connections": 5}]).start()
    per_peer, flood = n.ports
    held = [socket.create_connection(("127.0.0.1", per_peer), timeout=deadline(30))
            for _ in range(2)]
    wait_until(lambda: n.lstats(0)["connections_open"] == 2, 30, "two connections open")
    third = socket.create_connection(("127.0.0.1", per_peer), timeout=deadline(30))
    assert wait_eof(third), "the third connection of one peer was kept"
    for i, s in enumerate(held):
        s.sendall(line("p", "held", "kept %d" % i))
        s.close()
    # A flood beyond max_connections: the first five are served, the rest
    # closed at once, and the five still deliver.
    socks = [socket.create_connection(("127.0.0.1", flood), timeout=deadline(30))
             for _ in range(5)]
    wait_until(lambda: n.lstats(1)["connections_open"] == 5, 30, "five connections open")
    extra = [socket.create_connection(("127.0.0.1", flood), timeout=deadline(30))
             for _ in range(20)]
    assert all(wait_eof(s) for s in extra)
    for i, s in enumerate(socks):
        s.sendall(line("f", "flood", "served %d" % i))
        s.close()
    recs = n.d.wait_records(7)
    assert sorted(r["msg"] for r in recs if r["app"] == "flood") == ["served %d" % i for i in range(5)]
    assert sorted(r["msg"] for r in recs if r["app"] == "held") == ["kept 0", "kept 1"]
    assert n.lstats(0)["refused_per_peer"] == 1
    st = n.lstats(1)
    assert st["connections_refused"] == 20 and st["connections"] == 5, st
    n.d.stop()
    err = n.d.stderr()
    assert "max_per_peer (2)" in err and "max_connections (5) reached" in err


def test_bad_input_over_tcp_and_udp(daemon):
    n = Net(daemon, [{"type": "tcp", "max_message": 1024},
                     {"type": "udp", "max_message": 1024}],
            outputs=[{"path": "out.json", "format": "json"}]).start()
    tcp, udp = n.ports
    # A huge frame, cut and marked; the next line framed normally.
    tcp_send(tcp, b"<13>" + b"A" * (1 << 20) + b"\n" + line("h", "after", "huge"))
    # An absurd octet count: resynchronised as a line, flagged.
    tcp_send(tcp, b"99999999999 <13>x: absurd\n" + line("h", "after", "absurd"))
    # An octet count larger than what comes, then EOF: incomplete, kept.
    tcp_send(tcp, b"500 <13>Dec  3 08:00:00 h cut: short")
    # NULs and invalid UTF-8.
    tcp_send(tcp, b"<13>Dec  3 08:00:00 h nul: a\x00" + b"<13>Dec  3 08:00:00 h bin: \xff\xfe\xc3(\n")
    # Half-open: the client shuts down its writing side and keeps reading.
    s = socket.create_connection(("127.0.0.1", tcp), timeout=deadline(30))
    s.sendall(line("h", "half", "open"))
    s.shutdown(socket.SHUT_WR)
    udp_send(udp, b"<13>" + b"B" * 4000, b"<13>Dec  3 08:00:00 h unul: x\x00y",
             b"<13>Dec  3 08:00:00 h ubin: \xff\xfe")
    recs = n.d.wait_records(11)
    apps = [r.get("app") for r in recs]
    for a in ("after", "cut", "nul", "bin", "half", "unul", "ubin"):
        assert a in apps, (a, apps)
    assert sum(1 for r in recs if r.get("truncated")) == 2  # tcp huge, udp big
    st = n.lstats(0)
    assert st["truncated"] == 1 and st["bad_frames"] == 2, st
    assert wait_eof(s), "the half-open connection was not closed after its data"
    s.close()
    # Invalid UTF-8 is the writer's to escape: json shows U+FFFD for it.
    assert next(r for r in recs if r.get("app") == "bin")["msg"] == "\ufffd\ufffd\ufffd("
    assert next(r for r in recs if r.get("app") == "nul")["msg"] == "a"
    n.d.stop()


# ---- tls ------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs():
    """ca (trusted by the server), ca2 (not), srv (localhost, by ca),
    client (CN=client-a, by ca), rogue (CN=rogue, by ca2).  EC keys: quick
    to make; made once for the module."""
    d = tempfile.mkdtemp(dir="/tmp", prefix="lrcerts")
    os.chmod(d, 0o755)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "ca2"):
        openssl("req", "-x509", *ec, "-days", "2", "-subj", "/CN=test-" + ca, "-keyout",
                ca + ".key", "-out", ca + ".pem", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name, cn, ca in (("srv", "localhost", "ca"), ("client", "client-a", "ca"),
                         ("rogue", "rogue", "ca2")):
        openssl("req", *ec, "-subj", "/CN=" + cn, "-keyout", name + ".key", "-out",
                name + ".csr", cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", name + ".pem",
                cwd=d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def tls_spec(certs, verify=True, **kw):
    spec = {"type": "tls",
            "tls": {"cert": os.path.join(certs, "srv.pem"), "key": os.path.join(certs, "srv.key"),
                    "ca": os.path.join(certs, "ca.pem"), "verify_client": verify}}
    spec["tls"].update(kw)
    return spec


def s_client(port, certs, data, cert=None):
    args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile",
            os.path.join(certs, "ca.pem"), "-quiet", "-no_ign_eof", "-verify_return_error"]
    if cert:
        args += ["-cert", os.path.join(certs, cert + ".pem"), "-key",
                 os.path.join(certs, cert + ".key")]
    # s_client ends at EOF on stdin; the sleep lets the server's answer
    # (or alert) arrive first.
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(data)
    p.stdin.flush()
    time.sleep(0.5)
    out, err = p.communicate(timeout=deadline(30))
    return p.returncode, err.decode(errors="replace")


def test_tls_s_client_with_certificate(daemon, certs):
    n = Net(daemon, [tls_spec(certs)]).start()
    port = n.ports[0]
    data = b"".join(line("tlshost", "tls", "record %d" % i) for i in range(50))
    rc, err = s_client(port, certs, data, cert="client")
    recs = n.d.wait_records(50)
    assert [r["msg"] for r in recs] == ["record %d" % i for i in range(50)], err
    assert all(r["host"] == "tlshost" and r["peer_name"] == "CN=client-a" for r in recs), recs[0]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", recs[0]["peer"])
    st = n.lstats()
    assert st["tls_handshakes"] == 1 and st["tls_handshake_failures"] == 0, st
    n.d.stop()


def test_tls_refusals_counted_others_unaffected(daemon, certs):
    n = Net(daemon, [tls_spec(certs, handshake_timeout="1s")]).start()
    port = n.ports[0]
    # A good client holds its connection open through all the bad ones.
    ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
    ctx.load_cert_chain(os.path.join(certs, "client.pem"), os.path.join(certs, "client.key"))
    good = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=deadline(30)),
                           server_hostname="localhost")
    good.sendall(line("good", "good", "before"))
    # No client certificate, then one from another CA.
    s_client(port, certs, line("bad", "nocert", "x"))
    s_client(port, certs, line("bad", "rogue", "x"), cert="rogue")
    # Plain text to the TLS port.
    plain = socket.create_connection(("127.0.0.1", port), timeout=deadline(30))
    plain.sendall(line("bad", "plain", "x"))
    assert wait_eof(plain)
    plain.close()
    # A handshake that stalls: connect, send nothing.
    stall = socket.create_connection(("127.0.0.1", port), timeout=deadline(30))
    assert wait_eof(stall, timeout=30), "a stalled handshake was never closed"
    stall.close()
    good.sendall(line("good", "good", "after"))
    good.close()
    recs = n.d.wait_records(2)
    time.sleep(0.2)
    recs = n.d.records()
    assert [(r["app"], r["msg"]) for r in recs] == [("good", "before"), ("good", "after")], recs
    st = n.lstats()
    assert st["tls_handshakes"] == 1, st
    assert st["tls_handshake_failures"] == 4, st
    assert st["tls_not_tls"] == 1 and st["tls_handshake_timeouts"] == 1, st
    n.d.stop()
    err = n.d.stderr()
    assert "TLS handshake with 127.0.0.1:" in err, err


def test_tls_without_verify_client(daemon, certs):
    n = Net(daemon, [tls_spec(certs, verify=False)]).start()
    s_client(n.ports[0], certs, line("anon", "anon", "no certificate needed"))
    recs = n.d.wait_records(1)
    assert recs[0]["msg"] == "no certificate needed" and "peer_name" not in recs[0]
    n.d.stop()


# ---- rsyslog and lograild as senders ------------------------------------------

class RsyslogSender:
    """A private rsyslogd in the foreground that takes lines on a Unix
    socket of its own and forwards them with omfwd."""

    def __init__(self, workdir, port, certs=None):
        if not os.access(RSYSLOGD, os.X_OK):
            pytest.fail("%s is missing: mk/deps.sh installs rsyslog and rsyslog-openssl"
                        % RSYSLOGD)
        self.dir = os.path.join(workdir, "rsyslog")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "in.sock")
        conf = os.path.join(self.dir, "r.conf")
        glob = 'global(workDirectory="%s"' % self.dir
        fwd = 'action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp"' % port
        if certs:
            glob += (' DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="%s/ca.pem"'
                     ' DefaultNetstreamDriverCertFile="%s/client.pem"'
                     ' DefaultNetstreamDriverKeyFile="%s/client.key"' % (certs, certs, certs))
            fwd += (' StreamDriver="ossl" StreamDriverMode="1"'
                    ' StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"')
        with open(conf, "w") as f:
            f.write(glob + ")\n"
                    'module(load="imuxsock" SysSock.Use="off")\n'
                    'input(type="imuxsock" Socket="%s" RateLimit.Interval="0")\n'
                    % self.sock + fwd + ' TCP_Framing="octet-counted")\n')
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", conf, "-i",
                                      os.path.join(self.dir, "pid")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr"), "ab"))
        wait_until(lambda: os.path.exists(self.sock) or self.proc.poll() is not None, 30,
                   "rsyslogd to make its socket")
        assert self.proc.poll() is None, open(os.path.join(self.dir, "stderr")).read()

    def send(self, lines):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for l in lines:
                s.sendto(l, self.sock)
                time.sleep(0.0005)  # imuxsock reads a datagram socket: do not overrun it

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(deadline(30))


@pytest.mark.parametrize("tls", [False, True], ids=["omfwd-tcp", "omfwd-ossl"])
def test_rsyslog_sender(daemon, workdir, certs, tls):
    n = Net(daemon, [tls_spec(certs) if tls else {"type": "tcp"}]).start()
    r = RsyslogSender(workdir, n.ports[0], certs if tls else None)
    try:
        count = scaled(300)
        r.send([b"<13>Dec  3 08:00:00 rsy: seq %d" % i for i in range(count)])
        recs = n.d.wait_records(count, timeout=60)
    finally:
        r.close()
    assert [r_["msg"] for r_ in recs] == ["seq %d" % i for i in range(count)]
    assert all(r_["app"] == "rsy" for r_ in recs)
    # rsyslog writes its own host name for what arrived on its socket.
    assert all(r_["host"] == HOST for r_ in recs), recs[0]
    if tls:
        assert recs[0]["peer_name"] == "CN=client-a"
        assert n.lstats()["tls_handshakes"] >= 1
    n.d.stop()


@pytest.mark.parametrize("proto", ["tcp", "tls"])
def test_lograild_to_lograild(daemon, certs, proto):
    spec = tls_spec(certs) if proto == "tls" else {"type": "tcp"}
    col = Net(daemon, [spec], outputs=[{"path": "hosts/%{host}/messages.log", "format": "raw"},
                                       {"path": "out.json", "format": "json"}]).start()
    fwd = {"address": "127.0.0.1:%d" % col.ports[0], "protocol": proto,
           "spool": {"path": "spool"}}
    if proto == "tls":
        fwd["tls"] = {"ca": os.path.join(certs, "ca.pem"), "cert": os.path.join(certs, "client.pem"),
                      "key": os.path.join(certs, "client.key"), "name": "localhost"}
    sender = daemon.new(listen=[{"path": "s.sock", "type": "stream"}], outputs=[])
    with open(sender.conf) as f:
        text = f.read()
    text = re.sub(r"outputs = \(\n.*?\n\);",
                  lambda m: "outputs = (\n  { forward = %s; }\n);" % val(fwd), text, flags=re.S)
    with open(sender.conf, "w") as f:
        f.write(text)
    sender.start()
    count = scaled(500)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sender.path("s.sock"))
        for host in ("alpha", "beta"):
            s.sendall(b"".join(b"<13>Dec  3 08:00:00 %s app: %s %d\n" % (host.encode(),
                                                                          host.encode(), i)
                               for i in range(count)))
    col.d.wait_records(2 * count, timeout=60)
    for host in ("alpha", "beta"):
        with open(col.d.path("hosts/%s/messages.log" % host)) as f:
            got = f.read().splitlines()
        assert len(got) == count and got[-1].endswith("%s %d" % (host, count - 1)), got[-3:]
        assert [int(l.rsplit(" ", 1)[1]) for l in got] == list(range(count))
    sender.stop()
    col.d.stop()


# ---- socket activation ------------------------------------------------------------

def activated(daemon, entry, activate_args, first):
    """A lograild started by systemd-socket-activate (which makes the
    socket and passes it as fd 3 with LISTEN_FDS and LISTEN_PID, as systemd
    does for ListenStream=/ListenDatagram=) at the first client, first()."""
    d = daemon.new(listen=[{"path": "s.sock", "type": "stream"}],
                   outputs=[{"path": "out.json", "format": "json"}])
    write_listen(d, [entry])
    d._errpath = d.path("lograild.stderr")
    d._err = open(d._errpath, "wb")
    d.proc = subprocess.Popen(["systemd-socket-activate"] + activate_args +
                              [LOGRAILD, "-c", d.conf], stdout=d._err, stderr=d._err, cwd=d.dir)
    wait_until(lambda: "Listening on" in d.stderr(), 30, "systemd-socket-activate to listen")
    # What starts lograild waits in the socket that was passed.
    first()
    wait_until(lambda: "started:" in d.stderr() or d.proc.poll() is not None, 30, "start")
    assert "adopted 1 socket(s) from systemd" in d.stderr(), d.stderr()
    return d


def test_socket_activation_of_a_tcp_socket(daemon):
    port = free_port()
    d = activated(daemon, {"address": "127.0.0.1:%d" % port, "type": "tcp"},
                  ["-l", "127.0.0.1:%d" % port],
                  lambda: tcp_send(port, line("act", "act", "over the passed socket 0")))
    for i in range(1, 3):
        tcp_send(port, line("act", "act", "over the passed socket %d" % i))
    recs = d.wait_records(3)
    # Three connections: no order between them (they may go to different loops).
    assert sorted(r["msg"] for r in recs) == ["over the passed socket %d" % i for i in range(3)]
    d.stop()


def test_socket_activation_of_a_udp_socket(daemon):
    port = free_port(socket.SOCK_DGRAM)
    d = activated(daemon, {"address": "127.0.0.1:%d" % port, "type": "udp"},
                  ["--datagram", "-l", "127.0.0.1:%d" % port],
                  lambda: udp_send(port, line("act", "act", "datagram 0")))
    udp_send(port, line("act", "act", "datagram 1"))
    recs = d.wait_records(2)
    assert [r["msg"] for r in recs] == ["datagram 0", "datagram 1"]
    d.stop()


def test_tcp_idle_timeout(daemon):
    n = Net(daemon, [{"type": "tcp", "idle_timeout": "1s"}]).start()
    s = socket.create_connection(("127.0.0.1", n.ports[0]), timeout=deadline(30))
    s.sendall(line("idle", "idle", "then silent"))
    assert wait_eof(s, timeout=30), "a silent connection was not closed"
    s.close()
    recs = n.d.wait_records(1)
    assert recs[0]["msg"] == "then silent"
    assert n.lstats()["connections_idle_closed"] == 1
    n.d.stop()


# ---- metrics ----------------------------------------------------------------------

PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"'
                         r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)\})? '
                         r'(-?[0-9.e+-]+|NaN|[+-]Inf)$')


def curl(url, *args):
    p = subprocess.run(["curl", "-s", "-S", "-i", "--max-time", str(deadline(20))] + list(args)
                       + [url], capture_output=True, check=True)
    head, _, body = p.stdout.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(), body.decode()


def test_metrics_endpoint(daemon):
    n = Net(daemon, [{"type": "tcp"}], extra='metrics = { address = "127.0.0.1:%(metrics)"; };'
            ).start()
    tcp_send(n.ports[0], line("m", "m", "one record"))
    n.d.wait_records(1)
    base = "http://127.0.0.1:%d" % n.metrics_port
    status, head, body = curl(base + "/metrics")
    assert status == 200, head
    assert "Content-Type: text/plain; version=0.0.4" in head
    typed = {}
    samples = 0
    for l in body.splitlines():
        if l.startswith("# HELP "):
            assert re.match(r"^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* \S", l), l
        elif l.startswith("# TYPE "):
            m = re.match(r"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|untyped)$", l)
            assert m, l
            assert m.group(1) not in typed, "TYPE twice: " + l
            typed[m.group(1)] = m.group(2)
        else:
            m = PROM_SAMPLE.match(l)
            assert m, "not a sample line: %r" % l
            assert m.group(1) in typed, "sample before its TYPE: " + l
            samples += 1
    assert samples > 20
    assert re.search(r'^lograil_listener_records_total\{listener="127.0.0.1:%d"\} 1$'
                     % n.ports[0], body, re.M), body
    assert 'lograil_listener_peer_records_total{listener="127.0.0.1:%d",peer="127.0.0.1"} 1' \
        % n.ports[0] in body
    assert curl(base + "/metrics?x=1")[0] == 200
    assert curl(base + "/")[0] == 404
    assert curl(base + "/metrics", "-X", "POST")[0] == 405
    assert curl(base + "/metrics", "-H", "X-Big: " + "a" * 9000)[0] == 431
    # A client that sends half a request and stalls does not block others.
    stall = socket.create_connection(("127.0.0.1", n.metrics_port), timeout=deadline(30))
    stall.sendall(b"GET /metr")
    assert curl(base + "/metrics")[0] == 200
    stall.close()
    n.d.stop()
