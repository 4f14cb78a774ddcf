"""Issue 14, points 1 and 2: no symbolic link is followed at an output, and
thousands of per-app files stay cheap.

Symlinks.  A fixed output path that is a symlink stops the start (exit 3,
the target untouched).  A templated file (apps/evil.log) or a directory a
template makes (hosts/evil/) that is a symlink is refused: the target is
untouched, the refusal is logged once with the path and counted
(files_refused, records_refused), and every other output gets every
record.  A symlink in the part of the path the operator wrote is followed
(a log directory on another disk).  A symlink put at a fixed path before
SIGHUP is refused by the reopen; once it is gone, the next SIGHUP writes
there again.

Per-app files.  10,000 app names through a %{app} output with max_files =
64, rotation and compression: the daemon's descriptors, sampled from
/proc/PID/fd while it runs, never pass max_files plus what it held before
the burst plus a small constant, and the catch-all file has every record."""

import os
import signal
import threading
import time

from conftest import deadline, scaled, stream_send, wait_until
from test_writer import file_lines, start_conf

VICTIM = b"precious: not a log file\n"


def line(app, i, host=None):
    if host is not None:
        return b"<13>1 - %s %s - - - m-%07d" % (host, app, i)
    return b"<13>Nov 26 11:03:56 %s: m-%07d" % (app, i)


def victim(d, name="victim"):
    p = d.path(name)
    with open(p, "wb") as f:
        f.write(VICTIM)
    return p


def out_stats(d, path):
    return d.stats()["output " + d.path(path)]


def test_fixed_output_symlink_refuses_to_start(daemon):
    d = start_conf(daemon, [{"path": "messages.log", "format": "raw"}], start=False)
    target = victim(d)
    os.symlink(target, d.path("messages.log"))
    rc = d.start_failing()
    err = d.stderr()
    assert rc == 3, "exit code %d, expected 3 (start-up failure):\n%s" % (rc, err)
    assert "messages.log" in err and "symbolic link" in err, err
    assert open(target, "rb").read() == VICTIM


def test_symlink_in_the_configured_part_is_followed(daemon):
    """/var/log -> /data/log is the operator's choice: a literal directory
    of the path may be a symlink, for fixed and templated outputs."""
    d = start_conf(daemon, [{"path": "logs/messages.log", "format": "raw"},
                            {"path": "logs/apps/%{app}.log", "format": "raw"}], start=False)
    os.makedirs(d.path("real"))
    os.symlink(d.path("real"), d.path("logs"))
    d.start()
    msgs = [line(b"a1", i) for i in range(10)]
    stream_send(d.stream, b"\n".join(msgs) + b"\n")
    d.wait_lines(10, "logs/messages.log")
    d.stop()
    assert file_lines(d.path("real/messages.log")) == msgs
    assert file_lines(d.path("real/apps/a1.log")) == msgs


def test_symlink_at_templated_file_is_refused(daemon):
    d = start_conf(daemon, [{"path": "apps/%{app}.log", "format": "raw"},
                            {"path": "all.raw", "format": "raw"}], start=False)
    target = victim(d)
    os.makedirs(d.path("apps"))
    os.symlink(target, d.path("apps/evil.log"))
    d.start()
    n = scaled(3000)
    msgs = [line(b"evil" if i % 3 == 0 else b"good", i) for i in range(n)]
    stream_send(d.stream, b"\n".join(msgs) + b"\n")
    d.wait_lines(n, "all.raw")
    evil = [m for m in msgs if b" evil: " in m]
    st = wait_until(lambda: (lambda s: s if s["records_refused"] == len(evil) else None)(
        out_stats(d, "apps/%{app}.log")), 30, "records_refused to reach %d" % len(evil))
    assert st["files_refused"] >= 1, st
    d.stop()
    assert open(target, "rb").read() == VICTIM, "the symlink's target was written to"
    assert os.path.islink(d.path("apps/evil.log"))
    assert file_lines(d.path("all.raw")) == msgs
    assert file_lines(d.path("apps/good.log")) == [m for m in msgs if b" good: " in m]
    err = d.stderr()
    refusals = [l for l in err.splitlines() if "apps/evil.log: refused" in l]
    assert len(refusals) == 1, "expected the refusal logged once:\n" + err
    assert "symbolic link" in refusals[0]


def test_symlink_at_templated_directory_is_refused(daemon):
    d = start_conf(daemon, [{"path": "hosts/%{host}/%{app}.log", "format": "raw"},
                            {"path": "all.raw", "format": "raw"}], start=False)
    os.makedirs(d.path("hosts"))
    os.makedirs(d.path("elsewhere"))
    os.symlink(d.path("elsewhere"), d.path("hosts/evil"))
    d.start()
    n = scaled(2000)
    msgs = [line(b"app", i, b"evil" if i % 2 else b"good") for i in range(n)]
    stream_send(d.stream, b"\n".join(msgs) + b"\n")
    d.wait_lines(n, "all.raw")
    evil = [m for m in msgs if b" evil app " in m]
    wait_until(lambda: out_stats(d, "hosts/%{host}/%{app}.log")["records_refused"] == len(evil),
               30, "records_refused to reach %d" % len(evil))
    d.stop()
    assert os.listdir(d.path("elsewhere")) == [], "a file was made through the symlink"
    assert file_lines(d.path("all.raw")) == msgs
    assert file_lines(d.path("hosts/good/app.log")) == [m for m in msgs if b" good app " in m]
    err = d.stderr()
    assert sum("hosts/evil/app.log: refused" in l for l in err.splitlines()) == 1, err


def test_symlink_appearing_before_sighup(daemon):
    d = start_conf(daemon, [{"path": "messages.log", "format": "raw"},
                            {"path": "all.raw", "format": "raw"}])
    target = victim(d)
    first = [line(b"one", i) for i in range(100)]
    stream_send(d.stream, b"\n".join(first) + b"\n")
    d.wait_lines(100, "messages.log")
    # logrotate's move, then someone puts a link where the file was.
    os.rename(d.path("messages.log"), d.path("messages.log.1"))
    os.symlink(target, d.path("messages.log"))
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: "messages.log: refused" in d.stderr(), 30, "the reopen to refuse")
    second = [line(b"two", i) for i in range(100)]
    stream_send(d.stream, b"\n".join(second) + b"\n")
    d.wait_lines(200, "all.raw")
    wait_until(lambda: out_stats(d, "messages.log")["records_refused"] == 100, 30,
               "records_refused to reach 100")
    assert open(target, "rb").read() == VICTIM
    # The link goes; the next SIGHUP writes there again.
    os.unlink(d.path("messages.log"))
    d.send_signal(signal.SIGHUP)
    wait_until(lambda: "writing again" in d.stderr(), 30, "the reopen to succeed")
    third = [line(b"three", i) for i in range(100)]
    stream_send(d.stream, b"\n".join(third) + b"\n")
    d.wait_lines(100, "messages.log")
    d.stop()
    assert open(target, "rb").read() == VICTIM
    assert file_lines(d.path("messages.log.1")) == first
    assert file_lines(d.path("messages.log")) == third
    assert file_lines(d.path("all.raw")) == first + second + third


class FdSampler(threading.Thread):
    """Counts /proc/PID/fd every few milliseconds; keeps the largest."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.path = "/proc/%d/fd" % pid
        self.max = 0
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.max = max(self.max, len(os.listdir(self.path)))
                self.samples += 1
            except FileNotFoundError:
                return
            time.sleep(0.002)


def test_ten_thousand_apps_stay_within_max_files(daemon):
    max_files = 64
    d = start_conf(daemon, [{"path": "apps/%{app}.log", "format": "raw", "max_files": max_files,
                             "rotate": {"max_size": "4K", "keep": 2, "compress": "gzip"}},
                            {"path": "all.raw", "format": "raw"}])
    before = d.nfds()  # listeners, control, loops, the catch-all file
    names = scaled(10000, 2)
    # A few busy names (they rotate and compress) among many rare ones.
    msgs = []
    for i in range(names):
        msgs.append(line(b"rare%05d" % i, len(msgs)))
        if i % 4 == 0:
            msgs.append(line(b"busy%d" % (i % 3), len(msgs)))
    sampler = FdSampler(d.pid)
    sampler.start()
    stream_send(d.stream, b"\n".join(msgs) + b"\n")
    d.wait_lines(len(msgs), "all.raw", timeout=120)
    st = wait_until(lambda: (lambda s: s if s["records"] == len(msgs) else None)(
        out_stats(d, "apps/%{app}.log")), 60, "the per-app output to write every record")
    sampler.done.set()
    sampler.join()
    # Transient descriptors: a directory while a file opens or rotates, a
    # compression's input and output and its directory, a read of a file's
    # last byte; a few more for the control connection of stats().
    limit = before + max_files + 8
    assert sampler.samples > 10
    assert sampler.max <= limit, "%d descriptors open at the worst sample (limit %d = %d + %d + 8)" % (
        sampler.max, limit, before, max_files)
    assert st["rotations"] > 0 and st["archives_compressed"] > 0, st
    assert st["files_refused"] == 0 and st["write_errors"] == 0, st
    d.stop()
    assert file_lines(d.path("all.raw")) == msgs
    assert file_lines(d.path("apps/rare00007.log")) == [msgs[m] for m in range(len(msgs))
                                                          if b" rare00007: " in msgs[m]]
