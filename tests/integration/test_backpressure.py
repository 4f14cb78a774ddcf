"""Backpressure: with a tiny queue, floods of stream and datagram clients
lose nothing, and the daemon's memory stays bounded because the clients
are held back instead of buffered."""

import os
import re
import socket
import threading
import time

import pytest

from conftest import SAN, FifoOutput, connect, deadline, scaled, wait_until

STREAM_CLIENTS = 8
DGRAM_CLIENTS = 4
N = scaled(20000)
RSS_LIMIT_KB = 64 * 1024

LINE = re.compile(rb"^<13>Nov 26 11:03:56 ([sd]\d+): ([sd]\d+)-(\d{6})$")


@pytest.mark.slow
@pytest.mark.parametrize("capacity,threads", [(1, 2), (4, 2), (2, 1), (2, 4)],
                         ids=["q1", "q4", "q2-1thread", "q2-4threads"])
def test_flood_tiny_queue_loses_nothing(daemon, capacity, threads):
    d = daemon(queue=capacity, threads=threads, outputs=[{"path": "out.raw", "format": "raw"}])
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
    print("queue %d, %d threads: %d records, peak RSS (VmHWM) %.1f MiB"
          % (capacity, threads, (STREAM_CLIENTS + DGRAM_CLIENTS) * N, hwm / 1024))

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


def send_stream(path, payload, sent, k):
    """Send payload on one stream connection as fast as the daemon takes it,
    adding to sent[k] the bytes the kernel accepted."""
    with connect(path, timeout=600) as s:
        view = memoryview(payload)
        while view:
            m = s.send(view[:65536])
            view = view[m:]
            sent[k] += m


class Flood:
    """Stream and datagram clients that send numbered lines as fast as
    they may, counting what the kernel accepted: sent[k] bytes (stream) or
    datagrams.  A client stops at its first error (after a stop, EPIPE)."""

    def __init__(self, d, n_stream, n_dgram, lines):
        self.d, self.n_stream, self.n_dgram, self.lines = d, n_stream, n_dgram, lines
        self.sent = [0] * (n_stream + n_dgram)
        self.done = [False] * (n_stream + n_dgram)
        self.errors = [None] * (n_stream + n_dgram)
        self.payload = [b"".join(b"<13>Nov 26 11:03:56 s%d: s%d-%06d\n" % (k, k, i)
                                 for i in range(lines)) for k in range(n_stream)]
        self.threads = [threading.Thread(target=self._stream, args=(k,)) for k in range(n_stream)]
        self.threads += [threading.Thread(target=self._dgram, args=(k,)) for k in range(n_dgram)]
        self.history = []

    def names(self):
        return ["s%d" % k for k in range(self.n_stream)] + ["d%d" % k for k in range(self.n_dgram)]

    def _stream(self, k):
        try:
            send_stream(self.d.stream, self.payload[k], self.sent, k)
            self.done[k] = True
        except Exception as e:
            self.errors[k] = e

    def _dgram(self, k):
        j = self.n_stream + k
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as u:
                u.settimeout(deadline(600))
                u.connect(self.d.dgram)
                for i in range(self.lines):
                    u.send(b"<13>Nov 26 11:03:56 d%d: d%d-%06d" % (k, k, i))
                    self.sent[j] += 1
            self.done[j] = True
        except Exception as e:
            self.errors[j] = e

    def start(self):
        for t in self.threads:
            t.start()

    def join(self, timeout=120):
        end = time.monotonic() + deadline(timeout)
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "a client is still blocked"

    def wait_stalled(self):
        """Until no client makes progress any more, or (wrongly, when the
        writer is held back) all of them are done."""

        def stalled():
            self.history.append(sum(self.sent))
            return all(self.done) or (len(self.history) > 10 and len(set(self.history[-10:])) == 1)

        wait_until(stalled, 120, "the clients to be held back", 0.2)


def parse_numbered(data):
    seqs = {}
    for line in data.split(b"\n")[:-1]:
        m = LINE.match(line)
        assert m and m.group(1) == m.group(2), "unexpected line %r" % line[:200]
        seqs.setdefault(m.group(1).decode(), []).append(int(m.group(3)))
    return seqs


@pytest.mark.slow
def test_held_back_writer_holds_clients_back(daemon, workdir):
    """A writer that cannot write: the output is a FIFO that the test does
    not read.  The clients must then be held back -- their send() stops
    making progress before they are done -- while the daemon's memory stays
    bounded; once the FIFO is read, every record arrives exactly once."""
    fifo = FifoOutput(os.path.join(workdir, "out.fifo"))
    try:
        d = daemon(queue=1024, outputs=[{"path": "out.fifo", "format": "raw"}])
        f = Flood(d, 4, 2, scaled(50000))
        f.start()
        f.wait_stalled()
        rss = d.status("VmRSS")
        print("held back after %d bytes and datagrams; daemon RSS %.1f MiB"
              % (sum(f.sent), rss / 1024))
        assert not all(f.done), "every client finished although nothing was written"
        assert not any(f.errors), f.errors
        if not SAN:
            assert rss < RSS_LIMIT_KB, "RSS %d kB while held back" % rss
        # Now read the FIFO: everything flows.
        fifo.start()
        f.join()
        assert all(f.done) and not any(f.errors), (f.done, f.errors)
        hwm = d.status("VmHWM")
        d.stop()
        data = fifo.join()
    finally:
        fifo.close()
    print("held-back writer: peak RSS (VmHWM) %.1f MiB" % (hwm / 1024))
    seqs = parse_numbered(data)
    assert sorted(seqs) == sorted(f.names())
    for name in f.names():
        assert seqs[name] == list(range(f.lines)), name
    if not SAN:
        assert hwm < RSS_LIMIT_KB, "peak RSS %d kB" % hwm


class StreamSenders:
    """One stream connection per payload, each sent as fast as the daemon
    takes it, counting the bytes the kernel accepted (sent[k])."""

    def __init__(self, d, payloads):
        self.d, self.payloads = d, payloads
        self.sent = [0] * len(payloads)
        self.errors = []
        self.threads = [threading.Thread(target=self._send, args=(k,))
                        for k in range(len(payloads))]
        self.history = []

    def _send(self, k):
        try:
            send_stream(self.d.stream, self.payloads[k], self.sent, k)
        except Exception as e:
            self.errors.append(repr(e))

    def start(self):
        for t in self.threads:
            t.start()

    def wait_stalled(self):
        """Until no connection makes progress for ten looks in a row."""

        def stalled():
            self.history.append(sum(self.sent))
            return len(self.history) > 10 and len(set(self.history[-10:])) == 1

        wait_until(stalled, 120, "the clients to be held back", 0.2)

    def join(self, timeout=300):
        for t in self.threads:
            t.join(deadline(timeout))
        assert not self.errors, self.errors[:3]


@pytest.mark.slow
def test_held_back_many_connections_of_tiny_lines(daemon, workdir):
    """What a paused connection holds must not grow with the number of
    records in one read: 100 connections of two-byte lines against a writer
    that cannot write.  (Framing whole 64 KiB reads parked 32768 records,
    some 3.5 MiB, per connection: 380 MiB here.)"""
    fifo = FifoOutput(os.path.join(workdir, "out.fifo"))
    conns, per = 100, scaled(150000, 2)
    payload = b"a\n" * per
    try:
        d = daemon(queue=1024, outputs=[{"path": "out.fifo", "format": "raw"}])
        senders = StreamSenders(d, [payload] * conns)
        senders.start()
        senders.wait_stalled()
        rss = d.status("VmRSS")
        print("%d connections of tiny lines held back: daemon RSS %.1f MiB" % (conns, rss / 1024))
        if not SAN:
            assert rss < RSS_LIMIT_KB, "RSS %d kB while held back" % rss
        fifo.start()
        senders.join()
        d.stop()
        data = fifo.join()
    finally:
        fifo.close()
    assert data == payload * conns


@pytest.mark.slow
def test_byte_bound_holds_large_messages_back(daemon, workdir):
    """queue.max_bytes: with room for 65536 records but 256 KiB of them,
    2,000-byte messages against a writer that cannot write.  The clients
    are held back by the byte bound (the record count never binds), the
    queue's bytes stay within the bound plus one batch per ingest thread,
    and once the FIFO is read every message arrives once and in order."""
    limit, threads, clients, per, size = 256 * 1024, 2, 4, scaled(3000), 2000
    fifo = FifoOutput(os.path.join(workdir, "out.fifo"))

    def payload(k):
        lines = []
        for i in range(per):
            head = b"<13>Nov 26 11:03:56 b%d: b%d-%06d " % (k, k, i)
            lines.append(head + b"x" * (size - len(head) - 1) + b"\n")
        return b"".join(lines)

    try:
        d = daemon(queue=65536, queue_bytes=limit, threads=threads,
                   outputs=[{"path": "out.fifo", "format": "raw"}])
        senders = StreamSenders(d, [payload(k) for k in range(clients)])
        senders.start()
        senders.wait_stalled()
        st = d.stats()["queue"]
        rss = d.status("VmRSS")
        print("byte bound %d: held back with %d records, %d bytes queued (high water %d), "
              "%d waits; RSS %.1f MiB" % (limit, st["depth"], st["bytes"], st["bytes_high_water"],
                                          st["byte_waits"], rss / 1024))
        assert sum(senders.sent) < clients * per * size, \
            "every client finished: nothing held them back"
        assert st["bytes_limit"] == limit
        assert st["byte_waits"] > 0, "the byte bound never held a loop back"
        assert st["depth"] < 65536 // 4, "the record count bound, not the byte bound, held them"
        # A record takes its message and a header of about 100 bytes.
        slack = threads * 128 * (size + 256)
        assert st["bytes_high_water"] <= limit + slack, st
        assert st["bytes"] <= limit + slack, st
        fifo.start()
        senders.join()
        # Every byte charged is credited back once written: a drift would
        # leave the count up and, some day, the clients held back for ever.
        wait_until(lambda: d.stats()["queue"]["bytes"] == 0, 60,
                   "the queue's bytes to come back to 0")
        d.stop()
        data = fifo.join()
    finally:
        fifo.close()
    got = {}
    for line in data.split(b"\n")[:-1]:
        m = re.match(rb"^<13>Nov 26 11:03:56 (b\d+): (b\d+)-(\d{6}) x+$", line)
        assert m and m.group(1) == m.group(2) and len(line) == size - 1, line[:80]
        got.setdefault(m.group(1).decode(), []).append(int(m.group(3)))
    assert sorted(got) == ["b%d" % k for k in range(clients)]
    for name, seqs in got.items():
        assert seqs == list(range(per)), name
