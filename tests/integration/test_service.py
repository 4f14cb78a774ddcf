"""Running as a service: command line, control socket and lograilctl,
statistics (text, Prometheus, SIGUSR1), sd_notify, socket activation
without systemd (systemd-socket-activate), dropping privileges."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import (LOGRAILD, REPO, deadline, dgram_send, stream_send, wait_until)

LOGRAILCTL = os.environ.get("LOGRAILCTL") or os.path.join(os.path.dirname(LOGRAILD), "lograilctl")
HDR = b"<13>Nov 26 11:03:56 "


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=deadline(60), **kw)


def ctl(d, *args):
    return run(LOGRAILCTL, "-s", d.control, *args)


# ---- command line -----------------------------------------------------------

def test_help_version_and_usage_errors():
    r = run(LOGRAILD, "--help")
    assert r.returncode == 0 and "--check-config" in r.stdout and "Exit codes" in r.stdout
    r = run(LOGRAILD, "--version")
    assert r.returncode == 0 and re.match(r"lograild \d+\.\d+\.\d+\n", r.stdout)
    r = run(LOGRAILD, "--bogus")
    assert r.returncode == 2 and "Usage" in r.stderr
    r = run(LOGRAILD, "extra-argument")
    assert r.returncode == 2 and "unexpected argument" in r.stderr
    r = run(LOGRAILD, "--help-config")
    assert r.returncode == 0
    for name in ("threads", "capacity", "max_message", "policy", "rotate", "max_size",
                 "compress", "fsync", "stop_timeout", "control"):
        assert name in r.stdout, name


def test_check_config(workdir):
    good = os.path.join(REPO, "conf", "lograild.conf")
    r = run(LOGRAILD, "--check-config", "-c", good)
    assert r.returncode == 0 and "configuration is valid" in r.stdout
    bad = os.path.join(workdir, "bad.conf")
    with open(bad, "w") as f:
        f.write("threads = 2;\nlisten = ( { path = \"%s/x.sock\"; mode = \"rw\"; } );\n" % workdir)
    r = run(LOGRAILD, "--check-config", "-c", bad)
    assert r.returncode == 1
    assert r.stderr.strip() == ("lograild: %s:2: listen[0].mode: \"rw\" is not an octal mode "
                                "string such as \"0640\"" % bad)
    # Checking touches nothing: no socket file appeared.
    assert not os.path.exists(os.path.join(workdir, "x.sock"))
    # A broken file also stops a real start, with the same message.
    r = run(LOGRAILD, "-c", bad)
    assert r.returncode == 1 and "listen[0].mode" in r.stderr


def test_start_failure_exit_code(daemon, workdir):
    """An output that cannot be opened: exit code 3, and the message names it."""
    blocker = os.path.join(workdir, "notadir")
    open(blocker, "w").close()
    d = daemon.new(outputs=[{"path": "notadir/out.log"}])
    rc = d.start_failing()
    assert rc == 3
    assert "notadir/out.log" in d.stderr()


# ---- control socket ---------------------------------------------------------

def test_lograilctl_ping_stats_and_errors(daemon):
    d = daemon()
    r = ctl(d, "ping")
    assert r.returncode == 0 and r.stdout == "pong\n"
    for i in range(5):
        stream_send(d.stream, HDR + b"app: stream %d\n" % i)
    dgram_send(d.dgram, HDR + b"app: dgram")
    d.wait_lines(6)
    r = ctl(d, "stats")
    assert r.returncode == 0
    text = r.stdout
    for section in ("# process", "# queue", "# listener " + d.stream, "# listener " + d.dgram,
                    "# output " + d.path("out.json")):
        assert section in text, section
    st = d.stats()
    assert st["listener " + d.stream]["records"] == 5
    assert st["listener " + d.stream]["connections"] >= 5
    assert st["listener " + d.dgram]["records"] == 1
    assert st["output " + d.path("out.json")]["records"] == 6
    assert st["queue"]["capacity"] == 64
    assert st["process"]["rss_bytes"] > 0
    for k in ("parse_errors", "truncated", "dropped", "paused_seconds", "bytes"):
        assert k in st["listener " + d.stream]
    for k in ("bytes", "rotations", "write_errors", "last_error"):
        assert k in st["output " + d.path("out.json")]
    for k in ("depth", "high_water", "senders_waiting"):
        assert k in st["queue"]
    r = ctl(d, "bogus")
    assert r.returncode == 2  # refused by lograilctl itself
    # The daemon's own answer to an unknown command.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(d.control)
        s.sendall(b"frobnicate\n")
        assert s.recv(4096).startswith(b"error: unknown command \"frobnicate\"")
    d.stop()
    r = ctl(d, "ping")
    assert r.returncode == 3 and "cannot connect" in r.stderr


PROM_LINE = re.compile(r'^[a-z_]+(\{[a-z]+="(?:[^"\\]|\\.)*"\})? -?[0-9.e+]+$')


def test_stats_prometheus(daemon):
    d = daemon()
    stream_send(d.stream, HDR + b"app: one\n")
    d.wait_lines(1)
    r = ctl(d, "stats", "--format", "prometheus")
    assert r.returncode == 0
    helped, typed = set(), set()
    samples = {}
    for line in r.stdout.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge")
            if kind == "counter":
                assert name.endswith("_total"), name
            typed.add(name)
        else:
            assert PROM_LINE.match(line), line
            samples[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
    assert helped == typed
    for name in {k.split("{")[0] for k in samples}:
        assert name in typed, name
    assert samples['lograil_listener_records_total{listener="%s"}' % d.stream] == 1
    assert samples['lograil_output_records_total{output="%s"}' % d.path("out.json")] == 1
    assert samples["lograil_queue_capacity"] == 64
    d.stop()


def test_sigusr1_prints_stats(daemon):
    d = daemon()
    stream_send(d.stream, HDR + b"app: one\n")
    d.wait_lines(1)
    d.send_signal(signal.SIGUSR1)
    wait_until(lambda: "stats: # queue" in d.stderr(), 10, "stats on stderr")
    err = d.stderr()
    assert re.search(r"<6>lograild: stats: records: 1$", err, re.M)
    assert d.alive()
    d.stop()


def test_control_reopen_and_rotate(daemon):
    d = daemon(outputs=[{"path": "out.raw", "format": "raw"}])
    stream_send(d.stream, HDR + b"app: before\n")
    d.wait_lines(1)
    os.rename(d.path("out.raw"), d.path("moved.raw"))
    assert ctl(d, "reopen").stdout == "ok\n"
    # The reopen happens between two batches; a message sent after the
    # answer may still go to the old file only if it raced the request.
    wait_until(lambda: os.path.exists(d.path("out.raw")), 10, "out.raw reopened")
    stream_send(d.stream, HDR + b"app: after\n")
    d.wait_lines(1)
    assert ctl(d, "rotate").stdout == "ok\n"
    archives = lambda: [f for f in os.listdir(d.dir) if f.startswith("out.raw.")]
    wait_until(archives, 10, "an archive after lograilctl rotate")
    stream_send(d.stream, HDR + b"app: rotated\n")
    d.wait_lines(1)
    d.stop()
    with open(d.path("moved.raw"), "rb") as f:
        assert f.read() == HDR + b"app: before\n"
    (arch,) = archives()
    with open(d.path(arch), "rb") as f:
        assert f.read() == HDR + b"app: after\n"
    assert d.lines("out.raw") == [HDR + b"app: rotated"]


def test_control_socket_mode_and_stale(daemon, workdir):
    d = daemon()
    assert os.stat(d.control).st_mode & 0o777 == 0o600
    d.stop()
    assert not os.path.exists(d.control)
    # A stale control socket (left by a crash) is replaced.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d.control)
    s.close()
    d2 = daemon()
    assert ctl(d2, "ping").stdout == "pong\n"
    d2.stop()


# ---- sd_notify -----------------------------------------------------------------

class NotifySocket:
    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.msgs = []

    def drain(self):
        while True:
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                return self.msgs

    def close(self):
        self.sock.close()


def test_sd_notify_ready_status_watchdog_stopping(daemon, workdir, monkeypatch):
    n = NotifySocket(os.path.join(workdir, "notify.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", n.path)
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        d = daemon()
        wait_until(lambda: "READY=1" in n.drain(), 10, "READY=1")
        stream_send(d.stream, HDR + b"app: one\n")
        # The watchdog is checked every 1.5 s: at least two pings in 5 s.
        wait_until(lambda: n.drain().count("WATCHDOG=1") >= 3, 15, "WATCHDOG=1 pings")
        status = [m for m in n.drain() if m.startswith("STATUS=")]
        assert status and re.match(r"STATUS=\d+ records/s; queue \d+/64; \d+ records in total",
                                   status[-1]), status[-3:]
        # READY comes after the sockets listen: the socket existed by then.
        d.stop()
        msgs = n.drain()
        assert "STOPPING=1" in msgs
        assert msgs.index("READY=1") < msgs.index("STOPPING=1")
    finally:
        n.close()


# ---- socket activation without systemd -----------------------------------------

@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate is not installed")
def test_socket_activation_adopts_by_path(workdir):
    sock = os.path.join(workdir, "act.sock")
    own = os.path.join(workdir, "own.sock")
    conf = os.path.join(workdir, "act.conf")
    out = os.path.join(workdir, "act.log")
    with open(conf, "w") as f:
        f.write('control = { path = ""; };\n'
                'listen = ( { path = "%s"; }, { path = "%s"; } );\n'
                'outputs = ( { path = "%s"; format = "raw"; fsync = "never"; } );\n'
                % (sock, own, out))
    err = open(os.path.join(workdir, "act.stderr"), "wb")
    p = subprocess.Popen(["systemd-socket-activate", "-l", sock, LOGRAILD, "-c", conf],
                         stdout=err, stderr=err)
    try:
        wait_until(lambda: os.path.exists(sock), 10, "the activation socket")
        # The first connection makes systemd-socket-activate exec lograild.
        stream_send(sock, HDR + b"app: via systemd\n")
        wait_until(lambda: os.path.exists(own), 30, "lograild to bind its own socket")
        stream_send(own, HDR + b"app: via own\n")
        wait_until(lambda: os.path.exists(out) and open(out, "rb").read().count(b"\n") == 2,
                   30, "both records")
        p.send_signal(signal.SIGTERM)
        assert p.wait(deadline(60)) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()
    log = open(os.path.join(workdir, "act.stderr")).read()
    assert "adopted 1 socket(s) from systemd" in log, log
    with open(out, "rb") as f:
        assert sorted(f.read().splitlines()) == [HDR + b"app: via own", HDR + b"app: via systemd"]
    # The passed socket's file belongs to systemd: kept.  Our own: removed.
    assert os.path.exists(sock)
    assert not os.path.exists(own)


# ---- privileges ------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drops_to_user(workdir):
    os.chmod(workdir, 0o777)
    conf = os.path.join(workdir, "u.conf")
    sock = os.path.join(workdir, "u.sock")
    out = os.path.join(workdir, "u.log")
    with open(conf, "w") as f:
        f.write('user = "nobody";\ncontrol = { path = ""; };\n'
                'listen = ( { path = "%s"; } );\n'
                'outputs = ( { path = "%s"; format = "json"; fsync = "never"; } );\n'
                % (sock, out))
    err = open(os.path.join(workdir, "u.stderr"), "wb")
    p = subprocess.Popen([LOGRAILD, "-c", conf], stdout=err, stderr=err)
    try:
        wait_until(lambda: "started:" in open(os.path.join(workdir, "u.stderr")).read(), 30,
                   "start")
        with open("/proc/%d/status" % p.pid) as f:
            status = f.read()
        uid_line = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
        assert uid_line and set(uid_line.groups()) == {"65534"}, status
        assert re.search(r"^Groups:\s*65534\s*$", status, re.M) or \
            re.search(r"^Groups:\s*$", status, re.M), status
        stream_send(sock, HDR + b"app: as nobody\n")
        wait_until(lambda: os.path.exists(out) and b"as nobody" in open(out, "rb").read(), 30,
                   "the record")
        p.send_signal(signal.SIGTERM)
        assert p.wait(deadline(60)) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        err.close()


def test_unknown_user_refused(workdir):
    conf = os.path.join(workdir, "nu.conf")
    with open(conf, "w") as f:
        f.write('user = "no-such-user-lograil";\ncontrol = { path = ""; };\n'
                'listen = ( { path = "%s/nu.sock"; } );\n'
                'outputs = ( { path = "%s/nu.log"; } );\n' % (workdir, workdir))
    r = run(LOGRAILD, "-c", conf)
    assert r.returncode == 3
    assert 'no user "no-such-user-lograil"' in r.stderr
    # Refused before serving: its socket is gone again.
    assert not os.path.exists(os.path.join(workdir, "nu.sock"))
