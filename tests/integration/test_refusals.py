"""Issue 14, point 3: refused connections are logged, and the numbers in
the log add up to the connections_refused counter that lograilctl shows.

The first refusal is logged at once; the ones after it are counted and
logged as one number at most every 10 s (by the next refusal, by the
loops' one-second tick, or at shutdown).  Both tests use real clients
(Python sockets) and the real lograilctl; one limits the daemon with
max_connections, the other with prlimit(1) on the running daemon."""

import os
import re
import socket
import subprocess

import pytest

from conftest import (LOGRAILD, closed_now, connect, deadline, stream_send, wait_eof,
                      wait_until)

LOGRAILCTL = os.environ.get("LOGRAILCTL") or os.path.join(os.path.dirname(LOGRAILD), "lograilctl")
HDR = b"<13>Nov 26 11:03:56 "
REFUSED = re.compile(r"lograild: listen (\S+): (\d+) connections? refused: (.*)$")


def refusal_lines(d, reason):
    """(count, line) for each refusal message of reason (a substring)."""
    out = []
    for line in d.stderr().splitlines():
        m = REFUSED.search(line)
        if m and m.group(1) == d.stream and reason in m.group(3):
            out.append((int(m.group(2)), line))
    return out


def logged(d, reason):
    return sum(n for n, _ in refusal_lines(d, reason))


def ctl_refused(d):
    """connections_refused of the stream listener, as lograilctl prints it."""
    r = subprocess.run([LOGRAILCTL, "-s", d.control, "stats"], capture_output=True, text=True,
                       timeout=deadline(60))
    assert r.returncode == 0, r.stderr
    section = None
    for line in r.stdout.splitlines():
        if line.startswith("# "):
            section = line[2:]
        elif section == "listener " + d.stream and line.startswith("connections_refused: "):
            return int(line.split(": ", 1)[1])
    pytest.fail("no connections_refused for %s in:\n%s" % (d.stream, r.stdout))


def test_max_connections_refusals_logged(daemon):
    limit, extra = 3, 40
    d = daemon(listen=[{"path": "s.sock", "type": "stream", "max_connections": limit},
                       {"path": "d.sock", "type": "dgram"}], probe=False)
    held = [connect(d.stream) for _ in range(limit)]
    try:
        for i, c in enumerate(held):
            c.sendall(HDR + b"held%d: in\n" % i)
        d.wait_records(limit)
        # The first refusal is in the log at once, before any other.
        first = connect(d.stream)
        assert wait_eof(first), "a connection beyond max_connections was not closed"
        first.close()
        wait_until(lambda: refusal_lines(d, "max_connections"), 30, "the first refusal's message")
        (n, line), = refusal_lines(d, "max_connections")
        assert n == 1 and "max_connections (3) reached" in line, line
        # A burst: each one is closed by the daemon.
        for _ in range(extra):
            s = connect(d.stream)
            assert wait_eof(s), "a connection beyond max_connections was not closed"
            s.close()
        assert ctl_refused(d) == 1 + extra
        # With no refusal after them, the tick still reports them (within
        # 10 s of the first message), and the numbers add up.
        wait_until(lambda: logged(d, "max_connections") == 1 + extra, 60,
                   "the summary of the burst in the log (logged %d of %d)"
                   % (logged(d, "max_connections"), 1 + extra))
        lines = refusal_lines(d, "max_connections")
        assert len(lines) < 1 + extra, "one message per refusal:\n" + d.stderr()[-3000:]
        # The held connections were never disturbed.
        for i, c in enumerate(held):
            c.sendall(HDR + b"held%d: still\n" % i)
        d.wait_records(2 * limit)
    finally:
        for c in held:
            c.close()
    refused = ctl_refused(d)
    d.stop()
    assert refused == 1 + extra
    print("\n".join(l for _, l in refusal_lines(d, "max_connections")))
    assert logged(d, "max_connections") == refused, d.stderr()[-3000:]
    assert sorted(r["app"] for r in d.records()) == sorted(
        ["held%d" % i for i in range(limit)] * 2)


def test_descriptor_limit_refusals_add_up(daemon, many_fds):
    """prlimit lowers the running daemon's open-files limit; connections
    beyond it are refused through the reserve descriptor, and the log's
    numbers (some of them only written at shutdown) add up to the counter."""
    d = daemon()
    base = d.nfds()
    limit = base + 16
    r = subprocess.run(["prlimit", "--pid", str(d.pid), "--nofile=%d:%d" % (limit, limit)],
                       capture_output=True, text=True, timeout=deadline(30))
    assert r.returncode == 0, r.stderr
    assert d.nofile_limit() == limit
    n = 80
    socks = {"n%d" % i: connect(d.stream) for i in range(n)}
    try:
        for app, s in socks.items():
            try:
                s.sendall(HDR + app.encode() + b": hello\n")
            except OSError:
                pass  # the daemon closed it already
        # Each is either served (its line is written) or closed at once.
        wait_until(lambda: all(app in {r["app"] for r in d.records()} or closed_now(s)
                               for app, s in socks.items()),
                   60, "every connection to be served or closed", 0.2)
        served = {r["app"] for r in d.records()}
        assert 0 < len(served) < n, "with %d files, %d of %d served" % (limit, len(served), n)
        # The first refusal was logged at once.
        assert logged(d, "Too many open files") >= 1, d.stderr()[-3000:]
        (_, first) = refusal_lines(d, "Too many open files")[0]
        assert "open files limit %d" % limit in first and "raise LimitNOFILE" in first, first
    finally:
        for s in socks.values():
            s.close()
    # The control socket needs a descriptor too: asked once they are free.
    wait_until(lambda: d.nfds() < limit - 4, 60, "the daemon to close the connections")
    refused = ctl_refused(d)
    assert refused == n - len(served)
    stream_send(d.stream, HDR + b"after: room again\n")
    d.wait_records(len(served) + 1)
    d.stop()
    print("\n".join(l for _, l in refusal_lines(d, "Too many open files")))
    assert logged(d, "Too many open files") == refused, d.stderr()[-3000:]
    assert len(refusal_lines(d, "Too many open files")) < refused or refused == 1
    assert "after" in {r["app"] for r in d.records()}
