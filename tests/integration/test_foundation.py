"""Issue "foundation": concurrent clients over the stream socket; nothing lost,
nothing duplicated, per-connection order kept, and logger(1) works."""

import re
import subprocess
import threading

import pytest

from conftest import connect, scaled

CLIENTS = 8
LINES = scaled(20000)

LINE_RE = re.compile(rb"^<13>Nov 26 11:03:56 c(\d+): c(\d+)-(\d{6})$")


def client_payload(k, n):
    return b"".join(b"<13>Nov 26 11:03:56 c%d: c%d-%06d\n" % (k, k, i) for i in range(n))


def flood_stream(path, clients, lines):
    """`clients` connections, each sending `lines` numbered lines; returns
    when every one of them has sent everything and closed."""
    errors = []
    payloads = [client_payload(k, lines) for k in range(clients)]

    def run(k):
        try:
            with connect(path, timeout=300) as s:
                s.sendall(payloads[k])
        except Exception as e:  # reported below, not lost in a thread
            errors.append("client %d: %r" % (k, e))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def check_numbered(lines, clients, n):
    """Every client's lines exactly once and in order."""
    seqs = {k: [] for k in range(clients)}
    for line in lines:
        m = LINE_RE.match(line)
        assert m, "unexpected line %r" % line[:200]
        k, k2, i = int(m.group(1)), int(m.group(2)), int(m.group(3))
        assert k == k2
        seqs[k].append(i)
    for k in range(clients):
        got = seqs[k]
        if got != list(range(n)):
            missing = sorted(set(range(n)) - set(got))
            dups = len(got) - len(set(got))
            pytest.fail("client %d: %d lines, %d missing (first %s), %d duplicated, in order: %s"
                        % (k, len(got), len(missing), missing[:5], dups, got == sorted(got)))
    assert len(lines) == clients * n


@pytest.mark.slow
@pytest.mark.parametrize("capacity", [65536, 1])
def test_concurrent_clients_sigterm_right_after(daemon, capacity):
    d = daemon(queue=capacity, outputs=[{"path": "out.raw", "format": "raw"}])
    flood_stream(d.stream, CLIENTS, LINES)
    # At once: what the daemon has not read yet is still in its sockets.
    d.stop()
    check_numbered(d.lines("out.raw"), CLIENTS, LINES)


def test_logger_default_socket_type(daemon):
    d = daemon()
    r = subprocess.run(["logger", "-u", d.stream, "hello"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    recs = d.wait_records(1)
    d.stop()
    assert len(d.records()) == 1
    rec = recs[0]
    assert rec["msg"] == "hello"
    assert rec["facility"] == "user" and rec["severity"] == "notice"
    assert rec["syntax"] == "rfc3164"
