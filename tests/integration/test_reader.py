"""Issue 18, the reader: `lograil` on lograild's files.

What is checked, against the real build/lograild and build/lograil:
- --follow while lograild rotates every 64 KiB at full speed (4 clients):
  every record exactly once and in order per client; with compression on;
  across a SIGHUP and a restart of lograild.  `tail -F` runs beside it and
  what it missed is printed, not asserted.
- --since/--until over a few hundred archives (plain, gzip, zstd) made here
  with the daemon's names, and over lograild's own archives, against a
  brute-force scan in Python.
- Filters and output formats against the same selection made in Python from
  `-o json`.
- Damaged files (truncated gzip, zstd cut in half, a live file without its
  last newline, binary garbage): named on stderr, the rest still read.

Under sanitizers (LOGRAIL_SAN=asan|tsan) the record counts of the follow
tests are divided by 8 (lograil and lograild are several times slower)."""

import datetime
import gzip
import json
import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import LOGRAILD, SAN, connect, deadline, scaled, stream_send, wait_until
from test_rotation import LINE, archives, client_lines, content
from test_writer import start_conf

LOGRAIL = os.environ.get("LOGRAIL") or os.path.join(os.path.dirname(LOGRAILD), "lograil")


def run(*args, check_rc=0, env=None):
    r = subprocess.run([LOGRAIL, "--no-pager", "--color=never"] + list(args), capture_output=True,
                       timeout=deadline(120), env=env)
    if check_rc is not None:
        assert r.returncode == check_rc, "lograil %s: exit %d, stderr:\n%s" % (
            " ".join(args), r.returncode, r.stderr.decode(errors="replace"))
    return r


def out_lines(r):
    assert r.stdout == b"" or r.stdout.endswith(b"\n")
    return r.stdout.split(b"\n")[:-1]


# ---- following -------------------------------------------------------------------

class Follower:
    """A process (lograil -f or tail -F) writing into a file."""

    def __init__(self, argv, path):
        self.path = path
        self.out = open(path, "wb")
        self.err = open(path + ".err", "wb")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err)

    def data(self):
        with open(self.path, "rb") as f:
            return f.read()

    def count(self):
        return self.data().count(b"\n")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(deadline(30))
        self.out.close()
        self.err.close()
        with open(self.path + ".err", "rb") as f:
            return f.read().decode(errors="replace")


def send_clients(stream, clients, lo, hi, chunk=500):
    errors = []

    def one(k):
        name = b"c%d" % k
        try:
            with connect(stream, timeout=300) as s:
                for a in range(lo, hi, chunk):
                    s.sendall(b"\n".join(client_lines(name, a, min(hi, a + chunk))) + b"\n")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("client %d: %r" % (k, e))

    ts = [threading.Thread(target=one, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


def per_client(lines):
    seqs = {}
    other = []
    for line in lines:
        m = LINE.match(line)
        if not m:
            other.append(line)
            continue
        seqs.setdefault(m.group(1), []).append(int(m.group(3)))
    return seqs, other


def report_tail(seen, clients, per, marker):
    seqs, _ = per_client(seen)
    missed = sum(per - len(set(seqs.get(b"c%d" % k, []))) for k in range(clients))
    doubled = sum(len(v) - len(set(v)) for v in seqs.values())
    print("\ntail -F beside lograil -f: missed %d of %d records, showed %d twice"
          % (missed, clients * per, doubled))


MARKER = b"<13>Nov 26 11:03:56 m: marker"


def follow_run(daemon, compress, events):
    """Four clients at full speed while lograil -f and tail -F follow a file
    that rotates every 64 KiB; events: "sighup" and "restart" happen after
    the first half."""
    clients = 4
    per = 100000 // (8 if SAN else 1)
    rotate = {"max_size": "64K", "keep": 0}
    if compress:
        rotate["compress"] = compress
    outs = [{"path": "log/out.raw", "format": "raw", "rotate": rotate}]
    d = start_conf(daemon, outs, queue=1024)
    live = d.path("log/out.raw")
    fl = Follower([LOGRAIL, "-f", "-n", "all", "--no-pager", "-o", "raw", "-q", live],
                  d.path("follow.out"))
    tl = Follower(["tail", "-n", "+1", "-F", live], d.path("tail.out"))
    try:
        # Both have the file open once they show the marker.
        stream_send(d.stream, MARKER + b"\n")
        wait_until(lambda: fl.data().startswith(MARKER + b"\n"), 30, "lograil -f to start")
        wait_until(lambda: tl.data().startswith(MARKER + b"\n"), 30, "tail -F to start")
        half = per // 2
        send_clients(d.stream, clients, 0, half)
        if "sighup" in events:
            d.send_signal(signal.SIGHUP)
        # The second half comes on new connections, which may land on the
        # other ingest thread: wait for the first half to be written, so
        # that each client's order is defined.
        wait_until(lambda: fl.count() >= 1 + clients * half, 120,
                   "lograil -f to show the first half")
        if "restart" in events:
            d.stop()
            d = start_conf(daemon, [dict(outs[0], path=live)], queue=1024)
        send_clients(d.stream, clients, half, per)
        want = 1 + clients * per
        wait_until(lambda: fl.count() >= want, 180,
                   "lograil -f to show %d lines (has %d)" % (want, fl.count()))
        # A little longer, so that a record shown twice would show.
        time.sleep(0.5)
        d.stop()
    finally:
        ferr = fl.stop()
        tl.stop()
    assert archives(live), "lograild did not rotate"
    seen = fl.data().split(b"\n")[:-1]
    assert seen[0] == MARKER
    seqs, other = per_client(seen[1:])
    assert not other, "lograil -f showed lines nobody sent: %r" % other[:5]
    for k in range(clients):
        got = seqs.get(b"c%d" % k, [])
        assert got == list(range(per)), (
            "client %d: %d lines of %d, %d distinct, in order: %s; lograil stderr: %s"
            % (k, len(got), per, len(set(got)), got == sorted(got), ferr))
    assert ferr == "", "lograil -f said: " + ferr
    tail_seen = tl.data().split(b"\n")[:-1]
    report_tail(tail_seen[1:], clients, per, MARKER)
    return d, live


@pytest.mark.slow
@pytest.mark.parametrize("compress", [None, "zstd"])
def test_follow_every_record_once_through_fast_rotation(daemon, compress):
    follow_run(daemon, compress, ())


@pytest.mark.slow
def test_follow_across_sighup_and_restart_with_gzip(daemon):
    follow_run(daemon, "gzip", ("sighup", "restart"))


def test_follow_finds_templated_files_as_they_appear(daemon):
    """An output per app: files that appear after lograil -f started are
    followed from their first line."""
    outs = [{"path": "log/%{app}.log", "format": "raw", "rotate": {"max_size": "16K"}}]
    d = start_conf(daemon, outs)
    conf = d.conf
    fl = Follower([LOGRAIL, "-f", "-q", "--no-pager", "-o", "raw", "-c", conf], d.path("f.out"))
    try:
        time.sleep(0.3)  # lograil has found no file yet; the test is that it finds them
        lines = []
        for k in range(3):
            name = b"app%d" % k
            batch = [b"<13>Nov 26 11:03:56 %s: %s-%07d" % (name, name, i) for i in range(2000)]
            stream_send(d.stream, b"\n".join(batch) + b"\n")
            lines += batch
        wait_until(lambda: fl.count() >= len(lines), 60,
                   "lograil -f to show the templated files' %d lines (has %d)"
                   % (len(lines), fl.count()))
        time.sleep(0.3)
    finally:
        fl.stop()
    assert archives(d.path("log/app0.log")), "no rotation of the templated files"
    assert sorted(fl.data().split(b"\n")[:-1]) == sorted(lines)


# ---- --since / --until ----------------------------------------------------------

T0 = datetime.datetime(2026, 11, 20, 10, 0, 0, tzinfo=datetime.timezone.utc)


def iso(us):
    t = T0 + datetime.timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_line(us, i):
    return json.dumps({"time": iso(us)[:-1] + "+00:00", "recv_time": iso(us), "facility": "user",
                       "severity": "info", "host": "h", "app": "gen", "msg": "record %d" % i,
                       "syntax": "raw"}, separators=(",", ":")).encode()


def rfc5424_line(us, i):
    return ("<14>1 %s h gen %d - - record %d" % (iso(us), i, i)).encode()


def trad_line(us, i):
    """Traditional: local time (the test runs lograil with TZ=UTC), whole
    seconds."""
    t = T0 + datetime.timedelta(microseconds=us)
    return ("%s %2d %s h gen[%d]: record %d" % (t.strftime("%b"), t.day, t.strftime("%H:%M:%S"),
                                                i, i)).encode()


def make_archives(dirpath, base, n_files, per_file, seed=1, line=None):
    """n_files archives of per_file records each (json_line unless told),
    then a live file; every third plain, gzip, zstd.  Returns [(us, line)]
    in order."""
    line = line or json_line
    rnd = random.Random(seed)
    recs = []
    us = 0
    zstd_todo = []
    last_stamp, seq = None, 0
    for f in range(n_files + 1):
        lines = []
        for _ in range(per_file):
            us += rnd.randrange(1, 2000000)
            lines.append(line(us, len(recs)))
            recs.append((us, lines[-1]))
        data = b"\n".join(lines) + b"\n"
        if f == n_files:
            with open(os.path.join(dirpath, base), "wb") as fh:
                fh.write(data)
            break
        # Rotation just after the last record: the name's second.
        rot = T0 + datetime.timedelta(microseconds=us + rnd.randrange(0, 500000))
        stamp = rot.strftime("%Y%m%dT%H%M%SZ")
        seq = seq + 1 if stamp == last_stamp else 0
        last_stamp = stamp
        name = os.path.join(dirpath, "%s.%s.%03d" % (base, stamp, seq))
        kind = f % 3
        if kind == 1:
            with gzip.open(name + ".gz", "wb") as fh:
                fh.write(data)
        else:
            with open(name, "wb") as fh:
                fh.write(data)
            if kind == 2:
                zstd_todo.append(name)
    if zstd_todo:
        subprocess.run(["zstd", "-q", "--rm", "-f"] + zstd_todo, check=True, timeout=deadline(120))
    return recs


def test_since_until_over_hundreds_of_archives(workdir):
    base = "many.json"
    recs = make_archives(workdir, base, 300, 40)
    live = os.path.join(workdir, base)
    names = os.listdir(workdir)
    assert sum(n.endswith(".gz") for n in names) >= 90 and sum(n.endswith(".zst") for n in names) >= 90
    rnd = random.Random(7)
    span = recs[-1][0]
    cases = [(None, iso(span // 2)), (iso(span // 3), None), (iso(0), iso(span + 1)),
             (iso(recs[100][0]), iso(recs[100][0])), (iso(span + 10**6), None)]
    for _ in range(8):
        a = rnd.randrange(0, span)
        b = a + rnd.randrange(0, span // 10)
        cases.append((iso(a), iso(b)))
    for since, until in cases:
        args = ["-q", "-o", "raw", live]
        if since:
            args += ["--since", since]
        if until:
            args += ["--until", until]
        got = out_lines(run(*args))
        lo = (datetime.datetime.strptime(since, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc) - T0) if since else None
        hi = (datetime.datetime.strptime(until, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc) - T0) if until else None
        lo = lo // datetime.timedelta(microseconds=1) if lo is not None else None
        hi = hi // datetime.timedelta(microseconds=1) if hi is not None else None
        want = [line for us, line in recs
                if (lo is None or us >= lo) and (hi is None or us <= hi)]
        assert got == want, "--since %s --until %s: %d lines, brute force %d" % (
            since, until, len(got), len(want))


@pytest.mark.parametrize("fmt", ["rfc5424", "traditional"])
def test_since_until_in_other_formats(workdir, fmt):
    """The binary search and the archive skipping read the times of rfc5424
    and traditional lines too (traditional: whole seconds, local time, the
    year from the file)."""
    base = "o." + fmt
    recs = make_archives(workdir, base, 60, 40, seed=4,
                         line=rfc5424_line if fmt == "rfc5424" else trad_line)
    live = os.path.join(workdir, base)
    env = dict(os.environ, TZ="UTC")
    rnd = random.Random(11)
    span = recs[-1][0]
    for _ in range(6):
        a = rnd.randrange(0, span)
        b = a + rnd.randrange(0, span // 5)
        if fmt == "traditional":  # whole seconds on both sides
            a, b = a // 10**6 * 10**6, b // 10**6 * 10**6
            key = lambda us: us // 10**6 * 10**6  # noqa: E731
        else:
            key = lambda us: us  # noqa: E731
        got = out_lines(run("-q", "-o", "raw", "--since", iso(a), "--until", iso(b), live,
                            env=env))
        want = [l for us, l in recs if a <= key(us) <= b]
        assert got == want, "%s: --since %s --until %s: %d lines, brute force %d" % (
            fmt, iso(a), iso(b), len(got), len(want))


def test_since_until_on_lograilds_own_archives(daemon):
    """Real archives (zstd) and a json live file from lograild, searched at
    the receive times the daemon wrote."""
    d = start_conf(daemon, [{"path": "log/out.json", "format": "json",
                             "rotate": {"max_size": "32K", "keep": 0, "compress": "zstd"}}])
    live = d.path("log/out.json")
    for r in range(5):
        stream_send(d.stream, b"\n".join(client_lines(b"c0", r * 400, (r + 1) * 400)) + b"\n")
        time.sleep(0.3)
    d.stop()
    assert len(archives(live)) >= 5
    allrecs = [json.loads(l) for l in out_lines(run("-q", "-o", "json", live))]
    assert len(allrecs) == 2000
    times = sorted(r["recv_time"] for r in allrecs)
    for a, b in [(times[100], times[1500]), (times[0], times[0]), (times[1999], times[1999]),
                 (times[700], times[701])]:
        got = [json.loads(l) for l in out_lines(run("-q", "-o", "json", live, "--since", a,
                                                    "--until", b))]
        want = [r for r in allrecs if a <= r["recv_time"] <= b]
        assert got == want, "--since %s --until %s" % (a, b)


def test_bad_times_and_options_are_usage_errors(workdir):
    p = os.path.join(workdir, "x.log")
    with open(p, "w") as f:
        f.write("hello\n")
    for args in (["--since", "2026-13-01"], ["-p", "loud"], ["-o", "xml"], ["--facility", "nope"],
                 ["-g", "("], ["-n", "-3"], ["--bogus"]):
        r = run(*(args + [p]), check_rc=2)
        assert r.stderr, args
    r = run(os.path.join(workdir, "missing.log"), check_rc=3)
    assert b"missing.log" in r.stderr
    r = run("-c", os.path.join(workdir, "nope.conf"), check_rc=1)
    assert b"nope.conf" in r.stderr


# ---- filters and formats -----------------------------------------------------------

SEVS = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
FACS = ["kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7"]


def esc(text):
    """The escaping of traditional and rfc5424 (#ooo for control bytes),
    which the daemon makes on the way in and which stays."""
    return re.sub(r"[\x00-\x1f\x7f]", lambda m: "#%03o" % ord(m.group()), text)


def fields(recs, keys, escaped):
    return [{k: (esc(r[k]) if escaped and k == "msg" else r.get(k)) for k in keys} for r in recs]


def test_filters_and_formats_match_python_over_json(daemon):
    outs = [{"path": "o.json", "format": "json"}, {"path": "o.5424", "format": "rfc5424"},
            {"path": "o.raw", "format": "raw"}, {"path": "o.trad", "format": "traditional"}]
    d = start_conf(daemon, outs)
    rnd = random.Random(3)
    msgs = []
    for i in range(3000):
        fac, sev = rnd.choice([1, 3, 4, 16, 23]), rnd.randrange(8)
        app = rnd.choice(["web", "db", "cron-job", "x"])
        host = rnd.choice(["alpha", "beta"])
        word = rnd.choice(["disk full", "login ok", "timeout 30s", "Quoted \"x\"", "tab\there"])
        msgs.append(b"<%d>1 2026-11-20T10:%02d:%02d.%06dZ %s %s %d - - %s n=%d" % (
            fac * 8 + sev, i // 60 % 60, i % 60, i, host.encode(), app.encode(), 1000 + i,
            word.encode(), i))
    stream_send(d.stream, b"\n".join(msgs) + b"\n")
    d.wait_lines(len(msgs), "o.trad")
    d.stop()
    j = d.path("o.json")
    base = [json.loads(l) for l in out_lines(run("-q", "-o", "json", j))]
    assert len(base) == len(msgs)
    # The same records read back from the other formats agree on what
    # those formats keep.
    for other, keys in [("o.5424", ["facility", "severity", "host", "app", "procid", "msg",
                                    "pid", "uid", "time"]),
                        ("o.raw", ["facility", "severity", "host", "app", "procid", "msg",
                                   "time"])]:
        recs = [json.loads(l) for l in out_lines(run("-q", "-o", "json", d.path(other)))]
        assert fields(recs, keys, False) == fields(base, keys, other == "o.5424"), other

    def sel(pred):
        return [r for r in base if pred(r)]

    cases = [
        (["-p", "warning"], lambda r: SEVS.index(r["severity"]) <= 4),
        (["-p", "warning..err"], lambda r: 3 <= SEVS.index(r["severity"]) <= 4),
        (["-p", "2..0"], lambda r: SEVS.index(r["severity"]) <= 2),
        (["--app", "db"], lambda r: r.get("app") == "db"),
        (["--app", "db", "--app", "x"], lambda r: r.get("app") in ("db", "x")),
        (["--host", "beta"], lambda r: r["host"] == "beta"),
        (["--facility", "local0,mail"], lambda r: r["facility"] in ("local0", "mail")),
        (["-g", "disk"], lambda r: "disk" in r["msg"]),
        (["-g", "^(login|timeout) [a-z0-9]+"], lambda r: re.match(r"^(login|timeout) [a-z0-9]+", r["msg"])),
        (["-g", "\"x\""], lambda r: '"x"' in r["msg"]),
        (["-p", "err", "--host", "alpha", "-g", "n=1[0-9]{3}$"],
         lambda r: SEVS.index(r["severity"]) <= 3 and r["host"] == "alpha"
         and re.search(r"n=1[0-9]{3}$", r["msg"])),
    ]
    for args, pred in cases:
        want = sel(pred)
        assert want, args
        for f in ("o.json", "o.5424", "o.raw"):
            got = [json.loads(l) for l in out_lines(run(*(["-q", "-o", "json"] + args +
                                                          [d.path(f)])))]
            keys = ["severity", "facility", "host", "app", "msg"]
            assert fields(got, keys, False) == fields(want, keys, f == "o.5424"), (args, f)
    # -o cat: the messages; -o raw: the stored lines; -o short: the
    # traditional line, as lograild writes it; -o rfc5424 of the json file
    # has the fields of the json.
    cat = out_lines(run("-q", "-o", "cat", j))
    assert cat == [r["msg"].replace("\n", "#012").encode() for r in base]
    with open(j, "rb") as f:
        assert out_lines(run("-q", "-o", "raw", j)) == f.read().split(b"\n")[:-1]
    with open(d.path("o.trad"), "rb") as f:
        trad = f.read().split(b"\n")[:-1]
    assert out_lines(run("-q", "-o", "short", d.path("o.trad"))) == trad
    assert out_lines(run("-q", "-o", "short", d.path("o.5424"))) == trad
    # Colour by severity when asked: red for err, bold red above, yellow
    # for warning; the text inside is the plain line.
    plain = out_lines(run("-q", "-p", "warning", j))
    colored = out_lines(run("-q", "-p", "warning", "--color=always", j))
    want_sevs = [r["severity"] for r in base if SEVS.index(r["severity"]) <= 4]
    assert len(colored) == len(plain) == len(want_sevs)
    codes = {"emerg": b"\033[1;31m", "alert": b"\033[1;31m", "crit": b"\033[1;31m",
             "err": b"\033[31m", "warning": b"\033[33m"}
    for c, p, sv in zip(colored, plain, want_sevs):
        assert c == codes[sv] + p + b"\033[0m", (c, p, sv)
    r5 = out_lines(run("-q", "-o", "rfc5424", j))
    for line, r in zip(r5, base):
        pri = FACS.index(r["facility"]) * 8 + SEVS.index(r["severity"])
        head = ("<%d>1 %s %s %s %s - " % (pri, r["time"], r["host"], r["app"], r["procid"])).encode()
        assert line.startswith(head), (line, head)
        assert line.endswith(esc(r["msg"]).encode()), line


# ---- damaged files ---------------------------------------------------------------

def test_damaged_files_are_named_and_the_rest_is_read(workdir):
    base = "bad.json"
    # 3000 records make a zstd archive of several blocks, so that half of
    # it still holds some.
    make_archives(workdir, base, 6, 3000, seed=5)
    live = os.path.join(workdir, base)
    arch = archives(live)
    assert len(arch) == 6
    lines_of = {a: content(a).split(b"\n")[:-1] for a in arch}
    # A gzip archive cut short, a zstd one cut in half, garbage in a plain
    # one, and a live file that a crash left without its last newline.
    gz = next(a for a in arch if a.endswith(".gz"))
    zs = next(a for a in arch if a.endswith(".zst"))
    pl = next(a for a in arch if not a.endswith((".gz", ".zst")))
    for p, keep in ((gz, 0.6), (zs, 0.5)):
        with open(p, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(data[: int(len(data) * keep)])
    with open(pl, "wb") as f:
        rnd = random.Random(1)
        f.write(bytes(rnd.randrange(256) for _ in range(20000)))
    with open(live, "ab") as f:
        f.write(json_line(10**12, 999999)[:50])
    r = run("-q", "-o", "raw", live, check_rc=3)
    err = r.stderr.decode(errors="replace")
    for p in (gz, zs, pl):
        assert os.path.basename(p) in err, "%s not named in:\n%s" % (p, err)
    assert "truncated gzip" in err and "zstd" in err and "binary data" in err
    assert "no newline" in err and os.path.basename(live) in err
    got = out_lines(r)
    # Every good archive whole, the cut ones as a prefix, in order.
    i = 0
    for a in arch:
        want = lines_of[a]
        if a == pl:
            while i < len(got) and not got[i].startswith(b'{"time"'):
                i += 1
            continue
        if a in (gz, zs):
            n = 0
            while n < len(want) and i < len(got) and got[i] == want[n]:
                i += 1
                n += 1
            assert 0 < n < len(want), "%s: %d of %d lines" % (a, n, len(want))
            continue
        assert got[i:i + len(want)] == want, a
        i += len(want)
    with open(live, "rb") as f:
        tail = f.read().split(b"\n")
    assert got[i:] == tail[:-1] + [tail[-1]]


# ---- -n ------------------------------------------------------------------------

def test_follow_holds_a_line_until_its_newline(workdir):
    """A last line without newline (a writer caught mid-line, or a crash
    that a restarted lograild ends) is shown once, whole, when it ends."""
    p = os.path.join(workdir, "h.log")
    with open(p, "wb") as f:
        f.write(b"first\nsec")
    fl = Follower([LOGRAIL, "-f", "-n", "all", "-q", "-o", "raw", p], p + ".f")
    try:
        wait_until(lambda: fl.count() >= 1, 30, "lograil -f to show the first line")
        time.sleep(0.5)
        assert fl.data() == b"first\n"
        with open(p, "ab") as f:
            f.write(b"ond\nthird\n")
        wait_until(lambda: fl.count() >= 3, 30, "lograil -f to show the ended line")
        time.sleep(0.3)
    finally:
        fl.stop()
    assert fl.data() == b"first\nsecond\nthird\n"


def test_last_lines_span_archives_and_follow_starts_after_them(workdir):
    base = "n.json"
    recs = make_archives(workdir, base, 20, 3, seed=9)
    live = os.path.join(workdir, base)
    lines = [line for _, line in recs]
    assert out_lines(run("-q", "-o", "raw", "-n", "10", live)) == lines[-10:]
    assert out_lines(run("-q", "-o", "raw", "-n", "1000", live)) == lines
    assert out_lines(run("-q", "-o", "raw", "-n", "0", live)) == []
    assert out_lines(run("-q", "-o", "raw", "-n", "4", "-g", "record [0-9]*7$", live)) == \
        [l for l in lines if re.search(rb"record [0-9]*7\"", l)][-4:]
    # -f: the last 5 (from the archives too: the live file has 3), then
    # what is appended.
    fl = Follower([LOGRAIL, "-f", "-n", "5", "-q", "-o", "raw", live], live + ".f")
    try:
        wait_until(lambda: fl.count() >= 5, 30, "lograil -f -n 5 to show 5 lines")
        more = [json_line(10**12 + i, 5000 + i) for i in range(3)]
        with open(live, "ab") as f:
            f.write(b"\n".join(more) + b"\n")
        wait_until(lambda: fl.count() >= 8, 30, "lograil -f to show the appended lines")
        time.sleep(0.3)
    finally:
        fl.stop()
    assert fl.data().split(b"\n")[:-1] == lines[-5:] + more


def test_pager_and_colour_on_a_terminal(workdir):
    """On a terminal the output goes through $LOGRAIL_PAGER, coloured; with
    --no-pager or -f it does not."""
    import pty
    p = os.path.join(workdir, "t.json")
    with open(p, "wb") as f:
        f.write(json_line(1, 1).replace(b'"info"', b'"err"') + b"\n" + json_line(2, 2) + b"\n")

    def on_tty(*args):
        pid, fd = pty.fork()
        if pid == 0:
            env = dict(os.environ, LOGRAIL_PAGER="sed 's/^/PAGED:/'")
            env.pop("NO_COLOR", None)
            os.execve(LOGRAIL, [LOGRAIL, "-q"] + list(args) + [p], env)
        out = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        return out.replace(b"\r\n", b"\n")

    out = on_tty()
    lines = out.split(b"\n")[:-1]
    assert len(lines) == 2 and all(l.startswith(b"PAGED:") for l in lines), out
    assert lines[0].startswith(b"PAGED:\033[31m") and b"\033[" not in lines[1], out
    out = on_tty("--no-pager", "--color=never")
    assert b"PAGED" not in out and b"\033[" not in out and out.count(b"\n") == 2, out
