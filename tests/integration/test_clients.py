"""Issue "ingest": real clients -- logger(1), Python's SysLogHandler, glibc's
syslog(3) -- over the stream and the datagram socket, and the sender
identity the kernel vouches for."""

import logging
import logging.handlers
import os
import shutil
import socket
import subprocess
import sys

import pytest

from conftest import deadline, dgram_send, stream_send

HOST = socket.gethostname()
TIMEQ = '[timeQuality tzKnown="1" isSynced='

def by_msg(records):
    out = {}
    for r in records:
        assert r["msg"] not in out, "duplicate record %r" % r
        out[r["msg"]] = r
    return out


def run_logger(sock, args, text):
    p = subprocess.Popen(["logger", "-u", sock, "--socket-errors=on"] + args + [text],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=deadline(60))
    assert p.returncode == 0, "logger %s: %s" % (args, err.decode())
    return p.pid


def check(rec, case, **want):
    for k, v in want.items():
        if v is None:
            assert k not in rec, "%s: %s should be absent in %r" % (case, k, rec)
        else:
            assert rec.get(k) == v, "%s: %s is %r, want %r (record %r)" % (case, k, rec.get(k), v, rec)


def check_sd_timequality(rec, case, extra=""):
    assert rec["sd"].startswith(TIMEQ), "%s: sd %r" % (case, rec["sd"])
    assert rec["sd"].endswith("]" + extra) or rec["sd"].endswith(extra), rec["sd"]


ME = dict(uid=os.getuid(), gid=os.getgid())

# (case, transport flag, extra logger args, expected fields).  procid=True
# means "the logger's own pid, as text".
LOGGER_CASES = [
    ("s-default", "-T", ["-t", "t1"],
     dict(facility="user", severity="notice", app="t1", procid=None, syntax="rfc3164")),
    ("s-3164", "-T", ["--rfc3164", "-t", "t2"],
     dict(facility="user", severity="notice", app="t2", host=HOST, syntax="rfc3164")),
    ("s-5424", "-T", ["--rfc5424", "-t", "t3", "--msgid", "M3", "-i"],
     dict(facility="user", severity="notice", app="t3", msgid="M3", procid=True,
          host=HOST, syntax="rfc5424")),
    ("s-octet", "-T", ["--octet-count", "-t", "t4", "-p", "daemon.err"],
     dict(facility="daemon", severity="err", app="t4", syntax="rfc3164")),
    ("s-octet-5424", "-T", ["--octet-count", "--rfc5424", "-t", "t5", "-i"],
     dict(facility="user", severity="notice", app="t5", procid=True, syntax="rfc5424")),
    ("s-prio-tag-i", "-T", ["-p", "local3.warning", "-t", "t6", "-i"],
     dict(facility="local3", severity="warning", app="t6", procid=True, syntax="rfc3164")),
    ("d-default", "-d", ["-t", "t7"],
     dict(facility="user", severity="notice", app="t7", syntax="rfc3164")),
    ("d-3164", "-d", ["--rfc3164", "-p", "mail.info", "-t", "t8", "-i"],
     dict(facility="mail", severity="info", app="t8", procid=True, host=HOST, syntax="rfc3164")),
    ("d-5424", "-d", ["--rfc5424", "-p", "local7.debug", "-t", "t9", "--msgid", "M9",
                      "--sd-id", "ex@32473", "--sd-param", 'k="v"'],
     dict(facility="local7", severity="debug", app="t9", msgid="M9", syntax="rfc5424")),
    ("d-octet", "-d", ["--octet-count", "-t", "t10"],
     dict(facility="user", severity="notice", app="t10", syntax="rfc3164")),
]


def test_logger_matrix(daemon):
    d = daemon()
    pids = {}
    for case, transport, args, _ in LOGGER_CASES:
        sock = d.stream if transport == "-T" else d.dgram
        pids[case] = run_logger(sock, [transport] + args, "logger " + case)
    d.wait_records(len(LOGGER_CASES))
    d.stop()
    recs = by_msg(d.records())
    assert len(recs) == len(LOGGER_CASES)
    for case, transport, args, want in LOGGER_CASES:
        rec = recs.get("logger " + case)
        assert rec is not None, "%s: no record; have %s" % (case, sorted(recs))
        want = dict(want)
        if want.get("procid") is True:
            want["procid"] = str(pids[case])
        check(rec, case, pid=pids[case], truncated=None, parse_error=None, **want, **ME)
        if "--rfc5424" in args:
            check_sd_timequality(rec, case, '[ex@32473 k="v"]' if "--sd-id" in args else "")
    assert recs["logger d-5424"]["sd"].endswith('[ex@32473 k="v"]')
    # The raw output holds the bytes as logger sent them.
    raw = d.lines("out.raw")
    assert len(raw) == len(LOGGER_CASES)
    assert any(l.startswith(b"<156>") and l.endswith(b"t6[%d]: logger s-prio-tag-i" % pids["s-prio-tag-i"])
               for l in raw), raw


def test_logger_many_lines_one_connection(daemon, tmp_path):
    """logger -f sends a file's lines over one connection, in order."""
    d = daemon()
    n = 500
    src = tmp_path / "lines.txt"
    src.write_text("".join("file line %d\n" % i for i in range(n)))
    runs = (["-T"], ["-T", "--octet-count"], ["-d"])
    for k, flag in enumerate(runs):
        r = subprocess.run(["logger", "-u", d.stream if "-T" in flag else d.dgram,
                            "--socket-errors=on", "-t", "f%d" % k] + flag + ["-f", str(src)],
                           capture_output=True, text=True, timeout=deadline(60))
        assert r.returncode == 0, r.stderr
    d.wait_records(len(runs) * n)
    d.stop()
    recs = d.records()
    assert len(recs) == len(runs) * n
    want = ["file line %d" % i for i in range(n)]
    # Each run is one client: its lines in order.  Records of different
    # clients may interleave.
    for k in range(len(runs)):
        assert [r["msg"] for r in recs if r.get("app") == "f%d" % k] == want, runs[k]


# ---- Python's logging.handlers.SysLogHandler ------------------------------

def py_log(handler, texts, level=logging.WARNING):
    log = logging.getLogger("lograil-test-%d" % id(handler))
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("pyapp: %(message)s"))
    log.addHandler(handler)
    try:
        for t in texts:
            log.log(level, t)
    finally:
        log.removeHandler(handler)
        handler.close()


def test_python_sysloghandler_dgram(daemon):
    d = daemon()
    h = logging.handlers.SysLogHandler(address=d.dgram,
                                       facility=logging.handlers.SysLogHandler.LOG_LOCAL4)
    assert h.socktype == socket.SOCK_DGRAM
    texts = ["py dgram %d" % i for i in range(5)]
    py_log(h, texts, logging.ERROR)
    d.wait_records(len(texts))
    d.stop()
    recs = d.records()
    assert [r["msg"] for r in recs] == texts
    for r in recs:
        check(r, "py-dgram", facility="local4", severity="err", app="pyapp", procid=None,
              pid=os.getpid(), syntax="rfc3164", **ME)


@pytest.mark.parametrize("explicit", [True, False], ids=["socktype-stream", "fallback"])
def test_python_sysloghandler_stream(daemon, explicit):
    d = daemon()
    if explicit:
        h = logging.handlers.SysLogHandler(address=d.stream, socktype=socket.SOCK_STREAM)
    else:
        # No socktype: datagram first, then stream when the socket refuses.
        h = logging.handlers.SysLogHandler(address=d.stream)
    assert h.socktype == socket.SOCK_STREAM
    texts = ["py stream %d" % i for i in range(5)]
    py_log(h, texts)
    d.wait_records(1)
    d.stop()
    recs = d.records()
    assert [r["msg"] for r in recs] == texts
    for r in recs:
        check(r, "py-stream", facility="user", severity="warning", app="pyapp",
              pid=os.getpid(), **ME)


def test_python_sysloghandler_stream_one_message(daemon):
    """One message, then the handler closes: its closing NUL is not msg."""
    d = daemon()
    h = logging.handlers.SysLogHandler(address=d.stream, socktype=socket.SOCK_STREAM)
    py_log(h, ["py single"])
    d.wait_records(1)
    d.stop()
    recs = d.records()
    assert len(recs) == 1
    check(recs[0], "py-single", facility="user", severity="warning", app="pyapp",
          pid=os.getpid(), **ME)
    assert recs[0]["msg"] == "py single"


# ---- glibc syslog(3) through /dev/log --------------------------------------

def run_in_devlog_ns(sock, argv):
    """Run argv with `sock` bind-mounted over /dev/log in a private mount
    namespace; skip where that is not permitted."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) is not installed")
    # Without a /dev/log to mount over, a private tmpfs /dev provides one;
    # the namespace is private, so the host's /dev is untouched.
    script = ('set -e; if [ -e /dev/log ]; then mount --bind "$1" /dev/log; '
              'else mount -t tmpfs lograil-test /dev; : > /dev/log; mount --bind "$1" /dev/log; fi; '
              'shift; exec "$@"')
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", sock] + argv,
                       capture_output=True, text=True, timeout=deadline(60))
    if r.returncode != 0 and ("Operation not permitted" in r.stderr or "permission denied" in r.stderr.lower()):
        pytest.skip("private mount namespaces are not permitted here: " + r.stderr.strip())
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


def test_glibc_syslog_dgram(daemon, clients_bin):
    d = daemon()
    n = 20
    pid = run_in_devlog_ns(d.dgram, [clients_bin["syslog_client"], "glibctag", str(n), "via glibc"])
    d.wait_records(n)
    d.stop()
    recs = d.records()
    assert [r["msg"] for r in recs] == ["via glibc %d" % i for i in range(n)]
    for r in recs:
        check(r, "glibc", facility="local2", severity="err", app="glibctag", procid=str(pid),
              pid=pid, syntax="rfc3164", truncated=None, parse_error=None, **ME)


def test_glibc_syslog_stream_fallback(daemon, clients_bin):
    """glibc falls back to SOCK_STREAM when /dev/log is a stream socket."""
    d = daemon()
    n = 20
    pid = run_in_devlog_ns(d.stream, [clients_bin["syslog_client"], "glibcs", str(n), "stream glibc"])
    d.wait_records(1)
    d.stop()
    recs = d.records()
    assert [r["msg"] for r in recs] == ["stream glibc %d" % i for i in range(n)]
    for r in recs:
        check(r, "glibc-stream", facility="local2", severity="err", app="glibcs",
              procid=str(pid), pid=pid, **ME)


# ---- trusted identity ------------------------------------------------------

def test_identity_is_the_kernels(daemon):
    d = daemon()
    me = os.getpid()
    # A client that claims to be pid 1 in its tag: procid says so, pid does not.
    stream_send(d.stream, b"<13>Nov 26 11:03:56 fake[1]: stream claims pid 1\n")
    dgram_send(d.dgram, b"<13>Nov 26 11:03:56 fake[1]: dgram claims pid 1")
    d.wait_records(2)
    d.stop()
    recs = by_msg(d.records())
    for text in ("stream claims pid 1", "dgram claims pid 1"):
        check(recs[text], text, app="fake", procid="1", pid=me, **ME)


SENDER = r"""
import os, socket, sys
stream, dgram = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(stream)
s.sendall(b"<13>Nov 26 11:03:56 nobody[%d]: as nobody over stream\n" % os.getpid())
s.close()
u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
u.sendto(b"<13>Nov 26 11:03:56 nobody[%d]: as nobody over dgram" % os.getpid(), dgram)
print(os.getpid(), os.getuid(), os.getgid())
"""


def test_identity_of_another_user(daemon):
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as uid 65534")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv(1) is not installed")
    d = daemon()
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-c", SENDER, d.stream, d.dgram],
                       capture_output=True, text=True, timeout=deadline(60))
    assert r.returncode == 0, r.stderr
    pid, uid, gid = map(int, r.stdout.split())
    assert (uid, gid) == (65534, 65534)
    d.wait_records(2)
    d.stop()
    recs = by_msg(d.records())
    for text in ("as nobody over stream", "as nobody over dgram"):
        check(recs[text], text, app="nobody", procid=str(pid), pid=pid, uid=65534, gid=65534)
