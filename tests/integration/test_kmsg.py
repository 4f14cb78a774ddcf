"""The kmsg input against the real /dev/kmsg.

Writing to and reading from the kernel's log needs root (reading needs
CAP_SYSLOG when kernel.dmesg_restrict is 1): those tests skip, saying so,
when they cannot open it.  Each writes a marker of its own with
`echo '<4>MARKER' > /dev/kmsg` and looks for it in the daemon's output; the
other records of the ring buffer are this machine's, and the tests only
count markers.  The kernel gives a record written from user space the
facility user (it never lets user space claim kern): "<4>" is user.warning.
"""

import json
import os
import uuid

import pytest

from conftest import wait_until

KMSG = "/dev/kmsg"


def kmsg_usable():
    try:
        fd = os.open(KMSG, os.O_RDWR | os.O_NONBLOCK)
    except OSError as e:
        return "cannot open %s read-write (%s): needs root and CAP_SYSLOG" % (KMSG, e.strerror)
    os.close(fd)
    return None


needs_kmsg = pytest.mark.skipif(kmsg_usable() is not None, reason=str(kmsg_usable()))


def boot_id():
    with open("/proc/sys/kernel/random/boot_id") as f:
        return f.read().strip()


def write_kmsg(text):
    with open(KMSG, "w") as f:
        f.write("<4>%s\n" % text)


def marker():
    return "lograil-kmsg-test-%s" % uuid.uuid4().hex


def kmsg_daemon(daemon, d_state, **kw):
    return daemon(probe=False,
                  listen=[{"path": "s.sock", "type": "stream"}, {"path": KMSG, "type": "kmsg"}],
                  outputs=[{"path": "out.json", "format": "json"},
                           {"path": "out.log", "format": "traditional"}],
                  extra='state_dir = "%s";' % d_state, **kw)


def with_marker(d, m, output="out.json"):
    return [r for r in (json.loads(l) for l in d.lines(output)) if r.get("msg") == m]


def state_path(d_state):
    return os.path.join(d_state, "kmsg_dev_kmsg.state")


@needs_kmsg
def test_a_record_arrives_once_and_not_again_after_a_restart(daemon, workdir):
    st = os.path.join(workdir, "state")
    d = kmsg_daemon(daemon, st)
    m = marker()
    write_kmsg(m)
    wait_until(lambda: with_marker(d, m), 30, "the kernel record in out.json")
    assert d.listener_stats(KMSG)["overwritten"] == 0
    d.stop()
    recs = with_marker(d, m)
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["app"] == "kernel"
    assert r["facility"] == "user" and r["severity"] == "warning"
    # The kernel's monotonic time became wall-clock time near now.
    assert r["time"][:4] == r["recv_time"][:4]
    assert any(l.endswith(b" kernel: " + m.encode()) for l in d.lines("out.log"))
    # The place is kept with this boot's id.
    with open(state_path(st)) as f:
        bid, seq = f.read().split()
    assert bid == boot_id() and int(seq) > 0

    # A second daemon on the same state directory and output: it reads the
    # ring buffer from its start, skips what the first one sent, and takes a
    # new record.
    d2 = kmsg_daemon(daemon, st)
    m2 = marker()
    write_kmsg(m2)
    wait_until(lambda: with_marker(d2, m2), 30, "the second marker")
    d2.stop()
    assert with_marker(d2, m) == [], "a record of before the restart was written again"
    assert len(with_marker(d2, m2)) == 1


@needs_kmsg
def test_a_place_from_another_boot_is_not_used(daemon, workdir):
    st = os.path.join(workdir, "state")
    os.makedirs(st)
    m = marker()
    write_kmsg(m)
    # A place far ahead, but of another boot: after a reboot every record
    # in the buffer is new.
    with open(state_path(st), "w") as f:
        f.write("00000000-0000-0000-0000-000000000000 18446744073709551000\n")
    d = kmsg_daemon(daemon, st)
    wait_until(lambda: with_marker(d, m), 30, "the marker despite another boot's place")
    d.stop()
    assert len(with_marker(d, m)) == 1


@needs_kmsg
def test_a_place_of_this_boot_skips_what_it_covers(daemon, workdir):
    st = os.path.join(workdir, "state")
    os.makedirs(st)
    old = marker()
    write_kmsg(old)
    # This boot, a seq beyond every record now in the buffer: none of them
    # is read, and only records the kernel logs later are.
    with open(state_path(st), "w") as f:
        f.write("%s %d\n" % (boot_id(), 1 << 62))
    d = kmsg_daemon(daemon, st)
    new = marker()
    write_kmsg(new)

    def stats():
        return d.listener_stats(KMSG)
    # The new record's seq is below the saved one, so it is skipped too;
    # what proves the reader ran is that it is alive and counted nothing.
    wait_until(lambda: stats() is not None, 30, "stats")
    d.stop()
    assert with_marker(d, old) == [] and with_marker(d, new) == []


def test_a_missing_device_refuses_to_start(daemon, workdir):
    d = daemon.new(listen=[{"path": "s.sock", "type": "stream"},
                           {"path": os.path.join(workdir, "no-kmsg"), "type": "kmsg"}],
                   extra='state_dir = "%s";' % os.path.join(workdir, "state"))
    assert d.start_failing() == 3
    assert "no-kmsg: cannot open" in d.stderr()


@needs_kmsg
def test_an_unusable_state_dir_refuses_to_start(daemon, workdir):
    blocker = os.path.join(workdir, "file")
    open(blocker, "w").close()
    d = daemon.new(listen=[{"path": "s.sock", "type": "stream"}, {"path": KMSG, "type": "kmsg"}],
                   extra='state_dir = "%s";' % os.path.join(blocker, "sub"))
    assert d.start_failing() == 3
    assert "state_dir: cannot create" in d.stderr()
