"""The nats output against a real three-node nats-server cluster with
JetStream (PEERS.md): private store directories and ports on 127.0.0.1, a
stream with three replicas, read back with build/tests/nats_read (a small
libnats program, tests/tools/nats_read.c) that prints every message with
its subject and Nats-Msg-Id.

Every test checks exactly once: every record the clients sent is in the
stream, and no Msg-Id and no record is in it twice.  Under sanitizers the
counts are a quarter (conftest.scaled).
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import LOGRAILD, deadline, scaled, wait_until
from test_forward import certs  # noqa: F401 (a fixture: the TLS test's certificates)

NATS_SERVER = "/usr/sbin/nats-server"
NATS_READ = os.path.join(os.path.dirname(LOGRAILD), "tests", "nats_read")
HOST = "natshost"


@pytest.fixture(autouse=True)
def _tools_exist():
    if not os.access(NATS_SERVER, os.X_OK):
        pytest.fail("%s is missing: mk/deps.sh installs nats-server" % NATS_SERVER)
    if not os.access(NATS_READ, os.X_OK):
        pytest.fail("%s is missing: make builds it (mk/nats.mk)" % NATS_READ)


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    """Three nats-servers with JetStream, clustered on 127.0.0.1."""

    def __init__(self, workdir, tls=None):
        self.dir = os.path.join(workdir, "nats")
        os.makedirs(self.dir, exist_ok=True)
        ports = free_ports(6)
        self.client_ports, self.route_ports = ports[:3], ports[3:]
        self.procs = [None] * 3
        routes = ", ".join('"nats://127.0.0.1:%d"' % p for p in self.route_ports)
        self.confs = []
        for i in range(3):
            conf = os.path.join(self.dir, "n%d.conf" % (i + 1))
            text = ('server_name: n%d\nlisten: 127.0.0.1:%d\n'
                    'jetstream { store_dir: "%s" }\n'
                    'cluster { name: c1, listen: 127.0.0.1:%d, routes: [%s] }\n'
                    % (i + 1, self.client_ports[i], os.path.join(self.dir, "d%d" % (i + 1)),
                       self.route_ports[i], routes))
            if tls:
                text += 'tls { cert_file: "%s", key_file: "%s" }\n' % tls
            with open(conf, "w") as f:
                f.write(text)
            self.confs.append(conf)
        self.urls = ["%s://127.0.0.1:%d" % ("tls" if tls else "nats", p) for p in self.client_ports]

    def start(self, i=None):
        for k in ([i] if i is not None else range(3)):
            log = open(os.path.join(self.dir, "n%d.log" % (k + 1)), "ab")
            self.procs[k] = subprocess.Popen([NATS_SERVER, "-c", self.confs[k]], stdout=log,
                                             stderr=subprocess.STDOUT)
            log.close()
        return self

    def kill(self, i=None):
        for k in ([i] if i is not None else range(3)):
            p = self.procs[k]
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
            self.procs[k] = None

    def read(self, *args, check=True, timeout=120):
        urls = ",".join(u for k, u in enumerate(self.urls) if self.procs[k] is not None)
        # nats.c 3.4 keeps a JetStream context alive past jsCtx_Destroy
        # after a lone js_GetStreamInfo; LeakSanitizer would fail the tool
        # (not the daemon) for it.
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
        r = subprocess.run([NATS_READ, urls or self.urls[0]] + list(args), capture_output=True,
                           timeout=deadline(timeout), env=env)
        if check and r.returncode != 0:
            pytest.fail("nats_read %s: %s" % (" ".join(args), r.stderr.decode()))
        return r

    def create(self, stream="LOGS", subject="logs.>", replicas=3, dup_ms=120000):
        """Make the stream, retrying while the cluster elects its leaders."""
        last = []

        def made():
            r = self.read(stream, "--create", subject, str(replicas), str(dup_ms), check=False,
                          timeout=30)
            last[:] = [r.stderr.decode()]
            return r.returncode == 0

        try:
            wait_until(made, 60, "the stream to be created", interval=0.5)
        except BaseException:
            print("nats_read --create said:", last)
            raise

    def info(self, stream="LOGS"):
        out = {}
        for line in self.read(stream, "--info").stdout.decode().splitlines():
            k, _, v = line.partition(" ")
            out.setdefault(k, []).append(v)
        return {k: (v if k == "subject" else v[0]) for k, v in out.items()}

    def count(self, stream="LOGS"):
        r = self.read(stream, "--info", check=False, timeout=30)
        if r.returncode != 0:
            return -1
        return int(r.stdout.decode().split("\n")[0].split()[1])

    def messages(self, stream="LOGS"):
        """[(subject, msgid, payload dict)] in stream order.  Retried: just
        after a node was killed, making the reader's consumer can time out
        while the stream's group settles."""
        for attempt in range(5):
            r = self.read(stream, timeout=300, check=False)
            if r.returncode == 0:
                break
            time.sleep(2)
        else:
            pytest.fail("nats_read %s: %s" % (stream, r.stderr.decode()))
        out = []
        for line in r.stdout.decode().splitlines():
            subj, mid, payload = line.split("\t", 2)
            out.append((subj, mid, json.loads(payload)))
        return out


@pytest.fixture
def cluster(workdir):
    made = []

    def factory(**kw):
        c = Cluster(workdir if not made else os.path.join(workdir, "c%d" % len(made)), **kw)
        made.append(c)
        return c

    yield factory
    for c in made:
        c.kill()


def nats_daemon(daemon, c, stream="LOGS", subject="logs.%{host}.%{app}", create=None,
                spool_max="64M", full="block", tls=None, servers=None, queue=256, extra=""):
    d = daemon.new(outputs=[{"path": "unused.log"}], queue=queue)
    servers = servers or c.urls
    parts = ['servers = [%s];' % ", ".join('"%s"' % u for u in servers),
             'subject = "%s";' % subject, 'stream = "%s";' % stream,
             'backoff_max = "1s"; ack_wait = "2s";',
             'spool = { path = "%s"; max_size = "%s"; full = "%s"; };'
             % (d.path("spool"), spool_max, full)]
    if create:
        parts.append("create = { %s };" % " ".join("%s = %s;" % kv for kv in create.items()))
    if tls:
        parts.append('tls = { ca = "%s"; };' % tls)
    parts.append(extra)
    text = ['threads = 2;', 'hostname = "%s";' % HOST, 'queue = { capacity = %d; };' % queue,
            'control = { path = "%s"; };' % d.control,
            'listen = ( { path = "%s"; type = "stream"; } );' % d.path("s.sock"),
            'outputs = ( { nats = { %s }; fsync = "never"; } );' % " ".join(parts)]
    with open(d.conf, "w") as fh:
        fh.write("\n".join(text) + "\n")
    d.listen = [{"path": d.path("s.sock"), "type": "stream"}]
    return d


def record(client, i):
    return ("<14>Dec  3 08:00:00 %s app%d[77]: seq %d-%07d %s\n"
            % ("web.c%d" % client, client, client, i, "y" * 40)).encode()


def send(path, client, n, first=0):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(deadline(300))
        s.connect(path)
        batch = []
        for i in range(first, first + n):
            batch.append(record(client, i))
            if len(batch) == 64:
                s.sendall(b"".join(batch))
                batch = []
        if batch:
            s.sendall(b"".join(batch))


def send_until_refused(path, client, n):
    """send(), but a daemon killed under it only ends the client."""
    try:
        send(path, client, n)
    except OSError:
        pass


def flood(d, clients, n):
    ts = [threading.Thread(target=send_until_refused, args=(d.stream, c, n))
          for c in range(clients)]
    for t in ts:
        t.start()
    return ts


def nstats(d):
    st = d.stats()
    out = st[next(k for k in st if k.startswith("forward nats "))]
    for k in ("nats_puback_p50_seconds", "nats_puback_p99_seconds"):
        out[k] = float(out[k])
    return out


def expected(clients, n):
    return {"%d-%07d" % (c, i) for c in range(clients) for i in range(n)}


def check_exactly_once(c, want, subjects=True):
    """The stream holds each wanted record once; returns the messages."""
    msgs = c.messages()
    seqs = [m[2]["msg"].split()[1] for m in msgs]
    ids = [m[1] for m in msgs]
    assert len(set(ids)) == len(ids), "a Msg-Id is in the stream twice"
    dup = len(seqs) - len(set(seqs))
    missing = want - set(seqs)
    assert dup == 0 and not missing, "%d stored twice, %d missing (e.g. %s)" % (
        dup, len(missing), sorted(missing)[:3])
    assert len(seqs) == len(want)
    if subjects:
        for subj, _, p in msgs:
            client = int(p["msg"].split()[1].split("-")[0])
            # The host "web.cN" has a '.', which in a subject would add a token.
            assert subj == "logs.web_c%d.app%d" % (client, client), subj
            assert p["app"] == "app%d" % client and p["host"] == "web.c%d" % client, p
    return msgs


def wait_drained(d, c, total, timeout=180):
    wait_until(lambda: c.count() >= total, timeout, "%d messages in the stream" % total,
               interval=0.2)
    wait_until(lambda: nstats(d)["spool_unacked_bytes"] == 0, timeout, "the spool acknowledged",
               interval=0.2)


# ---- the plain flood ---------------------------------------------------------

def test_every_record_once_with_subject_and_payload(daemon, cluster):
    c = cluster().start()
    c.create()
    d = nats_daemon(daemon, c).start()
    n = scaled(50000)
    for t in flood(d, 4, n):
        t.join()
    wait_drained(d, c, 4 * n)
    msgs = check_exactly_once(c, expected(4, n))
    p = msgs[0][2]
    assert p["facility"] == "user" and p["severity"] == "info" and p["procid"] == "77", p
    st = nstats(d)
    assert st["records_acked"] == 4 * n and st["nats_in_flight"] == 0, st
    assert st["state"] == "connected", st
    assert 0 < st["nats_puback_p50_seconds"] <= st["nats_puback_p99_seconds"], st
    print("flood: %d records, PubAck p50 %.3f ms p99 %.3f ms, duplicates %d"
          % (4 * n, st["nats_puback_p50_seconds"] * 1e3, st["nats_puback_p99_seconds"] * 1e3,
             st["nats_duplicates"]))
    prom = subprocess.run([os.environ.get("LOGRAILCTL", os.path.join(os.path.dirname(LOGRAILD),
                                                                     "lograilctl")),
                           "-s", d.control, "stats", "--format", "prometheus"], capture_output=True)
    assert prom.returncode == 0, prom.stderr
    assert b"lograil_nats_puback_p99_seconds{output=" in prom.stdout
    assert prom.stdout.count(b"# TYPE lograil_nats_duplicates_total counter") == 1
    d.stop()


# ---- outages -------------------------------------------------------------------

def flood_until_a_quarter(daemon, cluster, n):
    """A cluster, a stream, a daemon, and 4 clients x n records under way
    until a quarter of them are in the stream."""
    c = cluster().start()
    c.create()
    d = nats_daemon(daemon, c).start()
    ts = flood(d, 4, n)
    wait_until(lambda: c.count() >= n, 120, "a quarter in the stream", interval=0.1)
    return c, d, ts


def test_stream_leader_killed_mid_flood(daemon, cluster):
    n = scaled(25000)
    c, d, ts = flood_until_a_quarter(daemon, cluster, n)
    leader = c.info()["leader"]
    assert leader in ("n1", "n2", "n3"), leader
    c.kill(int(leader[1]) - 1)
    for t in ts:
        t.join()
    wait_drained(d, c, 4 * n)
    check_exactly_once(c, expected(4, n))
    st = nstats(d)
    print("leader %s killed: ack errors %d, duplicates %d, disconnects %d"
          % (leader, st["nats_ack_errors"], st["nats_duplicates"], st["disconnects"]))
    d.stop()


def test_lograild_killed_mid_flood_and_restarted(daemon, cluster):
    n = scaled(25000)
    c, d, ts = flood_until_a_quarter(daemon, cluster, n)
    d.proc.kill()
    d.proc.wait()
    for t in ts:
        t.join()
    # What the clients got in before the kill: whatever reached the spool
    # must reach the stream, once; the clients' own sends after the kill
    # failed and are not expected.
    d.stopped = False
    d.proc = None
    d.start()
    wait_until(lambda: nstats(d)["spool_unacked_bytes"] == 0, 180, "the spool acknowledged",
               interval=0.2)
    st = nstats(d)
    msgs = c.messages()
    seqs = [m[2]["msg"].split()[1] for m in msgs]
    ids = [m[1] for m in msgs]
    assert len(set(ids)) == len(ids) and len(set(seqs)) == len(seqs), "stored twice"
    # Every client's records are there as an unbroken prefix: nothing lost
    # from the middle (a client's later records were refused by the kill).
    for cl in range(4):
        got = sorted(int(s.split("-")[1]) for s in seqs if s.startswith("%d-" % cl))
        assert got == list(range(len(got))), "client %d: a gap" % cl
    print("lograild kill: %d in the stream, resent after restart %d, of which duplicates %d"
          % (len(seqs), st["records_sent"], st["nats_duplicates"]))
    assert st["nats_duplicates"] <= st["records_sent"]
    d.stop()


def test_whole_cluster_down_10s(daemon, cluster):
    c = cluster().start()
    c.create()
    d = nats_daemon(daemon, c).start()
    n = scaled(10000)
    send(d.stream, 0, n)
    wait_drained(d, c, n)
    c.kill()
    wait_until(lambda: nstats(d)["state"] != "connected", 30, "the cluster seen away")
    send(d.stream, 1, n)
    wait_until(lambda: d.stats()["output " + nstats_name(d)]["records"] == 2 * n, 60,
               "every record spooled")
    st = nstats(d)
    assert st["spool_unacked_bytes"] > 0, st
    time.sleep(10)
    grown = nstats(d)["spool_unacked_bytes"]
    assert grown >= st["spool_unacked_bytes"]
    c.start()
    wait_drained(d, c, 2 * n)
    msgs = c.messages()
    seqs = [m[2]["msg"].split()[1] for m in msgs]
    assert sorted(seqs) == sorted(expected(2, n)) and len(seqs) == 2 * n
    print("cluster away 10 s: spool held %d bytes, reconnects %d" % (grown, nstats(d)["reconnects"]))
    d.stop()


def test_pubacks_later_than_ack_wait_resent_once(daemon, cluster):
    """The whole cluster frozen (SIGSTOP) for longer than ack_wait (2 s)
    but shorter than the pings take to drop the connection: no PubAck
    comes, nats.c sees no error, and the sender's own ack_wait must send it
    back; once the cluster runs again each record is in the stream once
    (the resends dropped by their Msg-Id)."""
    c = cluster().start()
    c.create()
    d = nats_daemon(daemon, c).start()
    n = scaled(20000)
    ts = flood(d, 2, n)
    wait_until(lambda: c.count() >= n // 4, 120, "records in the stream", interval=0.1)
    assert nstats(d)["nats_ack_errors"] == 0
    for p in c.procs:
        p.send_signal(signal.SIGSTOP)
    try:
        wait_until(lambda: nstats(d)["nats_ack_errors"] > 0, 30, "the sender's ack_wait",
                   interval=0.2)
        assert nstats(d)["last_error"].startswith("publish"), nstats(d)
    finally:
        for p in c.procs:
            p.send_signal(signal.SIGCONT)
    for t in ts:
        t.join()
    wait_drained(d, c, 2 * n)
    check_exactly_once(c, expected(2, n))
    st = nstats(d)
    print("cluster frozen past ack_wait: ack errors %d, JetStream duplicates %d, disconnects %d"
          % (st["nats_ack_errors"], st["nats_duplicates"], st["disconnects"]))
    d.stop()


def nstats_name(d):
    st = d.stats()
    return next(k for k in st if k.startswith("forward nats "))[len("forward "):]


class Notify:
    """A NOTIFY_SOCKET to read lograild's STATUS= from."""

    def __init__(self, workdir, monkeypatch):
        self.path = os.path.join(workdir, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []
        monkeypatch.setenv("NOTIFY_SOCKET", self.path)

    def status(self):
        while True:
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        got = [m for m in self.msgs if m.startswith("STATUS=")]
        return got[-1] if got else ""


def test_no_server_at_start_then_drop_oldest_counted_and_stream_created(daemon, cluster, workdir,
                                                                         monkeypatch):
    """No server reachable at start: lograild starts and spools, and
    STATUS= says the cluster is away; a 64K spool with drop_oldest drops,
    counted; once the cluster is up the stream is created (create = { ... })
    and what was kept arrives, once."""
    notify = Notify(workdir, monkeypatch)
    c = cluster()
    d = nats_daemon(daemon, c, full="drop_oldest", spool_max="64K",
                    create={"replicas": 3, "max_age": '"7d"'}).start()
    wait_until(lambda: "NATS cluster of stream LOGS away: Connection refused" in notify.status(),
               30, "STATUS= to say the cluster is away")
    n = scaled(4000, 2)
    send(d.stream, 0, n)
    wait_until(lambda: d.stats()["output " + nstats_name(d)]["records"] == n, 60,
               "every record spooled")
    st = nstats(d)
    assert st["state"] != "connected" and st["spool_dropped_records"] > 0, st
    assert "no NATS server answers" in d.stderr()
    c.start()
    wait_until(lambda: nstats(d)["spool_unacked_bytes"] == 0, 120, "the spool published",
               interval=0.2)
    st = nstats(d)
    info = c.info()
    assert info["replicas"] == "3" and info["subject"] == ["logs.*.*"], info
    seqs = [m[2]["msg"].split()[1] for m in c.messages()]
    nums = [int(s.split("-")[1]) for s in seqs]
    assert len(nums) + st["spool_dropped_records"] == n, (len(nums), st["spool_dropped_records"])
    assert nums == list(range(n - len(nums), n))
    notify.msgs.clear()
    wait_until(lambda: notify.status() and "away" not in notify.status(), 30,
               "STATUS= without the cluster away")
    d.stop()
    notify.sock.close()


# ---- bad setups ------------------------------------------------------------------

def test_no_stream_and_no_create_refused(daemon, cluster):
    c = cluster().start()
    c.create(stream="OTHER")
    d = nats_daemon(daemon, c)
    assert d.start_failing() != 0
    assert 'stream "LOGS" does not exist' in d.stderr(), d.stderr()


def test_subject_not_covered_refused(daemon, cluster):
    c = cluster().start()
    c.create(subject="metrics.>")
    d = nats_daemon(daemon, c)
    assert d.start_failing() != 0
    assert 'does not cover subject "logs.*.*"' in d.stderr(), d.stderr()


def test_short_duplicate_window_warned(daemon, cluster):
    c = cluster().start()
    c.create(dup_ms=1000)
    d = nats_daemon(daemon, c).start()
    assert "remembers Msg-Ids for 1000 ms" in d.stderr(), d.stderr()
    d.stop()


def test_wrong_tls_ca_refused(daemon, cluster, certs):
    # test_forward's certificates: good.pem (127.0.0.1) signed by ca, and
    # ca2, a CA that did not sign it.
    cd = certs
    c = cluster(tls=(os.path.join(cd, "good.pem"), os.path.join(cd, "srv.key"))).start()
    wait_until(lambda: all(_accepts(p) for p in c.client_ports), 30, "the servers listening")
    d = nats_daemon(daemon, c, tls=os.path.join(cd, "ca2.pem"))
    assert d.start_failing() != 0
    err = d.stderr()
    assert "cannot connect to the NATS servers" in err and "SSL" in err, err
    # The right CA gets through TLS to the stream check (no stream: refused
    # once JetStream answers; until then lograild starts and spools).
    d = nats_daemon(daemon, c, tls=os.path.join(cd, "ca.pem"))
    d.spawn()
    wait_until(lambda: 'stream "LOGS"' in d.stderr(), 60, "the stream checked over TLS")
    assert "cannot connect" not in d.stderr(), d.stderr()
    d.kill()


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False
