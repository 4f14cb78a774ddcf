"""The RELP listener (type = "relp") against real senders: rsyslog's omrelp
(a private rsyslogd in the foreground, imuxsock on a private socket), a
lograild forwarding over RELP, and a Python RELP client that checks what an
acknowledgement means: after each "rsp 200" it reads the collector's file,
and the record must be there (rsyslog's imrelp is measured the same way and
its figure printed, PEERS.md).  Garbage RELP is refused and counted while
other clients go on.  No timed assertions: waits are for events.
"""

import os
import re
import signal
import socket
import subprocess
import threading

import pytest

from conftest import conf_group, deadline, scaled, wait_until

RSYSLOGD = "/usr/sbin/rsyslogd"
SEQ_RE = re.compile(rb"seq (\d+)")


@pytest.fixture(autouse=True)
def _rsyslogd_exists():
    if not os.access(RSYSLOGD, os.X_OK):
        pytest.fail("%s is missing: mk/deps.sh installs rsyslog and rsyslog-relp" % RSYSLOGD)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seqs_in(data):
    return [int(m.group(1)) for m in SEQ_RE.finditer(data)]


def count_dups(seqs):
    seen, dups = set(), 0
    for s in seqs:
        dups += s in seen
        seen.add(s)
    return dups


def relp_collector(daemon, port, outputs, queue=256):
    """A lograild with a RELP listener on 127.0.0.1:port (and a Unix stream
    socket, which the fixture's readiness probe uses)."""
    d = daemon.new(outputs=[{"path": "unused.log"}], queue=queue)
    outs = [dict(o, path=d.path(o["path"]), fsync=o.get("fsync", "never")) for o in outputs]
    text = ["threads = 2;", "queue = { capacity = %d; };" % queue,
            "control = %s;" % conf_group({"path": d.control}),
            "listen = ( %s, %s );" % (conf_group({"path": d.path("s.sock"), "type": "stream"}),
                                      conf_group({"address": "127.0.0.1:%d" % port, "type": "relp"})),
            "outputs = (\n  " + ",\n  ".join(conf_group(o) for o in outs) + "\n);"]
    with open(d.conf, "w") as f:
        f.write("\n".join(text) + "\n")
    d.listen = [{"path": d.path("s.sock"), "type": "stream"}]
    d.relp_port = port
    return d


def start_collector(d):
    d.stopped = False
    d.proc = None
    d.start()
    wait_until(lambda: socket.socket().connect_ex(("127.0.0.1", d.relp_port)) == 0, 30,
               "the RELP listener")
    return d


def relp_stats(d):
    return d.stats()["listener 127.0.0.1:%d" % d.relp_port]


class RelpClient:
    """A minimal RELP client: open, syslog frames, rsp parsing."""

    def __init__(self, port, timeout=60):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=deadline(timeout))
        self.buf = b""
        self.txnr = 0

    def frame(self, cmd, data=b""):
        self.txnr += 1
        return b"%d %s %d%s\n" % (self.txnr, cmd, len(data), (b" " + data) if data else b"")

    def read_frame(self):
        """(txnr, command, data) or None at EOF."""
        while True:
            m = re.match(rb"(\d+) (\w+) (\d+)", self.buf)
            if m:
                n = int(m.group(3))
                start = m.end() + (1 if n else 0)
                if len(self.buf) >= start + n + 1:
                    data = self.buf[start:start + n]
                    assert self.buf[start + n:start + n + 1] == b"\n", self.buf[:80]
                    self.buf = self.buf[start + n + 1:]
                    return int(m.group(1)), m.group(2), data
            b = self.s.recv(65536)
            if not b:
                return None
            self.buf += b

    def open(self):
        self.s.sendall(self.frame(b"open", b"relp_version=0\nrelp_software=pytest\ncommands=syslog"))
        t, cmd, data = self.read_frame()
        assert cmd == b"rsp" and data.startswith(b"200 OK\n") and b"commands=syslog" in data, data
        return self

    def syslog(self, msg):
        self.s.sendall(self.frame(b"syslog", msg))
        return self.txnr

    def wait_rsp(self, txnr):
        f = self.read_frame()
        assert f is not None, "connection closed before rsp %d" % txnr
        assert f[0] == txnr and f[1] == b"rsp" and f[2].startswith(b"200"), f
        return f

    def close(self):
        self.s.sendall(self.frame(b"close"))
        t = self.txnr
        while True:
            f = self.read_frame()
            if f is None or (f[0] == t and f[1] == b"rsp"):
                break
        self.s.close()
        return f

    def closed_by_peer(self):
        """True once the server closed the connection (reads EOF)."""
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True


class Rsyslog:
    """A private rsyslogd in the foreground (PEERS.md)."""

    def __init__(self, workdir, body):
        self.dir = os.path.join(workdir, "rsyslog")
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "r.conf")
        self.out = os.path.join(self.dir, "out.log")
        with open(self.conf, "w") as f:
            f.write('global(workDirectory="%s")\n' % self.dir + body % {"d": self.dir})
        self.proc = None

    def start(self, ready):
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", self.conf, "-i",
                                      os.path.join(self.dir, "pid")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr"), "ab"))

        def up():
            if self.proc.poll() is not None:
                pytest.fail("rsyslogd exited with %s" % self.proc.returncode)
            return ready()

        wait_until(up, 30, "rsyslogd to start", interval=0.1)
        return self

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(deadline(30))
        self.proc = None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def rsyslogs(workdir):
    made = []

    def factory(body):
        r = Rsyslog(workdir if not made else os.path.join(workdir, "r%d" % len(made)), body)
        made.append(r)
        return r

    yield factory
    for r in made:
        r.kill()


def read_all(path):
    if not os.path.exists(path):
        return b""
    with open(path, "rb") as f:
        return f.read()


# ---- rsyslog's omrelp as the sender ------------------------------------------

def test_rsyslog_omrelp_every_record_in_order(daemon, rsyslogs):
    """imuxsock on a private socket -> omrelp -> lograild's RELP listener:
    every record arrives once, in order, with the sender's host name and
    tag parsed (network rules)."""
    port = free_port()
    d = start_collector(relp_collector(daemon, port, [
        {"path": "out.log", "format": "json"}]))
    r = rsyslogs("""module(load="imuxsock" SysSock.Use="off")
module(load="omrelp")
ruleset(name="out") { action(type="omrelp" target="127.0.0.1" port="%(port)d") }
input(type="imuxsock" socket="%%(d)s/in.sock" ruleset="out" ratelimit.interval="0"
      CreatePath="on")
""" % {"port": port})
    insock = os.path.join(r.dir, "in.sock")
    r.start(lambda: os.path.exists(insock))
    n = scaled(5000)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.settimeout(deadline(60))
        for i in range(n):
            s.sendto(b"<14>relptest[77]: seq %06d hello over omrelp" % i, insock)

    def arrived():
        return len(seqs_in(read_all(d.path("out.log")))) >= n

    wait_until(arrived, 120, "%d records from omrelp" % n, interval=0.1)
    recs = d.records("out.log")
    assert [int(SEQ_RE.search(x["msg"].encode()).group(1)) for x in recs] == list(range(n))
    host = socket.gethostname().split(".")[0]
    for x in recs[:20]:
        assert x["app"] == "relptest" and x["procid"] == "77", x
        assert x["host"].split(".")[0] == host, x
    st = relp_stats(d)
    assert st["records"] == n and st["bad_frames"] == 0, st
    r.stop()
    d.stop()


# ---- lograild -> lograild ------------------------------------------------------

def _send_stream(path, first, n):
    ts = b"Dec  3 12:00:00"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(deadline(300))
        s.connect(path)
        batch = []
        for i in range(first, first + n):
            batch.append(b"<14>%s fwdapp[9]: seq %06d %s\n" % (ts, i, b"y" * 40))
            if len(batch) == 64:
                s.sendall(b"".join(batch))
                batch = []
        if batch:
            s.sendall(b"".join(batch))


def test_forward_relp_to_collector_killed_loses_nothing(daemon, workdir):
    """lograild (forward, protocol relp) -> lograild (relp listener, per-host
    files).  The collector is SIGKILLed mid-flood and started again:
    every record arrives; duplicates are allowed, and counted."""
    port = free_port()
    c = start_collector(relp_collector(daemon, port, [
        {"path": "hosts/%{host}/messages.log", "format": "raw"}]))
    hostfile = c.path("hosts/fwdhost/messages.log")
    s = daemon.new(outputs=[{"path": "local.log", "format": "raw"}], queue=256)
    with open(s.conf, "w") as f:
        f.write("\n".join([
            'threads = 2;', 'hostname = "fwdhost";', 'queue = { capacity = 256; };',
            'control = { path = "%s"; };' % s.control,
            'listen = ( { path = "%s"; type = "stream"; } );' % s.path("s.sock"),
            'outputs = ( { forward = { address = "127.0.0.1:%d"; protocol = "relp"; '
            'backoff_max = "1s"; spool = { path = "%s"; max_size = "64M"; }; }; '
            'fsync = "never"; } );' % (port, s.path("spool"))]) + "\n")
    s.listen = [{"path": s.path("s.sock"), "type": "stream"}]
    s.start()
    n = scaled(20000)
    half = n // 2
    # The first half flows; the collector is killed once a quarter is
    # written (records of the first half may still be in flight, written
    # but not acknowledged, or acknowledged); the second half is sent only
    # after the kill, so the kill is always mid-stream.
    t = threading.Thread(target=_send_stream, args=(s.path("s.sock"), 0, half))
    t.start()
    wait_until(lambda: len(seqs_in(read_all(hostfile))) >= n // 4, 120,
               "a quarter at the collector", interval=0.01)
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait()
    t.join()
    before = len(seqs_in(read_all(hostfile)))
    _send_stream(s.path("s.sock"), half, n - half)
    start_collector(c)
    wait_until(lambda: set(range(n)) <= set(seqs_in(read_all(hostfile))), 180,
               "every record at the collector", interval=0.1)
    seqs = seqs_in(read_all(hostfile))
    dups = count_dups(seqs)
    print("collector SIGKILL: %d records, %d written before the kill, lost 0, duplicates %d"
          % (n, before, dups))
    assert before <= half < n  # the kill came before the second half existed
    assert set(seqs) == set(range(n))
    # Every line carries the sender's host: the per-host file has them all.
    assert os.listdir(c.path("hosts")) == ["fwdhost"]
    s.stop()
    c.stop()


# ---- what an acknowledgement means ---------------------------------------------

def _acked_not_written(port, outpath, n):
    """Send n records one at a time; after each rsp 200 read the file: how
    many acknowledged records were not yet in it."""
    cl = RelpClient(port).open()
    missing = 0
    f = None
    seen = set()
    data = b""
    for i in range(n):
        t = cl.syslog(b"<14>Dec  3 12:00:00 ackhost acktest: seq %06d" % i)
        cl.wait_rsp(t)
        if f is None and os.path.exists(outpath):
            f = open(outpath, "rb")
        if f is not None:
            data += f.read()
            cut = data.rfind(b"\n") + 1
            seen.update(seqs_in(data[:cut]))
            data = data[cut:]
        if i not in seen:
            missing += 1
    cl.close()
    if f is not None:
        f.close()
    return missing


def test_acknowledged_means_written(daemon, rsyslogs):
    """After every rsp 200 from lograild the record is in the file already,
    so a kill -9 right then loses nothing acknowledged.  rsyslog's imrelp
    with its default (in-memory) queue, measured the same way, is printed."""
    n = scaled(2000)
    port = free_port()
    d = start_collector(relp_collector(daemon, port, [{"path": "out.log", "format": "raw"}]))
    ours = _acked_not_written(port, d.path("out.log"), n)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.stopped = True
    assert set(range(n)) <= set(seqs_in(read_all(d.path("out.log"))))

    rport = free_port()
    r = rsyslogs("""module(load="imrelp")
template(name="line" type="string" string="%%%%msg%%%%\\n")
ruleset(name="in") { action(type="omfile" file="%%(d)s/out.log" template="line") }
input(type="imrelp" port="%(port)d" ruleset="in")
""" % {"port": rport})
    r.start(lambda: socket.socket().connect_ex(("127.0.0.1", rport)) == 0)
    theirs = _acked_not_written(rport, r.out, n)
    r.kill()
    print("acknowledged but not yet written, of %d: lograild %d, rsyslog imrelp %d"
          % (n, ours, theirs))
    assert ours == 0


# ---- garbage ---------------------------------------------------------------------

GARBAGE = [
    b"hello, this is not RELP\n",
    b"1 syslog 5 hello\n",                                   # before open
    b"1 open 10 relp_versi\n2 syslog 999999999 ",             # bad offers / huge frame
    b"0 open 0\n",                                            # TXNR 0 from a client
    b"1 frobnicate 0\n",                                      # unknown command
    b"1 open 52 relp_version=0\nrelp_software=x\ncommands=syslog\n2 syslog 3 abcX",  # bad trailer
]


def test_garbage_refused_counted_others_unaffected(daemon):
    port = free_port()
    d = start_collector(relp_collector(daemon, port, [{"path": "out.log", "format": "raw"}]))
    good = RelpClient(port).open()
    n = scaled(2000)
    half = n // 2
    for i in range(half):
        good.syslog(b"<14>Dec  3 12:00:00 goodhost good: seq %06d" % i)
    bad = []
    for g in GARBAGE:
        c = socket.create_connection(("127.0.0.1", port), timeout=deadline(30))
        c.sendall(g)
        bad.append(c)
    for c in bad:
        # The server closes every one of them.
        c.settimeout(deadline(30))
        while True:
            try:
                b = c.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
        c.close()
    for i in range(half, n):
        good.syslog(b"<14>Dec  3 12:00:00 goodhost good: seq %06d" % i)
    for t in range(2, n + 2):
        good.wait_rsp(t)
    good.close()
    assert sorted(seqs_in(read_all(d.path("out.log")))) == list(range(n))
    st = relp_stats(d)
    assert st["bad_frames"] >= len(GARBAGE), st
    assert "RELP client" in d.stderr()
    d.stop()


# ---- held end to end ---------------------------------------------------------------

def test_acks_wait_while_an_output_holds(daemon):
    """The collector's only output forwards to a TCP sink that is not there
    yet, through a 64 KiB spool that blocks when full: once the spool is
    full no record is acknowledged beyond what is in the spool, the sender
    keeps frames outstanding, and when the sink appears every frame is
    acknowledged and every record arrives there."""
    port, sink_port = free_port(), free_port()
    d = relp_collector(daemon, port, [{"path": "unused.log"}], queue=16)
    with open(d.conf) as f:
        text = f.read()
    text = re.sub(r"outputs = \(.*\);", lambda _: (
        'outputs = ( { forward = { address = "127.0.0.1:%d"; protocol = "tcp"; '
        'backoff_max = "200ms"; spool = { path = "%s"; max_size = "64K"; full = "block"; }; }; '
        'fsync = "never"; } );' % (sink_port, d.path("spool"))), text, flags=re.S)
    with open(d.conf, "w") as f:
        f.write(text)
    start_collector(d)
    n = scaled(2000, 2)
    cl = RelpClient(port).open()
    pad = b"z" * 200
    sender = threading.Thread(target=lambda: [
        cl.syslog(b"<14>Dec  3 12:00:00 heldhost held: seq %06d %s" % (i, pad)) for i in range(n)])
    sender.start()

    def out_stats():
        return next(v for k, v in d.stats().items() if k.startswith("output "))

    wait_until(lambda: "holding the records back" in d.stderr(), 60, "the spool to fill")
    # Read every rsp that has come so far, then compare with the spool.
    acked = []
    cl.s.setblocking(False)
    try:
        while True:
            b = cl.s.recv(65536)
            if not b:
                break
            cl.buf += b
    except BlockingIOError:
        pass
    cl.s.setblocking(True)
    cl.s.settimeout(deadline(120))
    end = 0
    for m in re.finditer(rb"(\d+) rsp \d+ 200 OK\n", cl.buf):
        acked.append(int(m.group(1)))
        end = m.end()
    cl.buf = cl.buf[end:]
    spooled = out_stats()["records"]
    print("held: %d frames sent, %d acknowledged, %d in the spool" % (n, len(acked), spooled))
    assert len(acked) <= spooled < n
    # The sink appears: everything drains, every frame is acknowledged.
    got = []
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", sink_port))
    srv.listen(4)

    def sink():
        srv.settimeout(deadline(120))
        c, _ = srv.accept()
        c.settimeout(deadline(120))
        while len(set(seqs_in(b"".join(got)))) < n:
            b = c.recv(65536)
            if not b:
                break
            got.append(b)
        c.close()

    st = threading.Thread(target=sink)
    st.start()
    sender.join()
    for t in range(2, n + 2):
        if t in acked:
            continue
        cl.wait_rsp(t)
    st.join()
    srv.close()
    assert set(seqs_in(b"".join(got))) == set(range(n))
    cl.close()
    d.stop()


def test_serverclose_at_shutdown(daemon):
    """SIGTERM: a connected RELP client is told serverclose (TXNR 0), the
    connection ends, and every record it had sent is in the file."""
    port = free_port()
    d = start_collector(relp_collector(daemon, port, [{"path": "out.log", "format": "raw"}]))
    cl = RelpClient(port).open()
    n = 100
    for i in range(n):
        cl.syslog(b"<14>Dec  3 12:00:00 h app: seq %06d" % i)
    cl.wait_rsp(2)
    d.stop()
    frames = []
    while True:
        f = cl.read_frame()
        if f is None:
            break
        frames.append(f)
    assert (0, b"serverclose", b"") in frames, frames[-3:]
    assert sorted(seqs_in(read_all(d.path("out.log")))) == list(range(n))
