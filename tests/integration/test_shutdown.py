"""Shutdown without loss: SIGTERM while clients are still connected and
their data is still in flight."""

import signal
import socket
import threading

import pytest

from conftest import connect, deadline, scaled, wait_eof

HDR = b"<13>Nov 26 11:03:56 "


@pytest.mark.parametrize("capacity", [1, 65536])
def test_sigterm_with_connected_client(daemon, capacity):
    d = daemon(queue=capacity, outputs=[{"path": "out.raw", "format": "raw"}])
    # Enough that the socket buffers are still full when the stop comes.
    n = scaled(20000)
    lines = [HDR + b"inflight: %06d" % i for i in range(n)]
    tail = HDR + b"inflight: the final line, without its newline"
    s = connect(d.stream)
    # Another client whose data sits in the datagram socket.
    u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    u.settimeout(deadline(60))
    u.connect(d.dgram)
    try:
        sender = threading.Thread(target=s.sendall, args=(b"\n".join(lines) + b"\n" + tail,))
        sender.start()
        for i in range(n // 4):
            u.send(HDR + b"dg: %06d" % i)
        sender.join(deadline(120))
        assert not sender.is_alive(), "the client could not send its lines"
        # Everything was written; the client neither closes nor finishes
        # its last line.  Stop now.
        d.stop()
        assert wait_eof(s, 10), "the daemon did not close the connection"
    finally:
        s.close()
        u.close()
    got = d.lines("out.raw")
    assert [l for l in got if b" inflight: " in l] == lines + [tail]
    assert [l for l in got if b" dg: " in l] == [HDR + b"dg: %06d" % i for i in range(n // 4)]
    assert len(got) == n + 1 + n // 4


def test_sigterm_idle_daemon_and_clients_stay_connected(daemon):
    """Connected clients that send nothing do not hold the stop back."""
    d = daemon()
    socks = [connect(d.stream) for _ in range(20)]
    try:
        socks[3].sendall(HDR + b"one: before the stop\n")
        d.wait_records(1)
        d.stop(timeout=30)
    finally:
        for s in socks:
            s.close()
    assert [r["msg"] for r in d.records()] == ["before the stop"]


def test_sigint_also_stops_cleanly(daemon):
    d = daemon()
    with connect(d.stream) as s:
        s.sendall(HDR + b"x: sigint")
        d.stop(sig=signal.SIGINT)
    assert [r["msg"] for r in d.records()] == ["sigint"]
