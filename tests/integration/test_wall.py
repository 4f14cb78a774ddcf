"""The wall output: emergencies on the terminals of the users logged in, as
rsyslog's `*.emerg :omusrmsg:*`.  The test makes a terminal of its own (a
pty) and a utmp file of its own that says someone is logged in on it, and
reads what lograild wrote there.  The system's utmp is never touched."""

import os
import select
import socket
import struct
import time
import tty

from conftest import deadline
from test_writer import start_conf

USER_PROCESS = 7


def utmp_entry(line, user="tester", pid=None, kind=USER_PROCESS):
    """One glibc struct utmp (x86_64 and the other 64-bit ABIs: 384 bytes)."""
    return struct.pack("<hhi32s4s32s256shhiii16s20s", kind, 0, pid or os.getpid(),
                       line.encode(), line[-4:].encode(), user.encode(), b"", 0, 0, 0,
                       int(time.time()), 0, b"", b"")


def read_pty(fd, want, timeout):
    got = b""
    end = time.monotonic() + deadline(timeout)
    while want not in got and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            got += os.read(fd, 65536)
    return got


def test_emergencies_reach_the_logged_in_terminal(daemon, workdir):
    master, slave = os.openpty()
    tty.setraw(slave)  # no output processing: the bytes as lograild wrote them
    line = os.ttyname(slave)[len("/dev/"):]
    gone_master, gone_slave = os.openpty()
    utmp = os.path.join(workdir, "utmp")
    with open(utmp, "wb") as f:
        f.write(utmp_entry(line))
        # Not a login (a dead process's entry), and a line that climbs: no writes.
        f.write(utmp_entry(os.ttyname(gone_slave)[5:], kind=8))
        f.write(utmp_entry("../" + line))
    assert os.path.getsize(utmp) == 3 * 384
    d = start_conf(daemon, [{"path": "out.log", "format": "traditional"},
                            {"path": utmp, "type": "wall", "format": "traditional",
                             "filter": {"severity": "emerg"}}])
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(b"<3>app: just an error", d.dgram)
        s.sendto(b"<0>app: the disk is on fire", d.dgram)
    d.wait_lines(2, "out.log")
    got = read_pty(master, b"the disk is on fire", 30)
    assert b"Message from lograild@" in got, got
    assert b"app: the disk is on fire\r\n" in got, got
    assert b"just an error" not in got, got
    r, _, _ = select.select([gone_master], [], [], 0)
    assert not r, "the dead process's terminal was written to"
    d.stop()
    for fd in (master, slave, gone_master, gone_slave):
        os.close(fd)
