"""Shutdown without loss: SIGTERM while clients are still connected and
their data is still in flight."""

import os
import re
import signal
import socket
import threading

import pytest

from conftest import FifoOutput, connect, deadline, scaled, wait_eof, wait_until
from test_backpressure import Flood

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


@pytest.mark.slow
def test_sigterm_while_held_back_keeps_what_was_accepted(daemon, workdir):
    """SIGTERM while the writer is held back and clients are blocked in
    send().  Whatever the kernel accepted from a client (send() returned
    it) is in the file, and nothing else: the stream clients' bytes up to
    where they were cut off (a cut line becomes a record of its own), and
    every datagram whose send() succeeded."""
    fifo = FifoOutput(os.path.join(workdir, "out.fifo"))
    try:
        d = daemon(queue=64, outputs=[{"path": "out.fifo", "format": "raw"}])
        f = Flood(d, 4, 2, scaled(50000))
        f.start()
        f.wait_stalled()
        assert not all(f.done)
        d.send_signal(signal.SIGTERM)
        # The writer may go on now; the clients are refused from the stop on.
        fifo.start()
        f.join()
        d.stop(sig=None)
        data = fifo.join()
    finally:
        fifo.close()
    for k, e in enumerate(f.errors):
        assert e is None or isinstance(e, (BrokenPipeError, ConnectionResetError,
                                           ConnectionRefusedError, FileNotFoundError)), (k, e)
    written = data.split(b"\n")[:-1]
    tag = re.compile(rb"^<13>Nov 26 11:03:56 ([sd]\d+): ")
    got = {}
    for line in written:
        m = tag.match(line)
        # A line cut inside its header cannot be told apart; counted below.
        got.setdefault(m.group(1).decode() if m else None, []).append(line)
    expected = []
    for k in range(f.n_stream):
        accepted = f.payload[k][: f.sent[k]]
        want = accepted.split(b"\n")
        if want[-1] == b"":
            want.pop()
        expected += want
        mine = [l for l in want if tag.match(l)]
        assert got.get("s%d" % k, []) == mine, "stream %d: %d bytes accepted (%d lines), %d written" % (
            k, f.sent[k], len(mine), len(got.get("s%d" % k, [])))
    for k in range(f.n_dgram):
        want = [b"<13>Nov 26 11:03:56 d%d: d%d-%06d" % (k, k, i) for i in range(f.sent[f.n_stream + k])]
        expected += want
        assert got.get("d%d" % k, []) == want, "dgram %d: %d accepted, %d written" % (
            k, len(want), len(got.get("d%d" % k, [])))
    assert sorted(written) == sorted(expected)
    print("stop while held back: %d stream bytes and %d datagrams accepted, all written"
          % (sum(f.sent[: f.n_stream]), sum(f.sent[f.n_stream:])))


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_second_signal_during_a_long_stop(daemon, workdir, second):
    fifo = FifoOutput(os.path.join(workdir, "out.fifo"))
    try:
        d = daemon(queue=64, outputs=[{"path": "out.fifo", "format": "raw"}])
        f = Flood(d, 2, 0, scaled(50000))
        f.start()
        f.wait_stalled()
        d.send_signal(signal.SIGTERM)

        def refused():
            try:
                connect(d.stream, timeout=5).close()
                return False
            except ConnectionRefusedError:
                return True

        # The listener is closed: the stop is under way, held back by the writer.
        wait_until(refused, 30, "the daemon to stop accepting")
        d.send_signal(second)
        fifo.start()
        f.join()
        d.stop(sig=None)
        data = fifo.join()
    finally:
        fifo.close()
    accepted = [f.payload[k][: f.sent[k]] for k in range(2)]
    # Complete lines, and a cut last line as a record of its own.
    n = sum(a.count(b"\n") + (not a.endswith(b"\n")) for a in accepted if a)
    assert data.count(b"\n") == n
