"""lograild as the system's logger: the Debian package, installed with apt in
a container that boots the host's systemd with journald, syslog.socket and
/dev/kmsg (see conftest.py: deb, SyslogBox).

Clients log the way programs on Debian do: to /dev/log (journald), through
systemd-cat and a unit's stdout; journald forwards to syslog.socket, which
systemd passes to whichever unit is syslog.service.  The tests look at
Debian's files in /var/log.
"""

import re
import time
import uuid

import pytest

SVC = "lograild.service"
SYSLOG = "/var/log/syslog"
AUTH = "/var/log/auth.log"
KERN = "/var/log/kern.log"
USER = "/var/log/user.log"
MAIL = "/var/log/mail.log"
ALIAS = "/etc/systemd/system/syslog.service"

# One message through the C library's syslog(3) (as most programs log):
# prints the sender's pid, which journald passes on.  argv: ident, facility, text.
SYSLOG3 = r"""
import os, sys, syslog
ident, fac, text = sys.argv[1], sys.argv[2], sys.argv[3]
syslog.openlog(ident, syslog.LOG_PID, getattr(syslog, "LOG_" + fac.upper()))
syslog.syslog(syslog.LOG_INFO, text)
print(os.getpid())
"""

# N numbered messages through syslog(3), a few thousand a second: journald
# forwards without waiting (a datagram that does not fit in syslog.socket's
# queue of 512 is dropped and counted as "missed"), so the flood must fit
# in that queue while systemd starts lograild again, which takes some tens
# of milliseconds.
FLOOD = r"""
import sys, syslog, time
n, prefix = int(sys.argv[1]), sys.argv[2]
syslog.openlog("flood", 0, syslog.LOG_LOCAL1)
for i in range(n):
    syslog.syslog(syslog.LOG_INFO, "%s-%06d" % (prefix, i))
    if i % 10 == 9:
        time.sleep(0.002)
"""


def uniq(what):
    return "%s-%s" % (what, uuid.uuid4().hex[:12])


def lines_with(box, path, needle):
    return [l for l in (box.read(path) or b"").decode("utf-8", "replace").splitlines()
            if needle in l]


def daemons(box):
    """The system log daemons running: (name, pid) pairs."""
    out = box.run("ps", "-eo", "pid=,comm=").stdout
    return sorted((c, p) for p, c in (l.split(None, 1) for l in out.splitlines())
                  if c in ("rsyslogd", "lograild", "syslog-ng"))


def exposure(box, unit):
    out = box.run("systemd-analyze", "security", "--no-pager", unit).stdout
    return float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))


def install_over_rsyslog(box):
    """Start the machine's rsyslog behind syslog.socket, then apt-install
    lograil over it."""
    if box.run("dpkg-query", "-W", "-f=${Status}", "rsyslog", check=False).stdout \
            != "install ok installed":
        pytest.skip("rsyslog is not installed on this machine: nothing to install over")
    box.systemctl("start", "syslog.socket", "rsyslog.service")
    box.wait_state("rsyslog.service", "active")
    before = uniq("before")
    box.run("logger", before)
    box.wait_in_file(SYSLOG, before)
    box.apt_install(box.debs["lograil"])
    box.wait_state(SVC, "active")


def install(box):
    """lograil, over rsyslog where this machine has it."""
    if box.run("dpkg-query", "-W", "-f=${Status}", "rsyslog", check=False).stdout \
            == "install ok installed":
        install_over_rsyslog(box)
    else:
        box.apt_install(box.debs["lograil"])
        box.wait_state(SVC, "active")


def test_install_over_rsyslog_and_log_as_debian_does(syslog_box):
    box = syslog_box
    install_over_rsyslog(box)
    assert [d for d, _ in daemons(box)] == ["lograild"], daemons(box)
    assert box.run("readlink", ALIAS).stdout.strip() == "/lib/systemd/system/lograild.service"
    assert box.prop(SVC, "ActiveState") == "active"

    # logger with no socket: /dev/log, journald, syslog.socket, lograild.
    # journald passes what logger sent as it was: the tag (the user's name
    # by default), and a pid only when logger sends one (-i), as rsyslog
    # writes it.
    m = uniq("logger")
    box.run("logger", m)
    box.wait_in_file(SYSLOG, m)
    got = lines_with(box, SYSLOG, m)
    assert len(got) == 1 and got[0].endswith(" sdbox root: " + m), got
    assert len(lines_with(box, USER, m)) == 1       # facility user (logger's default)
    assert lines_with(box, AUTH, m) == []
    m = uniq("logger-i")
    pid = box.run("sh", "-c", "logger -t lrtag --id=$$ %s; echo $$" % m).stdout.strip()
    box.wait_in_file(SYSLOG, m)
    got = lines_with(box, SYSLOG, m)
    assert len(got) == 1 and got[0].endswith(" sdbox lrtag[%s]: %s" % (pid, m)), got

    # syslog(3): the tag, the sender's pid and the facility journald had.
    m = uniq("libc")
    pid = box.run("python3", "-c", SYSLOG3, "lrlibc", "mail", m).stdout.strip()
    box.wait_in_file(MAIL, m)
    assert [l for l in lines_with(box, SYSLOG, m) if "lrlibc[%s]: %s" % (pid, m) in l], \
        lines_with(box, SYSLOG, m)
    assert lines_with(box, USER, m) == []

    # auth goes to auth.log and not to syslog.
    m = uniq("auth")
    box.run("logger", "-p", "auth.info", "-t", "lrauth", m)
    box.wait_in_file(AUTH, m)
    box.run("logger", "-t", "lrsync", "sync-after-auth-" + m)
    box.wait_in_file(SYSLOG, "sync-after-auth-" + m)
    assert lines_with(box, SYSLOG, m.join(("lrauth", ""))) == [] and \
        [l for l in lines_with(box, SYSLOG, m) if "lrauth" in l] == []
    assert len(lines_with(box, AUTH, m)) == 1

    # systemd-cat and a unit's standard output.
    m = uniq("cat")
    box.run("sh", "-c", "echo %s | systemd-cat -t lrcat" % m)
    box.wait_in_file(SYSLOG, m)
    assert re.search(r" lrcat\[\d+\]: " + m + "$", lines_with(box, SYSLOG, m)[0])
    m = uniq("unit")
    # (A unit file, not systemd-run: the container has no D-Bus.)
    box.write("/etc/systemd/system/lrunit.service",
              "[Service]\nType=oneshot\nSyslogIdentifier=lrunit\nExecStart=/bin/echo %s\n" % m)
    box.systemctl("daemon-reload")
    box.systemctl("start", "lrunit.service")
    box.wait_in_file(SYSLOG, m)
    assert re.search(r" lrunit\[\d+\]: " + m + "$", lines_with(box, SYSLOG, m)[0])

    # Debian's owner, group and mode.
    for path in (SYSLOG, AUTH, USER, MAIL, KERN):
        assert box.run("stat", "-c", "%U:%G %a", path).stdout.split() == ["root:adm", "640"], path

    # The kernel's log: once in kern.log, and not again after a restart.
    k = uniq("lograil-kmsg-test")
    box.run("sh", "-c", "echo '<4>%s' > /dev/kmsg" % k)
    box.wait_in_file(KERN, k)
    box.systemctl("restart", SVC)
    box.wait_state(SVC, "active")
    k2 = uniq("lograil-kmsg-after")
    box.run("sh", "-c", "echo '<4>%s' > /dev/kmsg" % k2)
    box.wait_in_file(KERN, k2)
    assert len(lines_with(box, KERN, k)) == 1, lines_with(box, KERN, k)
    assert len(lines_with(box, KERN, k2)) == 1
    assert re.search(r" kernel: " + k + "$", lines_with(box, KERN, k)[0])

    # The socket stays with systemd: with lograild stopped, a message waits
    # in it and starts lograild again.
    box.systemctl("stop", SVC)
    assert box.prop("syslog.socket", "ActiveState") == "active"
    m = uniq("while-stopped")
    box.run("logger", m)
    box.wait_in_file(SYSLOG, m, timeout=20)
    box.wait_state(SVC, "active")
    assert len(lines_with(box, SYSLOG, m)) == 1

    # The sandbox, measured.
    e = exposure(box, SVC)
    print("systemd-analyze security %s: %.1f" % (SVC, e))
    assert e <= 2.0


# Inside the container: a terminal (pty) and a utmp entry saying someone is
# logged in on it, then an emergency through logger; prints what reached
# the terminal.  argv: the message.
WALL = r"""
import os, select, struct, subprocess, sys, time, tty
m, s = os.openpty()
tty.setraw(s)
line = os.ttyname(s)[5:]
os.chown(os.ttyname(s), 1000, 5)   # as a login's: the user's, group tty,
os.chmod(os.ttyname(s), 0o620)     # writable by the group
with open("/run/utmp", "ab") as f:
    f.write(struct.pack("<hhi32s4s32s256shhiii16s20s", 7, 0, os.getpid(), line.encode(),
                        line[-4:].encode(), b"tester", b"", 0, 0, 0, int(time.time()), 0,
                        b"", b""))
subprocess.run(["logger", "-p", "user.emerg", sys.argv[1]], check=True)
# (journald walls emergencies too, with ForwardToWall=yes: wait for ours.)
got, end = b"", time.monotonic() + 20
while b"Message from lograild@" not in got and time.monotonic() < end:
    if select.select([m], [], [], 0.2)[0]:
        got += os.read(m, 65536)
sys.stdout.write(got.decode("utf-8", "replace"))
"""


def test_emergencies_reach_logged_in_terminals(syslog_box):
    box = syslog_box
    install(box)
    m = uniq("emergency")
    out = box.run("python3", "-c", WALL, m, timeout=60).stdout
    ours = out[out.find("Message from lograild@sdbox:"):]
    assert out.count("Message from lograild@") == 1 and m in ours, out


def test_stop_under_a_flood_loses_nothing_journald_handed_over(syslog_box):
    box = syslog_box
    install(box)
    first = box.prop(SVC, "InvocationID")
    n, prefix = 3000, uniq("flood")
    p = box.run("sh", "-c", "python3 -c '%s' %d %s & sleep 0.3; systemctl stop %s; wait"
                % (FLOOD.replace("'", "'\\''"), n, prefix, SVC), timeout=120)
    assert p.returncode == 0
    # What came after the stop waits in systemd's socket and starts lograild
    # again; the last marker says it has read everything before it.
    end = uniq("flood-end")
    box.run("logger", end)
    box.wait_in_file(SYSLOG, end, timeout=60)
    # The stop came while the flood ran, and socket activation started a
    # new lograild for the rest.
    assert box.prop(SVC, "InvocationID") != first
    assert "Stopped lograild.service" in box.journal(SVC)
    def count():
        got = [l.rsplit(" ", 1)[-1] for l in lines_with(box, SYSLOG, prefix + "-")]
        journald = box.run("journalctl", "--no-pager", "-u", "systemd-journald",
                           check=False).stdout
        missed = sum(int(x) for x in
                     re.findall(r"Forwarding to syslog missed (\d+) messages", journald))
        assert not re.search(r"Suppressed \d+ messages", journald), "journald rate-limited"
        return got, missed

    got, missed = count()
    if n - len(set(got)) > missed:
        # journald counts the datagrams it could not forward (syslog.socket's
        # queue was full) and reports the count at most every 30 s: make it
        # report the rest, so that what it handed over is known exactly.
        time.sleep(31)
        end = uniq("flood-report")
        box.run("logger", end)
        box.wait_in_file(SYSLOG, end, timeout=60)
        got, missed = count()
    assert len(got) == len(set(got)), "duplicates"
    have = set(got)
    lost = [i for i in range(n) if "%s-%06d" % (prefix, i) not in have]
    # Every flood message not in the file is one journald did not hand over
    # (its count may include a few other messages of the same moments).
    assert len(lost) <= missed, (len(got), missed, lost[:20])
    print("flood: %d of %d written, %d not handed over by journald" % (len(got), n, missed))


def test_rsyslog_back_over_lograil(syslog_box):
    box = syslog_box
    if not box.debs["rsyslog"]:
        pytest.skip("no rsyslog package in /var/cache/apt/archives to go back to")
    install_over_rsyslog(box)
    box.apt_install(box.debs["rsyslog"])
    box.wait_state("rsyslog.service", "active")
    assert [d for d, _ in daemons(box)] == ["rsyslogd"], daemons(box)
    assert box.run("readlink", ALIAS).stdout.strip() == "/lib/systemd/system/rsyslog.service"
    assert box.run("dpkg-query", "-W", "-f=${Status}", "lograil", check=False).stdout \
        != "install ok installed"
    m = uniq("back")
    box.run("logger", m)
    box.wait_in_file(SYSLOG, m)
    # And once more the other way: lograil again over this rsyslog.
    box.apt_install(box.debs["lograil"])
    box.wait_state(SVC, "active")
    assert [d for d, _ in daemons(box)] == ["lograild"], daemons(box)
    m = uniq("again")
    box.run("logger", m)
    box.wait_in_file(SYSLOG, m)
