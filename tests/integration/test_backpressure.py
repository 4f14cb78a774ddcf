"""Backpressure: with a tiny queue, floods of stream and datagram clients
lose nothing, and the daemon's memory stays bounded because the clients
are held back instead of buffered."""

import re
import socket
import threading

import pytest

from conftest import SAN, connect, deadline, scaled

STREAM_CLIENTS = 8
DGRAM_CLIENTS = 4
N = scaled(20000)
RSS_LIMIT_KB = 64 * 1024

LINE = re.compile(rb"^<13>Nov 26 11:03:56 ([sd]\d+): ([sd]\d+)-(\d{6})$")


@pytest.mark.slow
@pytest.mark.parametrize("capacity", [1, 4])
def test_flood_tiny_queue_loses_nothing(daemon, capacity):
    d = daemon(queue=capacity, outputs=[{"path": "out.raw", "format": "raw"}])
    errors = []

    def stream_client(k):
        name = b"s%d" % k
        data = b"".join(b"<13>Nov 26 11:03:56 %s: %s-%06d\n" % (name, name, i) for i in range(N))
        try:
            with connect(d.stream, timeout=300) as s:
                s.sendall(data)
        except Exception as e:
            errors.append("stream %d: %r" % (k, e))

    def dgram_client(k):
        name = b"d%d" % k
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as u:
                # Blocking sends: a full daemon holds us back, it never drops.
                u.settimeout(deadline(300))
                u.connect(d.dgram)
                for i in range(N):
                    u.send(b"<13>Nov 26 11:03:56 %s: %s-%06d" % (name, name, i))
        except Exception as e:
            errors.append("dgram %d: %r" % (k, e))

    ts = [threading.Thread(target=stream_client, args=(k,)) for k in range(STREAM_CLIENTS)]
    ts += [threading.Thread(target=dgram_client, args=(k,)) for k in range(DGRAM_CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    hwm = d.status("VmHWM")
    st = d.stats()
    d.stop()
    assert st["queue"]["full"] > 0, "the queue never filled: not a backpressure test"
    for k, v in st.items():
        if k.startswith(("listener ", "output ")):
            assert v["lost"] == 0, (k, v)
    print("queue %d: %d records, peak RSS (VmHWM) %.1f MiB"
          % (capacity, (STREAM_CLIENTS + DGRAM_CLIENTS) * N, hwm / 1024))

    seqs = {}
    for line in d.lines("out.raw"):
        m = LINE.match(line)
        assert m and m.group(1) == m.group(2), "unexpected line %r" % line[:200]
        seqs.setdefault(m.group(1).decode(), []).append(int(m.group(3)))
    names = ["s%d" % k for k in range(STREAM_CLIENTS)] + ["d%d" % k for k in range(DGRAM_CLIENTS)]
    for name in names:
        got = seqs.get(name, [])
        assert got == list(range(N)), "%s: %d of %d records, %d distinct, in order: %s" % (
            name, len(got), N, len(set(got)), got == sorted(got))
    assert sorted(seqs) == sorted(names)
    # Sanitizers keep shadow memory and quarantines: RSS means nothing there.
    if not SAN:
        assert hwm < RSS_LIMIT_KB, "peak RSS %d kB" % hwm
