"""Forward outputs against a real collector: a private rsyslogd in the
foreground (imtcp, imrelp) on 127.0.0.1, and small Python servers for the
collectors that misbehave.

Records are sent by real clients on the daemon's Unix stream socket, each
carrying a sequence number, so that what reached the collector's file can
be checked record by record: arrived, arrived once, arrived with its host,
app, pid, message and lograil's trusted fields.  Loss and duplicates are
measured, never assumed; where TCP itself can lose (a collector killed with
data its kernel acknowledged but the process had not written), the test
says how much and checks everything else arrived.
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import deadline, scaled, wait_until

RSYSLOGD = "/usr/sbin/rsyslogd"


@pytest.fixture(autouse=True)
def _rsyslogd_exists():
    if not os.access(RSYSLOGD, os.X_OK):
        pytest.fail("%s is missing: mk/deps.sh installs rsyslog, rsyslog-relp and "
                    "rsyslog-openssl" % RSYSLOGD)

APP, PROCID = "fwdtest", "4242"
LINE_RE = re.compile(rb"^(\S+) (\S+) (\S+) (\S+|\[.*\]) seq (\d+)( x*)?$")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rsyslog:
    """A private rsyslogd in the foreground with imtcp or imrelp."""

    def __init__(self, workdir, port, kind="imtcp", address=None):
        self.dir = os.path.join(workdir, "rsyslog")
        os.makedirs(self.dir, exist_ok=True)
        self.port, self.kind = port, kind
        self.out = os.path.join(self.dir, "out.log")
        self.conf = os.path.join(self.dir, "r.conf")
        # Direct: the action writes before imrelp acknowledges (PEERS.md),
        # so that a collector killed with SIGKILL has written all it acked.
        with open(self.conf, "w") as f:
            f.write("""global(workDirectory="%(d)s")
module(load="imuxsock" SysSock.Use="off")
module(load="%(kind)s")
template(name="line" type="string"
         string="%%hostname%% %%app-name%% %%procid%% %%structured-data%% %%msg%%\\n")
ruleset(name="in" queue.type="Direct") {
  action(type="omfile" file="%(out)s" template="line")
}
input(type="%(kind)s" port="%(port)d" ruleset="in"%(addr)s)
""" % {"d": self.dir, "kind": kind, "out": self.out, "port": port,
       "addr": ' address="%s"' % address if address else ""})
        self.address = address or "127.0.0.1"
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", self.conf, "-i",
                                      os.path.join(self.dir, "pid")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "stderr"), "ab"))

        def listening():
            if self.proc.poll() is not None:
                pytest.fail("rsyslogd exited with %s" % self.proc.returncode)
            fam = socket.AF_INET6 if ":" in self.address else socket.AF_INET
            with socket.socket(fam) as s:
                return s.connect_ex((self.address, self.port)) == 0

        wait_until(listening, 30, "rsyslogd to listen on %d" % self.port, interval=0.1)
        return self

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def lines(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out, "rb") as f:
            data = f.read()
        return data[: data.rfind(b"\n")].split(b"\n") if b"\n" in data else []

    def seqs(self):
        """The sequence numbers that arrived, in order (with repeats)."""
        return [int(m.group(5)) for m in map(LINE_RE.match, self.lines()) if m]

    def wait_seqs(self, want, timeout=60, dups_ok=True):
        """Wait until every sequence number in `want` arrived."""
        want = set(want)

        def done():
            return want <= set(self.seqs())

        wait_until(done, timeout, "%d records at the collector (have %d)"
                   % (len(want), len(want & set(self.seqs()))), interval=0.1)
        return self.seqs()


@pytest.fixture
def collectors(workdir):
    made = []

    def factory(port, kind="imtcp", address=None):
        r = Rsyslog(workdir if not made else os.path.join(workdir, "c%d" % len(made)), port, kind,
                    address)
        made.append(r)
        return r

    yield factory
    for r in made:
        r.kill()


def fwd_daemon(daemon, forwards, queue=256, files=True):
    """A daemon with a raw file output (unless files=False) and one forward
    output per dict in forwards: address, protocol, spool options."""
    d = daemon.new(outputs=[{"path": "local.log", "format": "raw"}], queue=queue)
    outs = []
    if files:
        outs.append('{ path = "%s"; format = "raw"; fsync = "never"; }' % d.path("local.log"))
    for i, f in enumerate(forwards):
        spool = dict(path=d.path(f.get("spool", "spool%d" % i)), max_size=f.get("max_size", "64M"),
                     full=f.get("full", "block"))
        outs.append('{ forward = { address = "%s"; protocol = "%s"; backoff_max = "%s"; '
                    'spool = { path = "%s"; max_size = "%s"; full = "%s"; }; }; fsync = "never"; }'
                    % (f["address"], f.get("protocol", "tcp"), f.get("backoff_max", "1s"),
                       spool["path"], spool["max_size"], spool["full"]))
    text = ['threads = 2;', 'hostname = "fwdhost";', 'queue = { capacity = %d; };' % queue,
            'control = { path = "%s"; };' % d.control,
            'listen = ( { path = "%s"; type = "stream"; } );' % d.path("s.sock"),
            'outputs = (\n  ' + ",\n  ".join(outs) + '\n);']
    with open(d.conf, "w") as fh:
        fh.write("\n".join(text) + "\n")
    d.listen = [{"path": d.path("s.sock"), "type": "stream"}]
    return d


def record(i, pad=40):
    ts = time.strftime("%b %e %H:%M:%S")
    return ("<14>%s %s[%s]: seq %06d %s\n" % (ts, APP, PROCID, i, "x" * pad)).encode()


def send(path, first, n, sock_timeout=120):
    """One connection sends records first .. first+n-1 (batched writes)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(deadline(sock_timeout))
        s.connect(path)
        batch = []
        for i in range(first, first + n):
            batch.append(record(i))
            if len(batch) == 64:
                s.sendall(b"".join(batch))
                batch = []
        if batch:
            s.sendall(b"".join(batch))


def fwd_key(keys, index):
    """The "forward NAME" section of the index-th forward output: the one
    whose spool is spoolINDEX (fwd_daemon's default), or the only one."""
    keys = [k for k in keys if k.startswith("forward ")]
    if len(keys) == 1:
        return keys[0]
    return next(k for k in keys if k.endswith("/spool%d)" % index))


def fwd_stats(d, index=0):
    st = d.stats()
    return st[fwd_key(st, index)]


def count_dups(seqs):
    seen, dups = set(), 0
    for s in seqs:
        if s in seen:
            dups += 1
        seen.add(s)
    return dups


# ---- tcp -------------------------------------------------------------------

def test_tcp_every_record_arrives_with_its_fields(daemon, collectors):
    port = free_port()
    r = collectors(port).start()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port}]).start()
    n = scaled(3000)
    send(d.stream, 0, n)
    # logger as a second, real client.
    subprocess.run(["logger", "-u", d.stream, "-t", "viaLogger", "--id=777", "hello logger"],
                   check=True)
    seqs = r.wait_seqs(range(n))
    assert sorted(seqs) == list(range(n)), "lost or repeated records"
    wait_until(lambda: any(b"hello logger" in l for l in r.lines()), 30, "logger's record")
    me = str(os.getpid()).encode()
    for line in r.lines():
        if b"hello logger" in line:
            host, app, procid, sd = line.split(b" ")[:4]
            assert (host, app, procid) == (b"fwdhost", b"viaLogger", b"777"), line
            continue
        m = LINE_RE.match(line)
        assert m, line
        assert m.group(1) == b"fwdhost" and m.group(2) == APP.encode() and \
            m.group(3) == PROCID.encode(), line
        # The trusted fields: the sender's pid and uid as the kernel says.
        assert b'[lograil@32473 pid="%s" uid="%d"' % (me, os.getuid()) in m.group(4), line
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] == 0, 30, "everything acknowledged")
    st = fwd_stats(d)
    assert st["state"] == "connected" and st["records_acked"] == n + 1, st
    assert len(d.wait_lines(n + 1, "local.log")) == n + 1  # the file output too
    d.stop()


def test_tcp_collector_down_at_start_then_up(daemon, collectors):
    port = free_port()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port}]).start()
    n = scaled(2000)
    send(d.stream, 0, n)
    wait_until(lambda: fwd_stats(d)["connect_failures"] >= 1, 30, "a refused connection")
    st = fwd_stats(d)
    assert st["state"] != "connected" and "refused" in st["last_error"], st
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] > 0, 30, "the records spooled")
    r = collectors(port).start()
    seqs = r.wait_seqs(range(n), timeout=60)
    # Nothing was ever in flight: exactly once.
    assert seqs == list(range(n))
    wait_until(lambda: fwd_stats(d)["state"] == "connected", 30, "connected")
    assert fwd_stats(d)["reconnects"] >= 1
    d.stop()


def test_tcp_ipv6_and_names_tried_in_order(daemon, collectors):
    """[::1]:port reaches a collector that listens on ::1 only; a name is
    resolved at connect time and its addresses tried in order: with a
    collector on 127.0.0.1 only, "localhost" works whichever comes first,
    and a refused ::1 before it is counted."""
    p6, p4 = free_port(), free_port()
    r6 = collectors(p6, address="::1").start()
    r4 = collectors(p4, address="127.0.0.1").start()
    d = fwd_daemon(daemon, [{"address": "[::1]:%d" % p6}, {"address": "localhost:%d" % p4}]).start()
    n = scaled(500)
    send(d.stream, 0, n)
    assert r6.wait_seqs(range(n)) == list(range(n))
    assert r4.wait_seqs(range(n)) == list(range(n))
    order = [a[0] for a in socket.getaddrinfo("localhost", p4, 0, socket.SOCK_STREAM)]
    st = fwd_stats(d, 1)
    if order and order[0] == socket.AF_INET6:
        assert st["connect_failures"] >= 1, st  # ::1 refused, then 127.0.0.1
    d.stop()


def test_tcp_collector_killed_mid_flood(daemon, collectors):
    """SIGKILL the collector mid-flood, start it 5 s later.  TCP can lose
    what the collector's kernel acknowledged but rsyslogd had not written;
    everything else arrives.  The figures are printed (pytest -s)."""
    port = free_port()
    r = collectors(port).start()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port}]).start()
    n = scaled(40000)
    # The first half is sent while the collector runs, the second half while
    # it is dead: under a sanitizer the first half alone may arrive whole
    # before the kill, and the outage must still find records to hold.
    t = threading.Thread(target=send, args=(d.stream, 0, n // 2))
    t.start()
    wait_until(lambda: len(r.lines()) >= n // 4, 60, "a quarter at the collector", interval=0.05)
    r.kill()
    killed_at = len(r.seqs())
    t.join()
    send(d.stream, n // 2, n - n // 2)
    time.sleep(5)
    r.start()
    # Every record sent after the collector came back, and every one the
    # spool held unacknowledged, arrives; count what TCP lost.
    def settled():
        s = fwd_stats(d)
        return s["spool_unacked_bytes"] == 0 and s["state"] == "connected"

    # The client is done; once the writer has spooled its last record and
    # the collector's TCP acknowledged everything, nothing more will come.
    wait_until(lambda: d.stats()["output " + fwd_name(d)]["records"] >= n, 120,
               "every record spooled", interval=0.1)
    wait_until(settled, 120, "the spool acknowledged", interval=0.1)
    seqs = r.seqs()
    lost = sorted(set(range(n)) - set(seqs))
    dups = count_dups(seqs)
    print("tcp kill: %d records, %d at the collector when killed, lost %d, duplicates %d"
          % (n, killed_at, len(lost), dups))
    # What TCP can lose is what the collector's kernel acknowledged before
    # it died: records before the first one the new collector got (lograild
    # resends from its cursor, which only passed acknowledged bytes).  From
    # there on, everything arrives.
    assert len(seqs) > killed_at, "nothing arrived after the restart"
    first_after = seqs[killed_at]
    assert all(x < first_after for x in lost), (first_after, lost[:20])
    assert set(range(first_after, n)) <= set(seqs)
    d.stop()


def test_lograild_killed_mid_forwarding(daemon, collectors):
    """SIGKILL lograild while it forwards, start it again on the same spool:
    every record that was in the spool arrives, and the duplicates are at
    most what the cursor had not yet passed."""
    port = free_port()
    r = collectors(port).start()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "spool": "sp"}]).start()
    n = scaled(40000)
    t = threading.Thread(target=lambda: _send_quiet(d.stream, 0, n))
    t.start()
    wait_until(lambda: len(r.lines()) >= n // 4, 60, "a quarter at the collector", interval=0.05)
    d.proc.kill()
    d.proc.wait()
    t.join()
    spooled, after_cursor = spool_contents(d.path("sp"))
    assert spooled, "nothing in the spool"
    d.stopped = False
    d.proc = None
    d.start()
    r.wait_seqs(spooled, timeout=120)
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] == 0, 60, "the spool acknowledged")
    seqs = r.seqs()
    dups = count_dups(seqs)
    print("lograild kill: %d in the spool, %d past its cursor, duplicates %d"
          % (len(spooled), len(after_cursor), dups))
    assert set(spooled) <= set(seqs)
    assert dups <= len(after_cursor)
    d.stop()


def _send_quiet(path, first, n):
    try:
        send(path, first, n)
    except OSError:
        pass  # the daemon was killed under the client


def spool_contents(path):
    """(every sequence number in the spool's segments, those past its
    cursor), read straight from the files."""
    pos = 0
    try:
        with open(os.path.join(path, "cursor")) as f:
            pos = int(f.read().split()[2])
    except (OSError, IndexError, ValueError):
        pass
    every, after = [], []
    for name in sorted(os.listdir(path)):
        if not name.endswith(".seg"):
            continue
        base = int(name[:20])
        with open(os.path.join(path, name), "rb") as f:
            data = f.read()
        off = 0
        while off < len(data):
            sp = data.find(b" ", off)
            if sp < 0:
                break
            ln = int(data[off:sp])
            body = data[sp + 1: sp + 1 + ln]
            if len(body) < ln:
                break
            m = re.search(rb" seq (\d+)", body)
            if m:
                every.append(int(m.group(1)))
                if base + off >= pos:
                    after.append(int(m.group(1)))
            off = sp + 1 + ln
    return every, after


# ---- spool limits -----------------------------------------------------------

def test_spool_full_block_holds_clients(daemon, collectors):
    port = free_port()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "max_size": "64K"}],
                   queue=16).start()
    # A non-blocking client: once the spool is full, the writer holds, the
    # queue fills, and the daemon stops reading: the client's send fails
    # with EAGAIN instead of records being dropped.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(d.stream)
    s.setblocking(False)
    sent, pending = 0, b""
    blocked = False
    end = time.monotonic() + deadline(60)
    while time.monotonic() < end:
        if not pending:
            pending = record(sent)
        try:
            k = s.send(pending)
        except BlockingIOError:
            if fwd_stats(d)["spool_full"] >= 1:
                blocked = True
                break
            time.sleep(0.01)
            continue
        pending = pending[k:]
        if not pending:
            sent += 1
    assert blocked, "the client was never held back"
    st = fwd_stats(d)
    assert st["spool_dropped_records"] == 0 and st["spool_bytes"] <= 65536, st
    # The collector comes: the held records go, and the client with them.
    r = collectors(port).start()
    s.setblocking(True)
    s.settimeout(deadline(60))
    s.sendall(pending)
    sent += 1
    s.close()
    seqs = r.wait_seqs(range(sent), timeout=120)
    assert seqs == list(range(sent)), "held records lost or repeated"
    d.stop()


def test_spool_full_drop_oldest_counts_exactly(daemon, collectors):
    port = free_port()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "max_size": "64K",
                             "full": "drop_oldest"}]).start()
    n = scaled(6000, 2)
    send(d.stream, 0, n)
    wait_until(lambda: d.stats()["output " + fwd_name(d)]["records"] == n, 60,
               "every record spooled")
    st = fwd_stats(d)
    dropped = st["spool_dropped_records"]
    assert dropped > 0 and st["spool_bytes"] <= 65536, st
    r = collectors(port).start()
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] == 0, 60, "the spool sent")
    seqs = r.seqs()
    # The newest survive, in order, once each; with the drops counted,
    # every record is accounted for exactly.
    assert len(seqs) + dropped == n, (len(seqs), dropped, n)
    assert seqs == list(range(n - len(seqs), n))
    d.stop()


def fwd_name(d, index=0):
    return fwd_key(d.stats(), index)[len("forward "):]


# ---- collectors that misbehave ------------------------------------------------

class Listener:
    """A TCP listener on 127.0.0.1 whose thread hands every connection it
    accepts to self.serve(conn)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.conns = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        self.sock.settimeout(0.1)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.serve(c)

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()
        for c in self.conns:
            c.close()


class BadServer(Listener):
    """Accepts, sends `reply`, and then either never reads or closes at
    once."""

    def __init__(self, mode, reply=b""):
        self.mode, self.reply = mode, reply
        super().__init__()

    def serve(self, c):
        if self.reply:
            try:
                c.sendall(self.reply)
            except OSError:
                pass
        if self.mode == "close":
            c.close()
        else:
            self.conns.append(c)  # held open, never read


def test_bad_collectors_do_not_stop_other_outputs(daemon):
    mute, rude = BadServer("mute"), BadServer("close")
    try:
        d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % mute.port},
                                {"address": "127.0.0.1:%d" % rude.port}]).start()
        n = scaled(5000)
        send(d.stream, 0, n)
        # The file output has everything, whatever the collectors do.
        lines = d.wait_lines(n, "local.log")
        assert len(lines) == n
        wait_until(lambda: rude.accepted >= 2, 30, "the closing collector to be retried")
        m, c = fwd_stats(d, 0), fwd_stats(d, 1)
        assert m["state"] == "connected", m
        assert c["disconnects"] >= 1 and c["records_acked"] <= n, c
        # Stopping is bounded although neither collector takes the spool.
        d.stop(timeout=60)
    finally:
        mute.close()
        rude.close()


# ---- relp --------------------------------------------------------------------

def test_relp_every_record_and_kill_loses_nothing(daemon, collectors):
    port = free_port()
    r = collectors(port, "imrelp").start()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "protocol": "relp"}]).start()
    n = scaled(20000)
    # As in the tcp test: the second half goes out while the collector is dead.
    t = threading.Thread(target=send, args=(d.stream, 0, n // 2))
    t.start()
    wait_until(lambda: len(r.lines()) >= n // 4, 60, "a quarter at the collector", interval=0.05)
    r.kill()
    t.join()
    send(d.stream, n // 2, n - n // 2)
    time.sleep(5)
    r.start()
    seqs = r.wait_seqs(range(n), timeout=120)
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] == 0, 60, "every rsp 200")
    dups = count_dups(seqs)
    print("relp kill: %d records, lost 0, duplicates %d" % (n, dups))
    assert set(seqs) == set(range(n))  # nothing lost
    st = fwd_stats(d)
    assert st["reconnects"] >= 1 and st["records_acked"] >= n, st
    for line in r.lines()[:10]:
        m = LINE_RE.match(line)
        assert m and m.group(1) == b"fwdhost" and m.group(2) == APP.encode(), line
    d.stop()


def test_relp_garbage_server_then_real_collector(daemon, collectors):
    bad = BadServer("close", reply=b"1 rsp 6 200 OK\ngarbage that is not relp\n")
    port = bad.port
    try:
        d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "protocol": "relp"}]).start()
        n = scaled(2000)
        send(d.stream, 0, n)
        wait_until(lambda: d.stats()["output " + fwd_name(d)]["records"] == n, 60,
                   "every record spooled")
        wait_until(lambda: fwd_stats(d)["protocol_errors"] + fwd_stats(d)["disconnects"] >= 2,
                   30, "the garbage answers refused")
        st = fwd_stats(d)
        assert st["records_acked"] == 0 and st["spool_unacked_bytes"] > 0, st
    finally:
        bad.close()
    r = collectors(port, "imrelp").start()
    seqs = r.wait_seqs(range(n), timeout=120)
    assert set(seqs) == set(range(n))
    d.stop()


# ---- tls ---------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certs(workdir):
    """ca.pem/ca.key (the CA lograild trusts), ca2 (another), and server
    certificates: good.pem (localhost, 127.0.0.1 by ca), other.pem (signed
    by ca2), wrongname.pem (otherhost, by ca), expired.pem (by ca, already
    past its notAfter)."""
    d = os.path.join(workdir, "certs")
    os.makedirs(d)
    for ca in ("ca", "ca2"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                "/CN=test-" + ca, "-keyout", ca + ".key", "-out", ca + ".pem", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout",
            "srv.key", "-out", "srv.csr", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    with open(os.path.join(d, "other.cnf"), "w") as f:
        f.write("subjectAltName=DNS:otherhost\n")
    for name, ca, ext, days in (("good", "ca", "ext.cnf", "2"), ("other", "ca2", "ext.cnf", "2"),
                                ("wrongname", "ca", "other.cnf", "2"),
                                ("expired", "ca", "ext.cnf", "0")):
        openssl("x509", "-req", "-in", "srv.csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-CAcreateserial", "-days", days, "-extfile", ext, "-out", name + ".pem", cwd=d)
    # A client certificate for collectors that check clients.
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=lograil-client", "-keyout",
            "client.key", "-out", "client.csr", cwd=d)
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", "client.pem", cwd=d)
    time.sleep(1.5)  # -days 0: notAfter is now; past it from the next second
    return d


class TlsRecorder(Listener):
    """A TLS server (Python's ssl on memory BIOs) with the given
    certificate, recording every raw byte it receives."""

    def __init__(self, cert, key):
        import ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.raw = b""
        self.handshakes_failed = 0
        super().__init__()

    def serve(self, c):
        import ssl
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ctx.wrap_bio(inc, out, server_side=True)
        c.settimeout(5)
        try:
            while not self.stop:
                data = c.recv(65536)
                if not data:
                    break
                self.raw += data
                inc.write(data)
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLError:
                    self.handshakes_failed += 1
                    c.sendall(out.read())
                    break
                c.sendall(out.read())
        except OSError:
            pass
        c.close()


def rsyslog_tls(r, certs, auth="anon"):
    """Turn an Rsyslog's configuration into imtcp over the ossl driver;
    auth "x509/name" requires a client certificate named lograil-client."""
    with open(r.conf) as f:
        text = f.read()
    text = text.replace('global(workDirectory="%s")' % r.dir,
                        'global(workDirectory="%s" DefaultNetstreamDriver="ossl" '
                        'DefaultNetstreamDriverCAFile="%s/ca.pem" '
                        'DefaultNetstreamDriverCertFile="%s/good.pem" '
                        'DefaultNetstreamDriverKeyFile="%s/srv.key")'
                        % (r.dir, certs, certs, certs))
    text = text.replace('module(load="imtcp")',
                        'module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" '
                        'StreamDriver.AuthMode="%s"%s)'
                        % (auth, ' PermittedPeer=["lograil-client"]' if auth != "anon" else ""))
    with open(r.conf, "w") as f:
        f.write(text)
    return r


def tls_daemon(daemon, port, certs, ca="ca.pem", client=False):
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "protocol": "tls"}])
    with open(d.conf) as f:
        text = f.read()
    mine = ' cert = "%s/client.pem"; key = "%s/client.key";' % (certs, certs) if client else ""
    text = text.replace('protocol = "tls";', 'protocol = "tls"; tls = { ca = "%s/%s";%s };'
                        % (certs, ca, mine))
    with open(d.conf, "w") as f:
        f.write(text)
    return d.start()


def test_tls_to_rsyslog_ossl(daemon, collectors, certs):
    port = free_port()
    r = rsyslog_tls(collectors(port), certs).start()
    d = tls_daemon(daemon, port, certs)
    n = scaled(3000)
    send(d.stream, 0, n)
    seqs = r.wait_seqs(range(n), timeout=60)
    assert seqs == list(range(n))
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] == 0, 30, "everything acknowledged")
    st = fwd_stats(d)
    assert st["tls_verify_failures"] == 0 and st["records_acked"] == n, st
    assert "TLSv1." in d.stderr()
    d.stop()


def test_tls_client_certificate_to_rsyslog_x509(daemon, collectors, certs):
    """A collector that checks clients (x509/name): lograild's tls.cert and
    tls.key are presented and accepted."""
    port = free_port()
    r = rsyslog_tls(collectors(port), certs, auth="x509/name").start()
    d = tls_daemon(daemon, port, certs, client=True)
    n = scaled(1000)
    send(d.stream, 0, n)
    assert r.wait_seqs(range(n), timeout=60) == list(range(n))
    d.stop()


@pytest.mark.parametrize("cert,ca,reason", [
    ("other.pem", "ca.pem", "not signed by the ca"),
    ("wrongname.pem", "ca.pem", "name mismatch"),
    ("expired.pem", "ca.pem", "expired"),
])
def test_tls_refused_never_plain_text(daemon, certs, cert, ca, reason):
    srv = TlsRecorder(os.path.join(certs, cert), os.path.join(certs, "srv.key"))
    try:
        d = tls_daemon(daemon, srv.port, certs, ca=ca)
        n = 200
        send(d.stream, 0, n)
        wait_until(lambda: fwd_stats(d)["tls_verify_failures"] >= 2, 30,
                   "the certificate refused twice")
        st = fwd_stats(d)
        assert reason in st["last_error"], st
        assert st["records_acked"] == 0 and st["state"] != "connected", st
        assert "refused" in d.stderr()
        # Not one byte of a record went out: only handshake bytes.
        assert srv.raw, "nothing reached the server"
        assert b"seq " not in srv.raw and APP.encode() not in srv.raw
        assert srv.handshakes_failed >= 1
        d.stop()
    finally:
        srv.close()


# ---- statistics ----------------------------------------------------------------

PROM_LINE = re.compile(r'^[a-z_]+(\{[a-z]+="(?:[^"\\]|\\.)*"\})? -?[0-9.e+]+$')


def test_forward_stats_prometheus(daemon, collectors):
    """Two forward outputs: every family has one HELP and one TYPE, and the
    samples say what the text form says."""
    port = free_port()
    r = collectors(port).start()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port},
                            {"address": "127.0.0.1:%d" % free_port()}]).start()
    n = 100
    send(d.stream, 0, n)
    r.wait_seqs(range(n))
    wait_until(lambda: fwd_stats(d, 0)["records_acked"] == n, 30, "records acknowledged")
    text = subprocess.run([os.environ.get("LOGRAILCTL", "build/lograilctl"), "-s", d.control,
                           "stats", "--format", "prometheus"], check=True,
                          capture_output=True).stdout
    helps, types, samples = [], [], {}
    for line in text.decode().splitlines():
        if line.startswith("# HELP "):
            helps.append(line.split()[2])
        elif line.startswith("# TYPE "):
            types.append(line.split()[2])
        else:
            assert PROM_LINE.match(line), line
            samples[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    assert len(helps) == len(set(helps)) and sorted(helps) == sorted(types)
    up, down = fwd_name(d, 0), fwd_name(d, 1)
    assert samples['lograil_forward_records_acked_total{forward="%s"}' % up] == n
    assert samples['lograil_forward_connected{forward="%s"}' % up] == 1
    assert samples['lograil_forward_connected{forward="%s"}' % down] == 0
    assert samples['lograil_forward_spool_unacked_bytes{forward="%s"}' % down] > 0
    assert samples['lograil_forward_connect_failures_total{forward="%s"}' % down] >= 1
    d.stop()


# ---- privileges -------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_forward_as_unprivileged_user(daemon, collectors):
    """Started as root with user = "nobody": the spool is given to nobody, so
    the sender can make new segments and save its cursor after the drop."""
    port = free_port()
    r = collectors(port).start()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "max_size": "64K"}],
                   files=False)
    os.chmod(d.dir, 0o777)
    with open(d.conf) as f:
        text = f.read()
    with open(d.conf, "w") as f:
        f.write('user = "nobody";\n' + text)
    d.start()
    n = scaled(2000)  # 64K spool: several segments made and deleted as nobody
    send(d.stream, 0, n)
    assert r.wait_seqs(range(n)) == list(range(n))
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] == 0, 30, "everything acknowledged")
    d.stop()
    assert "Permission denied" not in d.stderr(), d.stderr()
    spool = d.path("spool0")
    assert os.stat(spool).st_uid == 65534
    with open(os.path.join(spool, "cursor")) as f:
        assert int(f.read().split()[2]) > 0


# ---- a full disk under the spool ----------------------------------------------------

def test_disk_full_under_spool_holds_then_recovers(daemon, collectors, small_fs):
    """ENOSPC under the spool is a full disk like any other: the writer
    holds (clients wait), and once there is room again and the collector
    is back, every record arrives once, in order."""
    port = free_port()
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port,
                             "spool": os.path.join(small_fs, "spool")}], queue=16, files=False)
    d.start()
    filler = os.path.join(small_fs, "filler")
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    n = 10000  # ~ 1 MB from the client: far more than the socket buffers and the queue hold
    t = threading.Thread(target=send, args=(d.stream, 0, n, 300), daemon=True)
    t.start()
    wait_until(lambda: "cannot append to the spool" in d.stderr(), 60, "the spool's ENOSPC reported")
    assert "No space left on device" in d.stderr(), d.stderr()
    assert t.is_alive(), "the client finished although the spool could take nothing"
    os.unlink(filler)
    r = collectors(port).start()
    t.join(deadline(120))
    assert not t.is_alive(), "the client is still held back after space came back"
    assert r.wait_seqs(range(n), timeout=120) == list(range(n))
    d.stop()


def test_status_names_a_collector_that_is_away(daemon, collectors, workdir, monkeypatch):
    """systemd's STATUS= says which collector is away and why, and stops
    saying it once the collector is back."""
    path = os.path.join(workdir, "notify.sock")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(path)
    n.settimeout(0.2)
    msgs = []

    def status():
        while True:
            try:
                msgs.append(n.recv(4096).decode())
            except socket.timeout:
                break
        got = [m for m in msgs if m.startswith("STATUS=")]
        return got[-1] if got else ""

    monkeypatch.setenv("NOTIFY_SOCKET", path)
    try:
        port = free_port()
        d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port}]).start()
        want = "collector 127.0.0.1:%d away: Connection refused" % port
        wait_until(lambda: want in status(), 30, "STATUS= to name the collector")
        collectors(port).start()
        wait_until(lambda: fwd_stats(d)["state"] == "connected", 30, "connected")
        msgs.clear()
        wait_until(lambda: status() and "away" not in status(), 30, "STATUS= without it")
        d.stop()
    finally:
        n.close()


# ---- relp over tls --------------------------------------------------------------------

def relp_tls_daemon(daemon, port, certs, ca="ca.pem"):
    d = fwd_daemon(daemon, [{"address": "127.0.0.1:%d" % port, "protocol": "relp"}])
    with open(d.conf) as f:
        text = f.read()
    text = text.replace('protocol = "relp";', 'protocol = "relp"; tls = { ca = "%s/%s"; };'
                        % (certs, ca))
    with open(d.conf, "w") as f:
        f.write(text)
    return d.start()


def test_relp_over_tls_to_rsyslog(daemon, collectors, certs):
    port = free_port()
    r = collectors(port, "imrelp")
    with open(r.conf) as f:
        text = f.read()
    text = text.replace('module(load="imrelp")', 'module(load="imrelp" tls.tlslib="openssl")')
    text = text.replace('input(type="imrelp" port="%d" ruleset="in"' % port,
                        'input(type="imrelp" port="%d" ruleset="in" tls="on" '
                        'tls.cacert="%s/ca.pem" tls.mycert="%s/good.pem" tls.myprivkey="%s/srv.key"'
                        % (port, certs, certs, certs))
    with open(r.conf, "w") as f:
        f.write(text)
    r.start()
    d = relp_tls_daemon(daemon, port, certs)
    n = scaled(3000)
    send(d.stream, 0, n)
    assert r.wait_seqs(range(n), timeout=60) == list(range(n))
    wait_until(lambda: fwd_stats(d)["spool_unacked_bytes"] == 0, 30, "every rsp 200")
    st = fwd_stats(d)
    assert st["records_acked"] == n and st["tls_verify_failures"] == 0, st
    assert "TLSv1." in d.stderr()
    d.stop()


def test_relp_over_tls_wrong_ca_never_plain_text(daemon, certs):
    srv = TlsRecorder(os.path.join(certs, "other.pem"), os.path.join(certs, "srv.key"))
    try:
        d = relp_tls_daemon(daemon, srv.port, certs)
        send(d.stream, 0, 100)
        wait_until(lambda: fwd_stats(d)["tls_verify_failures"] >= 2, 30, "the CA refused twice")
        assert "not signed by the ca" in fwd_stats(d)["last_error"]
        # Neither the RELP open nor a record went out in the clear.
        assert srv.raw and b"relp_version" not in srv.raw and b"seq " not in srv.raw
        d.stop()
    finally:
        srv.close()
