"""Issue "ingest": hostile and broken input.  Every case checks what reached
the file, and that the daemon stays up and later messages arrive intact."""

import os
import socket
import threading

import pytest

from conftest import connect, deadline, dgram_send, scaled, stream_send, wait_until

HDR = b"<13>Nov 26 11:03:56 "
MAX = 64 * 1024  # the default max_message


def by_app(records):
    out = {}
    for r in records:
        out.setdefault(r.get("app"), []).append(r)
    return out


def after_ok(d, n_before):
    """A fresh client is still served, and its message is intact."""
    stream_send(d.stream, HDR + b"after: still here\n")
    recs = d.wait_records(n_before + 1)
    assert any(r.get("app") == "after" and r["msg"] == "still here" for r in recs), recs[-3:]


def test_huge_line_is_truncated(daemon):
    d = daemon()
    big = b"x" * (1 << 20)
    with connect(d.stream, timeout=60) as s:
        s.sendall(HDR + b"big: " + big + b"\n" + HDR + b"next: intact\n")
    # The same over octet counting: the count covers the whole megabyte.
    frame = HDR + b"bigoc: " + big
    with connect(d.stream, timeout=60) as s:
        s.sendall(b"%d " % len(frame) + frame + b"%d " % len(HDR + b"nextoc: intact")
                  + HDR + b"nextoc: intact")
    # A datagram of a megabyte (the daemon's receive buffer is 4 MiB).
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as u:
        u.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        u.settimeout(deadline(30))
        u.sendto(HDR + b"bigd: " + big, d.dgram)
        u.sendto(HDR + b"nextd: intact", d.dgram)
    d.wait_records(6)
    after_ok(d, 6)
    assert d.listener_stats(d.stream)["truncated"] == 2
    assert d.listener_stats(d.dgram)["truncated"] == 1
    d.stop()
    apps = by_app(d.records())
    for app in ("big", "bigoc", "bigd"):
        (r,) = apps[app]
        head = len(HDR) + len(app) + 2
        assert r.get("truncated") is True, app
        assert r["msg"] == "x" * (MAX - head), (app, len(r["msg"]))
    for app in ("next", "nextoc", "nextd"):
        (r,) = apps[app]
        assert r["msg"] == "intact" and "truncated" not in r, r
    # The raw output holds exactly max_message bytes of each, then the mark.
    raw = d.lines("out.raw")
    mark = b" [truncated]"
    assert sorted(len(l) - len(mark) for l in raw if l.endswith(b"xxxx" + mark)) == [MAX] * 3


def test_nul_bytes_and_invalid_utf8(daemon):
    d = daemon()
    nul = b"\0" * 100
    bad = HDR + b"utf: a\xffb\xc3(c\xed\xa0\x80d\xe2\x82"
    # In newline framing a NUL ends a message (glibc and Python end stream
    # messages with one), so a line of NULs is a run of empty messages:
    # nothing to record, and the lines after it are intact.
    with connect(d.stream) as s:
        s.sendall(nul + b"\n" + bad + b"\n" + HDR + b"tail: fine\n")
    # An octet-counted frame carries its NULs through.
    stream_send(d.stream, b"%d " % len(nul) + nul)
    dgram_send(d.dgram, HDR + b"utfd: a\xffb\xc3(c\xed\xa0\x80d\xe2\x82")
    d.wait_records(4)
    after_ok(d, 4)
    d.stop()
    recs = d.records()
    assert len(recs) == 5, recs
    raws = [r for r in recs if r["syntax"] == "raw"]
    assert len(raws) == 1
    assert raws[0]["msg"] == "\0" * 100 and raws[0]["facility"] == "user"
    apps = by_app(recs)
    # One U+FFFD per maximal subpart: \xff; \xc3 before '('; each byte of
    # the surrogate \xed\xa0\x80; the unfinished \xe2\x82.
    want = "a\ufffdb\ufffd(c\ufffd\ufffd\ufffdd\ufffd"
    assert apps["utf"][0]["msg"] == want
    assert apps["utfd"][0]["msg"] == want
    assert apps["tail"][0]["msg"] == "fine"
    # raw keeps the bytes, NUL escaped so the record stays on one line.
    raw = d.lines("out.raw")
    assert b"#000" * 100 in raw
    assert bad in raw


def test_octet_count_longer_than_data_then_eof(daemon):
    d = daemon()
    stream_send(d.stream, b"100 " + HDR + b"short: only this")
    whole = HDR + b"ok: whole"
    # A count and its SP, then EOF: nothing to record.
    stream_send(d.stream, b"%d " % len(whole) + whole + b"30 ")
    # Digits of a count, then EOF: kept as they came.
    stream_send(d.stream, b"%d " % len(whole) + whole + b"30")
    d.wait_records(4)
    after_ok(d, 4)
    # The frame cut short by EOF and the digits without their SP.
    assert d.listener_stats(d.stream)["bad_frames"] == 2
    d.stop()
    raw = sorted(d.lines("out.raw"))
    assert raw == sorted([HDR + b"short: only this", whole, whole, b"30",
                          HDR + b"after: still here"])
    apps = by_app(d.records())
    assert [r["msg"] for r in apps["short"]] == ["only this"]
    assert [r["msg"] for r in apps["ok"]] == ["whole", "whole"]


@pytest.mark.parametrize("payload,first", [
    (b"-5 x\n", b"-5 x"),
    (b"99999999999 x\n", b"99999999999 x"),
    (b"0 x\n", b"0 x"),
    (b"4294967296 x\n", b"4294967296 x"),
], ids=["negative", "eleven-digits", "zero", "over-32-bits"])
def test_bad_octet_count(daemon, payload, first):
    d = daemon()
    # First thing on a connection, and after a good frame.
    stream_send(d.stream, payload + HDR + b"later: in LF mode\n")
    stream_send(d.stream, b"3 abc" + payload + HDR + b"later2: in LF mode\n")
    d.wait_records(5)
    after_ok(d, 5)
    # "-5" first on a connection selects newline framing: no count at all.
    assert d.listener_stats(d.stream)["bad_frames"] == (1 if payload[:1] == b"-" else 2)
    d.stop()
    raw = d.lines("out.raw")
    assert sorted(raw) == sorted([first, HDR + b"later: in LF mode", b"abc", first,
                                  HDR + b"later2: in LF mode", HDR + b"after: still here"])
    for r in d.records():
        if r["msg"] == first.decode():
            assert r["syntax"] == "raw"


def test_client_disconnects_mid_message(daemon):
    d = daemon()
    stream_send(d.stream, HDR + b"one: complete\n" + HDR + b"two: cut before the newl")
    stream_send(d.stream, b"60 " + HDR + b"oc: cut inside a frame")
    # Half a line, then shutdown(SHUT_WR) while the client stays.
    s = connect(d.stream)
    s.sendall(HDR + b"half: gone")
    s.shutdown(socket.SHUT_WR)
    d.wait_records(4)
    after_ok(d, 4)
    s.close()
    d.stop()
    apps = by_app(d.records())
    assert apps["one"][0]["msg"] == "complete"
    assert apps["two"][0]["msg"] == "cut before the newl"
    assert apps["oc"][0]["msg"] == "cut inside a frame"
    assert apps["half"][0]["msg"] == "gone"


@pytest.mark.slow
def test_thousand_idle_connections(daemon, many_fds):
    """1,000 silent connections at once, with the soft limit on open files
    that systemd gives services (1024): the daemon raises it for its
    max_connections, serves every one of them and a fresh client too."""
    n = 1000
    if many_fds < n + 100:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for %d connections" % (many_fds, n))
    d = daemon(nofile=(1024, many_fds))
    # The default max_connections (4096) and some to spare.
    assert d.nofile_limit() >= min(4096, many_fds)
    socks = []
    try:
        for _ in range(n):
            socks.append(connect(d.stream))
        wait_until(lambda: d.nfds() >= n, 60, "the daemon to accept %d connections" % n)
        after_ok(d, 0)
        for i in range(0, n, 50):
            socks[i].sendall(HDR + b"idle%d: awake\n" % i)
        d.wait_records(1 + n // 50)
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: d.nfds() < 100, 60, "the daemon to close the connections")
    after_ok(d, 1 + n // 50)
    d.stop()
    apps = by_app(d.records())
    for i in range(0, n, 50):
        assert [r["msg"] for r in apps["idle%d" % i]] == ["awake"]
    assert len(d.records()) == 2 + n // 50


@pytest.mark.slow
def test_many_clients_connect_and_drop(daemon):
    """Connections that come and go in a burst, some mid-line."""
    d = daemon()
    n = scaled(400)
    errors = []

    def burst(k):
        try:
            for i in range(n // 8):
                with connect(d.stream) as s:
                    s.sendall(HDR + b"b%d: %d\n" % (k, i) + HDR + b"b%d: part %d" % (k, i))
        except Exception as e:
            errors.append(repr(e))

    ts = [threading.Thread(target=burst, args=(k,)) for k in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    total = 8 * (n // 8) * 2
    d.wait_records(total, timeout=60)
    d.stop()
    apps = by_app(d.records())
    for k in range(8):
        msgs = [r["msg"] for r in apps["b%d" % k]]
        want = []
        for i in range(n // 8):
            want += ["%d" % i, "part %d" % i]
        # Successive connections of one client may be served by different
        # loops, so only each connection's own two records keep their order.
        assert sorted(msgs) == sorted(want)
        for i in range(n // 8):
            assert msgs.index("%d" % i) < msgs.index("part %d" % i)


def test_empty_lines_and_datagrams_make_no_records(daemon):
    d = daemon()
    stream_send(d.stream, b"\n\r\n\n" + HDR + b"one: between empty lines\n\n\r\n")
    dgram_send(d.dgram, b"", b"\n", b"\0", b"\r\n", HDR + b"two: after empty datagrams")
    d.wait_records(2)
    after_ok(d, 2)
    d.stop()
    assert sorted(r["msg"] for r in d.records()) == ["after empty datagrams",
                                                     "between empty lines", "still here"]
