"""conf/debian.conf, the Debian package's configuration, with its paths moved
into a temporary directory: which file each facility lands in, and the
files' group and mode.  (tests/systemd runs it unchanged, as the package
installs it, behind journald.)"""

import grp
import os
import re
import subprocess

import pytest

from conftest import LOGRAILD, Daemon, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FILES = ("syslog", "auth.log", "cron.log", "kern.log", "mail.log", "user.log")


def moved_conf(workdir, with_kmsg):
    with open(os.path.join(REPO, "conf", "debian.conf")) as f:
        text = f.read()
    text = text.replace('"/var/log/', '"%s/log/' % workdir)
    text = text.replace("/run/systemd/journal/syslog", workdir + "/syslog.sock")
    text = text.replace("/run/lograil/control.sock", workdir + "/ctl.sock")
    text = text.replace("/var/lib/lograil", workdir + "/state")
    text = text.replace("/var/run/utmp", workdir + "/utmp")  # never the machine's users
    if not with_kmsg:
        text = text.replace('  { path = "/dev/kmsg"; type = "kmsg"; }\n', "")
        text = text.replace('type = "dgram"; },', 'type = "dgram"; }')
        text = text.replace('filter = { listeners = ["/dev/kmsg"]; };', 'filter = { facilities = ["kern"]; };')
    path = os.path.join(workdir, "debian.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


class DebianDaemon(Daemon):
    """The Daemon of conftest, on a configuration file of our own."""

    def __init__(self, workdir, conf):
        super().__init__(workdir)
        self.conf = conf
        self.listen = [{"path": os.path.join(workdir, "syslog.sock"), "type": "dgram"}]
        self.control = os.path.join(workdir, "ctl.sock")


@pytest.fixture
def debian(workdir):
    ds = []

    def make():
        d = DebianDaemon(workdir, moved_conf(workdir, with_kmsg=False))
        ds.append(d)
        return d.start()
    yield make
    for d in ds:
        d.kill()


def log(workdir, name):
    p = os.path.join(workdir, "log", name)
    if not os.path.exists(p):
        return b""
    with open(p, "rb") as f:
        return f.read()


def test_the_shipped_file_is_valid():
    p = subprocess.run([LOGRAILD, "--check-config", "-c", os.path.join(REPO, "conf", "debian.conf")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_each_facility_lands_where_debian_puts_it(debian, workdir):
    d = debian()
    sock = os.path.join(workdir, "syslog.sock")
    sent = {"auth": "auth.info", "authpriv": "authpriv.notice", "cron": "cron.info",
            "mail": "mail.err", "user": "user.notice", "daemon": "daemon.info",
            "local3": "local3.debug"}
    for tag, pri in sent.items():
        subprocess.run(["logger", "-d", "-u", sock, "-t", "t-" + tag, "-p", pri, "m-" + tag],
                       check=True)
    wait_until(lambda: b"m-local3" in log(workdir, "syslog") and b"m-auth" in log(workdir, "auth.log"),
               30, "the messages in syslog and auth.log")
    d.stop()
    want = {
        "syslog": {"cron", "mail", "user", "daemon", "local3"},
        "auth.log": {"auth", "authpriv"},
        "cron.log": {"cron"},
        "mail.log": {"mail"},
        "user.log": {"user"},
        "kern.log": set(),
    }
    for name, tags in want.items():
        got = set(re.findall(rb" t-(\w+): m-", log(workdir, name)))
        assert got == {t.encode() for t in tags}, (name, got)
    # Debian's group and mode.
    adm = grp.getgrnam("adm").gr_gid
    for name in FILES:
        p = os.path.join(workdir, "log", name)
        if not os.path.exists(p):
            continue
        st = os.stat(p)
        assert (st.st_mode & 0o777, st.st_gid) == (0o640, adm), name
