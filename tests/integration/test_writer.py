"""Issue 4, the writer: formats on awkward input end to end, the timestamp
mode, routing by filter, per-record paths (hostile app names, the LRU of
open files), a partial last line, SIGHUP reopen, fsync policies, and a full
disk (held back clients, then a stop that counts what it lost).

Every test starts the real daemon and talks to it with real clients.  The
fixture's conf_group() only writes flat groups; outputs with a filter need
nested groups and arrays, so start_conf() below writes the whole file."""

import datetime
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import conf_value, connect, deadline, scaled, stream_send, wait_until

HOST = "h1"  # hostname = ...: written for local messages, which carry none


# ---- configuration with nested groups ---------------------------------------

def cval(v):
    """A libconfig value: dict -> group, list -> array, else a scalar."""
    if isinstance(v, dict):
        return "{ " + " ".join("%s = %s;" % (k, cval(x)) for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(cval(x) for x in v) + "]"
    return conf_value(v)


def start_conf(daemon, outputs, listen=None, queue=64, threads=2, extra="", start=True):
    """Like daemon(...), but outputs may hold nested groups (filter, rotate)
    and arrays.  Relative output paths and the names in
    filter.listeners are made absolute in the daemon's directory.  Returns
    the Daemon (started unless start=False); the fixture kills it at
    teardown."""
    if listen is None:
        listen = [{"path": "s.sock", "type": "stream"}, {"path": "d.sock", "type": "dgram"}]
    d = daemon.new(listen=listen, outputs=[{"path": o["path"]} for o in outputs],
                   queue=queue, threads=threads, extra=extra)
    outs = []
    for o in outputs:
        o = dict(o, path=d.path(o["path"]))
        o.setdefault("fsync", "never")
        if "filter" in o and "listeners" in o["filter"]:
            o["filter"] = dict(o["filter"], listeners=[d.path(p) for p in o["filter"]["listeners"]])
        outs.append(o)
    d.outputs = outs
    text = ["threads = %d;" % threads, "queue = { capacity = %d; };" % queue,
            "control = { path = %s; };" % cval(d.control or ""),
            "listen = (\n  " + ",\n  ".join(cval(l) for l in d.listen) + "\n);",
            "outputs = (\n  " + ",\n  ".join(cval(o) for o in outs) + "\n);",
            extra]
    with open(d.conf, "w") as f:
        f.write("\n".join(text) + "\n")
    return d.start() if start else d


def octets(*msgs):
    """RFC 6587 octet counting: a message may hold '\\n'."""
    return b"".join(b"%d %s" % (len(m), m) for m in msgs)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def file_lines(path):
    """Lines of a file that must end with '\\n' (or be empty)."""
    data = read_bytes(path)
    assert data == b"" or data.endswith(b"\n"), "%s does not end with a newline: %r" % (
        path, data[-80:])
    return data.split(b"\n")[:-1]


# ---- expected escaping (lib/format.h) -----------------------------------------

def utf8_len_at(b, i):
    """Length of the valid UTF-8 sequence starting at b[i], or 0."""
    for n in (2, 3, 4):
        try:
            if len(b[i:i + n].decode("utf-8")) == 1:
                return n
        except UnicodeDecodeError:
            pass
    return 0


def rsyslog_escape(b):
    """traditional / rfc5424 message escaping: 0x00-0x1f, 0x7f and every byte
    of an invalid UTF-8 sequence become '#' and three octal digits; valid
    multi-byte UTF-8 passes; '#' itself does not change."""
    out = bytearray()
    i = 0
    while i < len(b):
        c = b[i]
        if c < 0x80:
            out += b"#%03o" % c if c < 0x20 or c == 0x7f else bytes([c])
            i += 1
            continue
        n = utf8_len_at(b, i)
        if n:
            out += b[i:i + n]
            i += n
        else:
            out += b"#%03o" % c
            i += 1
    return bytes(out)


def raw_escape(b):
    return b.replace(b"\n", b"#012").replace(b"\r", b"#015").replace(b"\0", b"#000")


def no_control_bytes(line, allow_del):
    bad = [c for c in line if c < 0x20 or (c == 0x7f and not allow_del)]
    return not bad


# ---- 1. every format on awkward input --------------------------------------------

def _big():
    out = bytearray()
    k = 0
    while len(out) < 65536:
        out += b"%05d big line of the 64 KiB message\t\xc3\xa9 " % k + b"x" * 40 + b"\n"
        k += 1
    return bytes(out[:65535]) + b"z"


BIG = _big()
assert len(BIG) == 65536

# (case, body) sent as "<13>Nov 26 11:03:56 app: " + body
BODIES = [
    ("newline", b"line one\nline two\n\nend"),
    ("tab", b"col1\tcol2\t"),
    ("cr", b"carriage\rreturn\r\n"),
    ("nul", b"nul\x00byte\x00"),
    ("controls", b"bell\x07 esc\x1b[0m del\x7f vt\x0b ff\x0c bs\x08 us\x1f"),
    ("hash", b"# not escaped #012"),
    ("lone_continuation", b"lone \x80 continuation \xbf"),
    ("overlong", b"overlong \xc0\xaf and \xe0\x80\xaf and \xc1\xbf"),
    ("truncated", b"truncated \xe6\x97 mid, \xf0\x9f\x98 mid"),
    ("truncated_end", b"truncated at the end \xf0\x9f\x98"),
    ("surrogate", b"surrogate \xed\xa0\x80 and \xed\xbf\xbf"),
    ("beyond_max", b"beyond U+10FFFF \xf4\x90\x80\x80 and \xf5\x80 \xff\xfe"),
    ("valid_utf8", "é 日本 😀 ünïcödé \u2028 \u0085".encode()),
    ("quotes", b'quote " backslash \\ slash / {"json": 1}'),
    ("big", BIG),
    ("empty", b""),
]
# Lines without <PRI>: the whole line is the message (syntax "raw").
NOPRI = [
    ("nopri", b"no pri at all"),
    ("nopri_ctl", b"no pri\twith tab\nnewline and \xff invalid"),
]


def awkward_messages():
    msgs = []
    for case, body in BODIES:
        msgs.append((case, "rfc3164", b"<13>Nov 26 11:03:56 app: " + body, body))
    for case, line in NOPRI:
        msgs.append((case, "raw", line, line))
    return msgs


TRAD_TIME = rb"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"


def test_formats_on_awkward_input(daemon, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    d = daemon(listen=[{"path": "s.sock", "type": "stream", "max_message": "128K"}],
               outputs=[{"path": "out.trad", "format": "traditional"},
                        {"path": "out.5424", "format": "rfc5424"},
                        {"path": "out.json", "format": "json"},
                        {"path": "out.raw", "format": "raw"}],
               extra='hostname = "%s";' % HOST)
    msgs = awkward_messages()
    stream_send(d.stream, octets(*(m for _, _, m, _ in msgs)))
    d.wait_lines(len(msgs), "out.raw")
    d.wait_lines(len(msgs), "out.json")
    d.stop()

    files = {k: d.read("out." + k) for k in ("trad", "5424", "json", "raw")}
    for k, data in files.items():
        assert data.endswith(b"\n"), "out.%s does not end with a newline" % k
        lines = data.split(b"\n")[:-1]
        assert len(lines) == len(msgs), "out.%s: %d lines for %d records" % (k, len(lines), len(msgs))
        if k != "raw":
            for i, line in enumerate(lines):
                assert no_control_bytes(line, allow_del=(k == "json")), (
                    "out.%s, %s: raw control byte in %r" % (k, msgs[i][0], line[:300]))

    trad = files["trad"].split(b"\n")[:-1]
    r5424 = files["5424"].split(b"\n")[:-1]
    jlines = files["json"].split(b"\n")[:-1]
    raw = files["raw"].split(b"\n")[:-1]
    sd = rb' \[lograil@32473 pid="\d+" uid="\d+" gid="\d+"\]'
    for i, (case, syntax, msg, body) in enumerate(msgs):
        # raw: the bytes as received; only LF, CR and NUL escaped.
        assert raw[i] == raw_escape(msg), "raw, %s: %r" % (case, raw[i][:300])

        # traditional: escaped like rsyslog; "#012" for a newline, "#011" for a tab.
        esc = rsyslog_escape(body)
        if syntax == "rfc3164":
            want = b"Nov 26 11:03:56 h1 app:" + (b" " + esc if body else b"")
            assert trad[i] == want, "traditional, %s:\n got %r\nwant %r" % (case, trad[i][:300], want[:300])
        else:
            assert re.fullmatch(TRAD_TIME + rb" h1 " + re.escape(esc), trad[i]), (
                "traditional, %s: %r" % (case, trad[i][:300]))

        # rfc5424: header, our SD element, then the escaped message after a space.
        if syntax == "rfc3164":
            head = rb"<13>1 2026-11-26T11:03:56\.000000\+00:00 h1 app - -" + sd
        else:
            head = rb"<13>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 h1 - - -" + sd
        pat = head + (rb" " + re.escape(esc) if body else b"")
        assert re.fullmatch(pat, r5424[i]), "rfc5424, %s: %r" % (case, r5424[i][:300])

        # json: valid UTF-8, strict JSON, msg decoded with U+FFFD for each
        # maximal subpart of an invalid sequence (what Python's "replace" does).
        text = jlines[i].decode("utf-8")  # strict: raises on invalid UTF-8
        rec = json.loads(text)            # strict: rejects raw control characters
        want_msg = body.decode("utf-8", "replace")
        assert rec["msg"] == want_msg, "json, %s:\n got %r\nwant %r" % (case, rec["msg"][:300], want_msg[:300])
        rec["msg"].encode("utf-8")  # no lone surrogates from \\ud800-style escapes
        assert rec["syntax"] == syntax, (case, rec)
        assert rec["host"] == HOST and rec["facility"] == "user" and rec["severity"] == "notice", rec
        if syntax == "rfc3164":
            assert rec["app"] == "app", (case, rec)
        else:
            assert "app" not in rec, (case, rec)
        assert "truncated" not in rec and "parse_error" not in rec, (case, rec)

    # Spot checks of the rules the issue names, independent of the model above.
    by_case = {m[0]: i for i, m in enumerate(msgs)}
    assert trad[by_case["newline"]].endswith(b"app: line one#012line two#012#012end")
    assert trad[by_case["tab"]].endswith(b"app: col1#011col2#011")
    assert trad[by_case["nul"]].endswith(b"app: nul#000byte#000")
    assert trad[by_case["lone_continuation"]].endswith(b"app: lone #200 continuation #277")
    assert trad[by_case["valid_utf8"]].endswith("app: é 日本 😀 ünïcödé \u2028 \u0085".encode())
    assert json.loads(jlines[by_case["surrogate"]])["msg"] == "surrogate \ufffd\ufffd\ufffd and \ufffd\ufffd\ufffd"
    assert json.loads(jlines[by_case["truncated"]])["msg"] == "truncated \ufffd mid, \ufffd mid"
    assert json.loads(jlines[by_case["overlong"]])["msg"] == "overlong \ufffd\ufffd and \ufffd\ufffd\ufffd and \ufffd\ufffd"
    assert json.loads(jlines[by_case["empty"]])["msg"] == ""
    assert len(json.loads(jlines[by_case["big"]])["msg"]) == len(BIG.decode())

    # jq too (mk/deps.sh installs it; missing, this fails rather than skip).
    assert shutil.which("jq"), "jq is missing (mk/deps.sh installs it)"
    with open(d.path("out.json"), "rb") as f:
        r = subprocess.run(["jq", "-c", "."], stdin=f, capture_output=True, timeout=deadline(60))
    assert r.returncode == 0, "jq rejects out.json: %s" % r.stderr.decode(errors="replace")
    assert r.stdout.count(b"\n") == len(msgs)


def test_invalid_utf8_in_header_fields(daemon, monkeypatch):
    """App, procid and host come from the client too: traditional escapes
    them, rfc5424 keeps only PRINTUSASCII, json stays valid UTF-8."""
    monkeypatch.setenv("TZ", "UTC")
    d = daemon(outputs=[{"path": "out.trad", "format": "traditional"},
                        {"path": "out.5424", "format": "rfc5424"},
                        {"path": "out.json", "format": "json"}],
               extra='hostname = "%s";' % HOST)
    msgs = [b"<13>Nov 26 11:03:56 \xc3\xa9p\xff: tag with invalid byte",
            b"<13>1 2026-11-26T11:03:56Z h\xc3\xa9st\x80 \xe6\x97app 4\xff2 M\xed\xa0\x80ID - header bytes"]
    stream_send(d.stream, octets(*msgs))
    d.wait_lines(len(msgs), "out.json")
    d.stop()
    for k in ("out.trad", "out.5424", "out.json"):
        lines = d.lines(k)
        assert len(lines) == len(msgs), (k, lines)
        for line in lines:
            assert no_control_bytes(line, allow_del=(k == "out.json")), (k, line)
            if k == "out.json":
                json.loads(line.decode("utf-8"))
    trad = d.lines("out.trad")
    assert trad[0] == "Nov 26 11:03:56 h1 ép#377: tag with invalid byte".encode()
    assert trad[1] == "Nov 26 11:03:56 hést#200 #346#227app[4#3772]: header bytes".encode()
    sd = rb' \[lograil@32473 pid="\d+" uid="\d+" gid="\d+"\]'
    r5424 = d.lines("out.5424")
    assert re.fullmatch(rb"<13>1 2026-11-26T11:03:56\.000000\+00:00 h1 __p_ - -" + sd
                        + rb" tag with invalid byte", r5424[0]), r5424[0]
    assert re.fullmatch(rb"<13>1 2026-11-26T11:03:56\.000000\+00:00 h__st_ __app 4_2 M___ID" + sd
                        + rb" header bytes", r5424[1]), r5424[1]
    a, b = d.records("out.json")
    assert (a["host"], a["app"]) == (HOST, "ép\ufffd"), a
    assert (b["host"], b["app"], b["procid"], b["msgid"]) == (
        "hést\ufffd", "\ufffdapp", "4\ufffd2", "M\ufffd\ufffd\ufffdID"), b


# ---- 2. the timestamp mode ------------------------------------------------------

def instant(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


TS_MSGS = [b"<13>1 2001-02-03T04:05:06.789Z host app - - - m5424",
           b"<13>Feb  3 04:05:06 app: m3164",
           b"plain line without pri"]


def test_timestamp_received(daemon, monkeypatch):
    # A zone with a half-hour offset, so that "time" (local offset) and
    # "recv_time" (Z) differ as text and must be compared as instants.
    monkeypatch.setenv("TZ", "LRT-05:30")
    d = daemon(outputs=[{"path": "out.json", "format": "json"},
                        {"path": "out.trad", "format": "traditional"}],
               extra='timestamp = "received";')
    stream_send(d.stream, b"\n".join(TS_MSGS) + b"\n")
    d.wait_lines(len(TS_MSGS), "out.json")
    d.stop()
    recs = d.records("out.json")
    assert [r["msg"] for r in recs] == ["m5424", "m3164", "plain line without pri"]
    for r in recs:
        assert r["recv_time"].endswith("Z"), r
        assert instant(r["time"]) == instant(r["recv_time"]), r
        assert not r["time"].startswith("2001") and r["time"].endswith("+05:30"), r
    for line in d.lines("out.trad"):
        assert not line.startswith(b"Feb  3 04:05:06"), line


def test_timestamp_message_is_default(daemon, monkeypatch):
    monkeypatch.setenv("TZ", "LRT-05:30")
    d = daemon(outputs=[{"path": "out.json", "format": "json"}])
    stream_send(d.stream, b"\n".join(TS_MSGS) + b"\n")
    d.wait_lines(len(TS_MSGS), "out.json")
    d.stop()
    r5424, r3164, plain = d.records("out.json")
    assert instant(r5424["time"]) == instant("2001-02-03T04:05:06.789Z"), r5424
    assert instant(r5424["time"]) != instant(r5424["recv_time"])
    # RFC 3164 carries no year and no zone: local time, the offset of TZ.
    assert r3164["time"][4:] == "-02-03T04:05:06.000000+05:30", r3164
    # Without a time of its own a record shows its receive time.
    assert instant(plain["time"]) == instant(plain["recv_time"]), plain


# ---- 3. routing ------------------------------------------------------------------

ROUTE_OUTPUTS = [
    {"path": "all.json", "format": "json"},
    {"path": "err.json", "format": "json", "filter": {"severity": "err"}},
    {"path": "auth.json", "format": "json", "filter": {"facilities": ["auth", "authpriv"]}},
    {"path": "sshd.json", "format": "json", "filter": {"apps": ["sshd"]}},
    {"path": "dgram.json", "format": "json", "filter": {"listeners": ["d.sock"]}},
    {"path": "combo.json", "format": "json", "filter": {"severity": "warning", "apps": ["sudo", "su"]}},
]

# (text, transport, priority, tag, outputs besides all.json)
ROUTE_CASES = [
    ("r01", "-T", "auth.err", "sshd", {"err", "auth", "sshd"}),
    ("r02", "-d", "auth.info", "sshd", {"auth", "sshd", "dgram"}),
    ("r03", "-d", "authpriv.notice", "sudo", {"auth", "dgram"}),
    ("r04", "-T", "user.crit", "app", {"err"}),
    ("r05", "-T", "daemon.debug", "sshd", {"sshd"}),
    ("r06", "-d", "mail.emerg", "postfix", {"err", "dgram"}),
    ("r07", "-T", "local0.warning", "sudo", {"combo"}),
    ("r08", "-d", "user.info", "sshdx", {"dgram"}),
    ("r09", "-T", "auth.debug", "ssh", {"auth"}),
    ("r10", "-T", "authpriv.alert", "su", {"err", "auth", "combo"}),
    ("r11", "-d", "daemon.warning", "sshd", {"sshd", "dgram"}),
    ("r12", "-T", "local7.notice", "sudo", set()),
]


def test_routing_by_filter(daemon):
    d = start_conf(daemon, ROUTE_OUTPUTS)
    for text, transport, pri, tag, _ in ROUTE_CASES:
        sock = d.stream if transport == "-T" else d.dgram
        r = subprocess.run(["logger", "-u", sock, "--socket-errors=on", transport, "-p", pri,
                            "-t", tag, text], capture_output=True, timeout=deadline(60))
        assert r.returncode == 0, r.stderr
    d.wait_lines(len(ROUTE_CASES), "all.json")
    d.stop()
    names = ["all", "err", "auth", "sshd", "dgram", "combo"]
    # Sorted: records from different sockets (and so different ingest
    # threads) need not reach the writer in the order logger sent them.
    got = {n: sorted(r["msg"] for r in d.records(n + ".json")) for n in names}
    for n in names:
        want = [t for t, _, _, _, outs in ROUTE_CASES if n == "all" or n in outs]
        assert got[n] == want, "%s.json: got %s, want %s" % (n, got[n], want)
    # Each record as sent: the fields the filters looked at.
    recs = {r["msg"]: r for r in d.records("all.json")}
    for text, _, pri, tag, _ in ROUTE_CASES:
        fac, sev = pri.split(".")
        assert (recs[text]["facility"], recs[text]["severity"], recs[text]["app"]) == (fac, sev, tag)


# ---- 4. path placeholders --------------------------------------------------------

def sanitize(v):
    """lib/route.h: one harmless path component."""
    v = v[:64]
    if not v:
        return "unknown"
    return "".join(c if (c.isascii() and (c.isalnum() or c in "_-" or (c == "." and i > 0))) else "_"
                   for i, c in enumerate(v))


HOSTILE = ["one", "two", "../../etc/passwd", "..", ".hidden", "a/b", "...", "x/../../y",
           "%2e%2e", "./", "-"]


# RFC 5424 HOSTNAME values; "-" is none (the local name stands in).
HOSTILE_HOSTS = ["../../etc", "..", ".h", "x/y", "L" * 200, "-"]


def snapshot(path):
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, read_bytes(path))


def walk_files(top):
    out = set()
    for root, dirs, files in os.walk(top):
        for n in files:
            out.add(os.path.relpath(os.path.join(root, n), top))
    return out


def test_path_placeholders_stay_inside(daemon):
    before = snapshot("/etc/passwd")
    d = start_conf(daemon, [
        {"path": "all.json", "format": "json"},
        {"path": "apps/%{app}.log", "format": "raw"},
        {"path": "fs/%{facility}/%{severity}.log", "format": "raw"},
        {"path": "hosts/%{host}/u%{uid}.log", "format": "raw"},
    ], extra='hostname = "%s";' % HOST)
    apps_dir = d.path("apps") + "/"
    escapes = [p for p in (os.path.normpath(os.path.join(apps_dir, a + ".log")) for a in HOSTILE)
               if not p.startswith(apps_dir)]
    existed = {p for p in escapes if os.path.exists(p)}
    msgs = []
    for i, app in enumerate(HOSTILE):
        # RFC 5424 APP-NAME may hold '/' and '.'; so may an RFC 3164 tag.
        host = HOSTILE_HOSTS[i % len(HOSTILE_HOSTS)]
        msgs.append(b"<%d>1 - %s %s - - - five %d" % (8 + i % 8, host.encode(), app.encode(), i))
        msgs.append(b"<%d>Nov 26 11:03:56 %s: three %d" % (32 + i % 8, app.encode(), i))
    stream_send(d.stream, b"\n".join(msgs) + b"\n")
    d.wait_lines(len(msgs), "all.json")
    d.stop()

    recs = d.records("all.json")
    assert len(recs) == len(msgs)
    want_files = {}
    want_fs = {}
    want_hosts = {}
    for m, r in zip(msgs, recs):
        want_hosts.setdefault("hosts/%s/u%d.log" % (sanitize(r["host"]), r["uid"]), []).append(raw_escape(m))
        assert r["msg"].split()[0] in ("five", "three"), r
        want_files.setdefault("apps/%s.log" % sanitize(r.get("app", "")), []).append(raw_escape(m))
        want_fs.setdefault("fs/%s/%s.log" % (r["facility"], r["severity"]), []).append(raw_escape(m))
    # The hostile names arrived as apps (else this test would prove nothing).
    apps = {r.get("app") for r in recs}
    for a in ("../../etc/passwd", "..", ".hidden", "a/b"):
        assert a in apps, "app %r was not parsed as such: %s" % (a, sorted(map(str, apps)))
    assert "apps/_._.._etc_passwd.log" in want_files and "apps/_..log" in want_files
    assert "apps/_hidden.log" in want_files and "apps/a_b.log" in want_files
    hosts = {r["host"] for r in recs}
    for h in HOSTILE_HOSTS[:-1]:
        assert h in hosts, "host %r was not parsed as such: %s" % (h, sorted(hosts))
    assert "hosts/_._.._etc/u%d.log" % os.getuid() in want_hosts
    assert "hosts/%s/u%d.log" % ("L" * 64, os.getuid()) in want_hosts
    assert "hosts/%s/u%d.log" % (HOST, os.getuid()) in want_hosts

    files = walk_files(d.dir)
    expect = ({"lograild.conf", "lograild.stderr", "all.json"} | set(want_files) | set(want_fs)
              | set(want_hosts))
    assert files == expect, "unexpected files %s; missing %s" % (sorted(files - expect),
                                                                 sorted(expect - files))
    for rel, lines in list(want_files.items()) + list(want_fs.items()) + list(want_hosts.items()):
        assert file_lines(d.path(rel)) == lines, rel
    for p in escapes:
        assert p in existed or not os.path.exists(p), "a client's app name created %s" % p
    assert snapshot("/etc/passwd") == before, "/etc/passwd changed"
    assert not os.path.exists(os.path.join(os.path.dirname(d.dir), "etc", "passwd.log"))


def test_max_files_lru_every_record_once(daemon):
    apps = ["a%d" % k for k in range(5)]
    n = scaled(400)
    d = start_conf(daemon, [{"path": "lru/%{app}.log", "format": "raw", "max_files": 2},
                            {"path": "all.raw", "format": "raw"}])
    # Interleaved over several connections and sends, so that files are
    # evicted inside a batch and across batches.
    order = [(i, apps[(i * 3 + i // 7) % 5]) for i in range(n)]
    per_conn = 4
    for c in range(per_conn):
        part = order[c::per_conn]
        with connect(d.stream) as s:
            for j in range(0, len(part), 17):
                s.sendall(b"".join(b"<13>Nov 26 11:03:56 %s: rec %06d\n" % (a.encode(), i)
                                   for i, a in part[j:j + 17]))
    d.wait_lines(n, "all.raw")
    lru_dir = d.path("lru")
    open_now = [os.readlink("/proc/%d/fd/%s" % (d.pid, fd)) for fd in os.listdir("/proc/%d/fd" % d.pid)]
    open_lru = [p for p in open_now if p.startswith(lru_dir + "/")]
    assert len(open_lru) <= 2, "max_files = 2 but open: %s" % open_lru
    d.stop()
    all_lines = d.lines("all.raw")
    assert len(all_lines) == n
    for a in apps:
        want = [l for l in all_lines if l.startswith(b"<13>Nov 26 11:03:56 %s: " % a.encode())]
        got = file_lines(os.path.join(lru_dir, a + ".log"))
        assert got == want, "%s.log: %d lines, want %d; duplicates %d" % (
            a, len(got), len(want), len(got) - len(set(got)))
    assert sorted(os.listdir(lru_dir)) == sorted(a + ".log" for a in apps)


# ---- 5. a partial last line ---------------------------------------------------------

def test_partial_last_line_gets_a_newline(daemon):
    d = start_conf(daemon, [{"path": "out.raw", "format": "raw"},
                            {"path": "apps/%{app}.log", "format": "raw"}], start=False)
    os.makedirs(d.path("apps"))
    with open(d.path("out.raw"), "wb") as f:
        f.write(b"partial")
    with open(d.path("apps/x.log"), "wb") as f:
        f.write(b"partial x")
    with open(d.path("apps/y.log"), "wb") as f:
        f.write(b"complete y\n")
    open(d.path("apps/z.log"), "wb").close()
    d.start()
    msgs = [b"<13>Nov 26 11:03:56 %s: m%d" % (a, i) for i, a in enumerate([b"x", b"y", b"z", b"x"])]
    stream_send(d.stream, b"\n".join(msgs) + b"\n")
    d.wait_lines(1 + len(msgs), "out.raw")
    d.stop()
    assert read_bytes(d.path("out.raw")) == b"partial\n" + b"".join(m + b"\n" for m in msgs)
    assert read_bytes(d.path("apps/x.log")) == b"partial x\n" + msgs[0] + b"\n" + msgs[3] + b"\n"
    assert read_bytes(d.path("apps/y.log")) == b"complete y\n" + msgs[1] + b"\n"
    assert read_bytes(d.path("apps/z.log")) == msgs[2] + b"\n"


def test_partial_last_line_untouched_file_stays(daemon):
    """Opening a partial file adds only the '\\n'; a clean stop adds nothing."""
    d = daemon.new(outputs=[{"path": "out.raw", "format": "raw"}])
    with open(d.path("out.raw"), "wb") as f:
        f.write(b"partial")
    d.start()
    d.stop()
    assert read_bytes(d.path("out.raw")) == b"partial\n"


# ---- 6. SIGHUP reopen -------------------------------------------------------------------

def test_sighup_reopens_after_rename(daemon):
    n = scaled(500)
    d = start_conf(daemon, [{"path": "out.raw", "format": "raw"},
                            {"path": "apps/%{app}.log", "format": "raw"}])

    def batch(tag, lo, hi):
        return [b"<13>Nov 26 11:03:56 %s: %s %06d" % (tag, tag, i) for i in range(lo, hi)]

    first = batch(b"a", 0, n)
    stream_send(d.stream, b"\n".join(first) + b"\n")
    d.wait_lines(n, "out.raw")
    wait_until(lambda: len(file_lines(d.path("apps/a.log"))) == n, 30, "apps/a.log")
    os.rename(d.path("out.raw"), d.path("out.raw.1"))
    os.rename(d.path("apps/a.log"), d.path("apps/a.log.1"))
    reopened = d.stderr().count("outputs reopened")
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: d.stderr().count("outputs reopened") > reopened, 30, "the reopen")
    assert os.path.exists(d.path("out.raw")), "SIGHUP did not create a new file at the path"
    second = batch(b"a", n, 2 * n)
    stream_send(d.stream, b"\n".join(second) + b"\n")
    d.wait_lines(n, "out.raw")
    d.stop()
    assert file_lines(d.path("out.raw.1")) == first
    assert file_lines(d.path("out.raw")) == second
    assert file_lines(d.path("apps/a.log.1")) == first
    assert file_lines(d.path("apps/a.log")) == second


def test_sighup_without_rename_appends(daemon):
    """A SIGHUP with nothing renamed: same file, nothing lost or doubled."""
    d = daemon(outputs=[{"path": "out.raw", "format": "raw"}])
    sent = []
    for k in range(3):
        part = [b"<13>Nov 26 11:03:56 app: hup%d %d" % (k, i) for i in range(50)]
        sent += part
        stream_send(d.stream, b"\n".join(part) + b"\n")
        d.wait_lines(len(sent), "out.raw")
        d.send_signal(signal.SIGHUP)
        # Two SIGHUPs that arrive before the writer has taken the first are one
        # reopen (a pending signal is a flag, not a count): wait for each.
        wait_until(lambda: d.stderr().count("outputs reopened") >= k + 1, 30,
                   "reopen %d" % (k + 1))
    d.stop()
    assert d.lines("out.raw") == sent


# ---- 7. fsync policies ---------------------------------------------------------------------

@pytest.mark.parametrize("fsync", ["always", "1s", "100ms"])
def test_fsync_policies(daemon, fsync):
    n = scaled(2000)
    d = start_conf(daemon, [{"path": "out.raw", "format": "raw", "fsync": fsync},
                            {"path": "apps/%{app}.log", "format": "json", "fsync": fsync}])
    ts = []
    for c in range(4):
        data = b"".join(b"<13>Nov 26 11:03:56 c%d: c%d %06d\n" % (c, c, i) for i in range(n // 4))
        ts.append(threading.Thread(target=stream_send, args=(d.stream, data)))
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # Records arrive while the daemon runs, whatever the fsync policy.
    d.wait_lines(n // 4 * 4, "out.raw")
    assert d.alive()
    d.stop()
    lines = d.lines("out.raw")
    for c in range(4):
        mine = [l for l in lines if l.startswith(b"<13>Nov 26 11:03:56 c%d:" % c)]
        assert mine == [b"<13>Nov 26 11:03:56 c%d: c%d %06d" % (c, c, i) for i in range(n // 4)]
        recs = d.records("apps/c%d.log" % c)
        assert [r["msg"] for r in recs] == ["c%d %06d" % (c, i) for i in range(n // 4)]


# ---- 8. disk full ----------------------------------------------------------------------------

def fill_up(directory):
    """Fill the file system of directory until ENOSPC; return the filler's path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 65536, 4096, 1):
            chunk = b"\0" * size
            while True:
                try:
                    if os.write(fd, chunk) == 0:
                        break
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    # Nothing fits any more, not even one byte in a new file.
    probe = os.path.join(directory, "probe")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError) as ei:
            os.write(fd, b"x")
        assert ei.value.errno == errno.ENOSPC
    finally:
        os.close(fd)
        os.unlink(probe)
    return path




DF_LINE = re.compile(rb"^<13>Nov 26 11:03:56 df: (\d{6}) x+$")


def test_disk_full_holds_clients_back_then_recovers(small_fs, daemon):
    filler = fill_up(small_fs)
    n = 2000
    d = daemon(queue=16, outputs=[{"path": os.path.join(small_fs, "out.raw"), "format": "raw"}])
    # 2000 x 1 KiB: far more than the socket buffers, the queue of 16 and
    # one read slice can hold, so the client must be held back.
    data = b"".join(b"<13>Nov 26 11:03:56 df: %06d %s\n" % (i, b"x" * 990) for i in range(n))
    errors = []

    def client():
        try:
            with connect(d.stream, timeout=300) as s:
                s.sendall(data)
        except Exception as e:
            errors.append(repr(e))

    t = threading.Thread(target=client, daemon=True)
    t.start()
    wait_until(lambda: "cannot write" in d.stderr(), 60, "the daemon to report the write failure")
    assert "No space left on device" in d.stderr(), d.stderr()
    # Held back, not merely slow: it stays blocked while the disk is full.
    time.sleep(0.5)
    assert d.alive(), d.stderr()
    assert t.is_alive(), "the client finished although nothing could be written: %s" % errors
    assert d.read(os.path.join(small_fs, "out.raw")) == b""
    os.unlink(filler)
    t.join(deadline(120))
    assert not t.is_alive(), "the client is still held back after space came back"
    assert not errors, errors
    d.wait_lines(n, os.path.join(small_fs, "out.raw"), timeout=120)
    assert d.alive()
    d.stop()
    assert "writing again" in d.stderr()
    lines = d.lines(os.path.join(small_fs, "out.raw"))
    seq = []
    for line in lines:
        m = DF_LINE.match(line)
        assert m, "unexpected line %r" % line[:120]
        seq.append(int(m.group(1)))
    assert seq == list(range(n)), "%d lines, %d distinct, in order: %s" % (
        len(seq), len(set(seq)), seq == sorted(seq))


def test_disk_full_stop_counts_the_lost(small_fs, daemon):
    fill_up(small_fs)
    n = 300
    out = os.path.join(small_fs, "out.raw")
    d = daemon(queue=16, outputs=[{"path": out, "format": "raw"}], extra='stop_timeout = "1s";')
    data = b"".join(b"<13>Nov 26 11:03:56 df: %06d x\n" % i for i in range(n))
    # 300 short lines fit in the socket buffers: the client is done at once.
    stream_send(d.stream, data)
    wait_until(lambda: "cannot write" in d.stderr(), 60, "the daemon to report the write failure")
    d.stop(expect=4, timeout=30)
    err = d.stderr()
    m = re.search(r"stopped: (\d+) records were lost", err)
    assert m, "no loss report in stderr:\n" + err
    written = d.lines(out)
    for line in written:
        assert DF_LINE.match(line), line
    assert int(m.group(1)) == n - len(written), "reported %s lost, file has %d of %d:\n%s" % (
        m.group(1), len(written), n, err)


def test_disk_full_stop_leaves_no_half_record(small_fs, daemon):
    """A write(2) that the full disk cuts inside a line, then a stop that
    gives up: the records it could not finish are counted as lost, and the
    file must not end with half a record ("Records are never half-written:
    every record on disk ends with a newline", DESIGN.md)."""
    filler = fill_up(small_fs)
    # Free a little less than three pages: the first batch of 1 KiB lines
    # fits only in part, and the kernel's partial write stops mid-line.
    with open(filler, "r+b") as f:
        f.truncate(os.path.getsize(filler) - 10000)
    n = 100
    out = os.path.join(small_fs, "out.raw")
    d = daemon(queue=16, outputs=[{"path": out, "format": "raw"}], extra='stop_timeout = "1s";')
    data = b"".join(b"<13>Nov 26 11:03:56 df: %06d %s\n" % (i, b"x" * 990) for i in range(n))
    stream_send(d.stream, data)
    wait_until(lambda: "cannot write" in d.stderr(), 60, "the daemon to report the write failure")
    size = os.path.getsize(out)
    assert size > 0, "nothing fitted: the test did not make a partial write"
    d.stop(expect=4, timeout=30)
    err = d.stderr()
    m = re.search(r"stopped: (\d+) records were lost", err)
    assert m, "no loss report in stderr:\n" + err
    data = d.read(out)
    complete = data.count(b"\n")
    assert int(m.group(1)) == n - complete, err
    assert data.endswith(b"\n"), (
        "after giving up, %s ends with half a record (%d bytes after the last newline of %d "
        "complete records)" % (out, len(data) - data.rfind(b"\n") - 1, complete))
