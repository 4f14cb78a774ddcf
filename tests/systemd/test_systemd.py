"""The unit files against the real systemd (see conftest.py for the container).

Each test boots its own container with lograil installed under /usr/local
and the user lograil created, and checks one promise of
systemd/lograild.service.in and systemd/lograild.socket.
"""

import json
import re
import time

import pytest

LOG_SOCK = "/run/lograil/log.sock"
DGRAM_SOCK = "/run/lograil/dgram.sock"
CONTROL_SOCK = "/run/lograil/control.sock"
MESSAGES = "/var/log/lograil/messages.log"
SVC = "lograild.service"
SOCK = "lograild.socket"

# The daemon's stop shuts the datagram socket down, and that socket is systemd's.

# A client inside the container: N numbered lines over the stream socket, as
# fast as it can, then close.  argv: socket path, count, prefix.
FLOOD = r"""
import socket, sys
path, n, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
batch = []
for i in range(n):
    batch.append(b"%s-%06d %s\n" % (prefix, i, b"x" * 40))
    if len(batch) == 500:
        s.sendall(b"".join(batch)); batch = []
s.sendall(b"".join(batch))
s.close()
print("sent", n)
"""


def start_service(box):
    box.systemctl("start", SVC)
    box.wait_state(SVC, "active")


def flood(box, n, prefix, timeout=30):
    return box.run("python3", "-c", FLOOD, LOG_SOCK, str(n), prefix, timeout=timeout)


def test_units_verify_clean(box):
    """systemd-analyze verify: not a word on stdout or stderr (it exits 0 on
    unknown keys and bad values, printing only a warning), exit 0."""
    p = box.run("systemd-analyze", "verify", "--man=no",
                box.UNITDIR + "/" + SOCK, box.UNITDIR + "/" + SVC, check=False)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", ""), \
        "systemd-analyze verify exit %d\nstdout: %s\nstderr: %s" % (p.returncode, p.stdout, p.stderr)
    # ExecStart= names the installed daemon (@SBINDIR@ was replaced).
    assert box.prop(SVC, "ExecStart").startswith("{ path=%s/lograild ;" % box.SBINDIR)


def test_socket_activation(box):
    """Only the socket unit is started; the first client starts the
    service, which adopts both of systemd's sockets."""
    box.systemctl("enable", SOCK)
    box.systemctl("start", SOCK)
    assert box.prop(SOCK, "ActiveState") == "active"
    assert box.prop(SVC, "ActiveState") == "inactive", "the service started without a client"
    modes = box.run("stat", "-c", "%A %n", LOG_SOCK, DGRAM_SOCK).stdout.splitlines()
    assert all(m.startswith("srw-rw-rw- ") for m in modes), modes   # SocketMode=0666

    box.run("logger", "-u", LOG_SOCK, "hello-stream")
    box.wait_state(SVC, "active")
    box.wait_in_file(MESSAGES, "hello-stream")
    box.run("logger", "-d", "-u", DGRAM_SOCK, "hello-dgram")
    box.wait_in_file(MESSAGES, "hello-dgram")

    pid = box.prop(SVC, "MainPID")
    assert pid not in ("", "0")
    assert box.run("readlink", "/proc/%s/exe" % pid).stdout.strip() == box.SBINDIR + "/lograild"
    box.wait_in_journal(SVC, "adopted 2 socket(s) from systemd")


def test_adopted_datagram_socket_gets_credentials_when_shown(box):
    """The socket unit does not set PassCredentials=; with a json output the
    daemon asks for the credentials on systemd's datagram socket itself."""
    box.write(box.CONF, """\
control = { path = "%s"; };
listen = (
  { path = "%s"; type = "stream"; mode = "0666"; },
  { path = "%s"; type = "dgram"; }
);
outputs = ( { path = "%s"; format = "json"; } );
""" % (CONTROL_SOCK, LOG_SOCK, DGRAM_SOCK, MESSAGES))
    box.systemctl("start", SOCK)
    box.run("logger", "-d", "-u", DGRAM_SOCK, "creds-dgram")
    box.wait_state(SVC, "active")
    box.wait_in_file(MESSAGES, "creds-dgram")
    box.wait_in_journal(SVC, "adopted 2 socket(s) from systemd")
    recs = [json.loads(l) for l in box.read(MESSAGES).splitlines() if b"creds-dgram" in l]
    assert len(recs) == 1, recs
    # Present; their values are the sender's as the service's sandbox sees
    # it (another pid namespace: pid 0; root: the overflow uid).
    assert all(isinstance(recs[0].get(k), int) for k in ("pid", "uid", "gid")), recs


def test_stop_drains_everything(box):
    """`systemctl stop` right after a fast client: every line is in the file
    exactly once and the daemon exits 0."""
    n = 20000
    start_service(box)
    # The client, then at once the stop: no round trip between them.
    p = box.run("/bin/sh", "-c", 'python3 -c "$0" "$1" "$2" drain && exec systemctl stop "$3"',
                FLOOD, LOG_SOCK, str(n), SVC, timeout=60)
    assert "sent %d" % n in p.stdout
    data = box.read(MESSAGES).decode()
    seen = re.findall(r"drain-(\d{6}) x{40}$", data, re.M)
    counts = {}
    for s in seen:
        counts[s] = counts.get(s, 0) + 1
    missing = [i for i in range(n) if "%06d" % i not in counts]
    dup = sorted(s for s, c in counts.items() if c > 1)
    assert not missing and not dup, "%d of %d lines missing (first %s), %d duplicated (%s)" % (
        len(missing), n, missing[:5], len(dup), dup[:5])
    assert len(seen) == n
    # How the stopped daemon ended (the unit's own state: the next test).
    # systemd says "Main process exited, code=..." only when it did not exit 0.
    def ended():
        j = box.journal(SVC)
        return j if re.search(r"Deactivated successfully|Failed with result", j) else None
    journal = box.wait(ended, 10, "systemd to log how the stop ended")
    assert "Deactivated successfully" in journal and "Main process exited" not in journal \
        and "Failed with result" not in journal, journal
    assert "every record received was written" in journal


def test_stop_leaves_unit_inactive(box):
    """After `systemctl stop` the service is inactive, not failed, its
    daemon exited 0, and with no client it stays so; the socket unit still
    listens, on the same files."""
    box.systemctl("start", SOCK)
    box.run("logger", "-u", LOG_SOCK, "before-stop")
    box.wait_in_file(MESSAGES, "before-stop")
    box.systemctl("stop", SVC)
    time.sleep(1)   # time for a spurious re-activation to show
    st = box.show(SVC, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "NRestarts")
    assert st == {"ActiveState": "inactive", "Result": "success", "ExecMainCode": "1",
                  "ExecMainStatus": "0", "NRestarts": "0"}, st
    assert box.prop(SOCK, "ActiveState") == "active"
    for path in (LOG_SOCK, DGRAM_SOCK):
        assert box.run("test", "-S", path, check=False).returncode == 0, \
            "%s is gone after `systemctl stop %s`" % (path, SVC)


def test_socket_activation_again_after_stop(box):
    """A stopped service leaves systemd's sockets usable: the next stream
    client and the next datagram reach a new daemon."""
    box.systemctl("start", SOCK)
    box.run("logger", "-u", LOG_SOCK, "first-run")
    box.wait_in_file(MESSAGES, "first-run")
    first = box.prop(SVC, "MainPID")
    box.systemctl("stop", SVC)
    for path in (LOG_SOCK, DGRAM_SOCK):
        # The socket unit's files: a daemon that unlinks them at exit cuts
        # every later client off (ENOENT) while systemd still listens.
        assert box.run("test", "-S", path, check=False).returncode == 0, \
            "%s is gone after `systemctl stop %s`" % (path, SVC)
    box.run("logger", "-u", LOG_SOCK, "second-run")
    box.wait_state(SVC, "active")
    box.wait_in_file(MESSAGES, "second-run")
    box.run("logger", "-d", "-u", DGRAM_SOCK, "second-dgram", check=False)
    box.wait_in_file(MESSAGES, "second-dgram", timeout=5)
    assert box.prop(SVC, "MainPID") != first


def test_notify_status(box):
    """Type=notify: systemd shows the daemon's STATUS= line."""
    start_service(box)
    assert box.prop(SVC, "Type") == "notify"
    box.run("logger", "-u", LOG_SOCK, "status-check")
    m = box.wait(lambda: re.search(r"\d+ records/s; queue \d+/\d+; \d+ records in total",
                                   box.prop(SVC, "StatusText")),
                 5, "the STATUS= line in StatusText")
    print("StatusText:", m.group(0))
    out = box.systemctl("status", SVC, check=False).stdout
    assert re.search(r'Status: ".*records/s; queue', out), out


def test_reload_reopens(box):
    """ExecReload= (SIGHUP) reopens the output: after an external rename, a
    new messages.log takes the new records."""
    start_service(box)
    box.run("logger", "-u", LOG_SOCK, "before-reload")
    box.wait_in_file(MESSAGES, "before-reload")
    box.run("mv", MESSAGES, MESSAGES + ".1")
    box.systemctl("reload", SVC)
    box.wait(lambda: box.read(MESSAGES) is not None, 10,
             "a new %s after `systemctl reload`" % MESSAGES)
    box.run("logger", "-u", LOG_SOCK, "after-reload")
    box.wait_in_file(MESSAGES, "after-reload")
    new, old = box.read(MESSAGES), box.read(MESSAGES + ".1")
    assert b"before-reload" in old and b"after-reload" not in old
    assert b"before-reload" not in new
    st = box.show(SVC, "ActiveState", "NRestarts")
    assert st == {"ActiveState": "active", "NRestarts": "0"}, st


def test_watchdog_restarts_stuck_writer(box):
    """WatchdogSec=3s: an idle daemon keeps feeding the watchdog; a writer
    blocked in write(2) (an output that is a FIFO nobody reads) stops the
    pings, and systemd kills and restarts the service."""
    fifo = "/var/log/lograil/stuck.fifo"
    box.write(box.CONF, """\
control = { path = "%s"; };
listen = (
  { path = "%s"; type = "stream"; mode = "0666"; },
  { path = "%s"; type = "dgram"; }
);
outputs = (
  { path = "%s"; },
  { path = "%s"; format = "raw"; fsync = "never"; }
);
""" % (CONTROL_SOCK, LOG_SOCK, DGRAM_SOCK, MESSAGES, fifo))
    box.run("install", "-d", "-o", "lograil", "-g", "lograil", "/var/log/lograil")
    box.run("mkfifo", "-m", "0660", fifo)
    box.run("chown", "lograil:lograil", fifo)
    # The FIFO's reader: holds it open (O_RDWR: no wait for a writer), never reads.
    box.run("systemd-run", "--quiet", "--unit=fifo-holder", "--service-type=exec", "/bin/sh",
            "-c", 'exec 3<>"$0"; exec sleep infinity', fifo)
    box.write("/etc/systemd/system/lograild.service.d/50-watchdog.conf",
              "[Service]\nWatchdogSec=3s\n")
    box.systemctl("daemon-reload")
    start_service(box)
    assert box.prop(SVC, "WatchdogUSec") == "3s"
    first = box.prop(SVC, "MainPID")

    # Idle for longer than WatchdogSec: no restart.
    box.run("logger", "-u", LOG_SOCK, "watchdog-idle")
    box.wait_in_file(MESSAGES, "watchdog-idle")
    time.sleep(4.5)
    st = box.show(SVC, "NRestarts", "MainPID", "ActiveState")
    assert st == {"NRestarts": "0", "MainPID": first, "ActiveState": "active"}, \
        "an idle daemon was restarted by the watchdog: %s" % st

    # About 500 KiB to the FIFO: the pipe takes 64 KiB, then write(2) blocks.
    flood(box, 5000, "stuck")
    box.wait(lambda: int(box.prop(SVC, "NRestarts") or 0) >= 1, 15,
             "systemd to restart the service (NRestarts >= 1)")
    journal = box.journal(SVC)
    assert "lograild.service: Watchdog timeout" in journal, journal
    box.wait_state(SVC, "active")
    assert box.prop(SVC, "MainPID") not in ("0", first)
    # The new daemon took systemd's sockets over again.
    box.wait(lambda: box.journal(SVC).count("adopted 2 socket(s) from systemd") >= 2, 5,
             "the restarted daemon to adopt the sockets")


def test_hardened_service_runs_as_lograil(box):
    """User=lograil and the sandboxing options leave a working daemon: it
    runs as lograil without capabilities, and root can use its control socket."""
    start_service(box)
    pw = box.run("getent", "passwd", "lograil").stdout.split(":")
    uid, gid = pw[2], pw[3]
    pid = box.prop(SVC, "MainPID")
    status = box.run("cat", "/proc/%s/status" % pid).stdout
    uids = re.search(r"^Uid:\s+(.*)$", status, re.M).group(1).split()
    gids = re.search(r"^Gid:\s+(.*)$", status, re.M).group(1).split()
    assert uids == [uid] * 4 and gids == [gid] * 4, (uids, gids)
    assert re.search(r"^CapEff:\s+0+$", status, re.M), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.M), status

    box.run("logger", "-u", LOG_SOCK, "hardened")
    box.wait_in_file(MESSAGES, "hardened")
    p = box.run("lograilctl", "-s", CONTROL_SOCK, "stats")
    assert "# queue" in p.stdout and "# output %s" % MESSAGES in p.stdout, p.stdout
    assert re.search(r"# listener %s\n(?:.*\n)*?records: 1\n" % LOG_SOCK, p.stdout), p.stdout
    assert box.run("lograilctl", "-s", CONTROL_SOCK, "ping").stdout.strip() == "pong"
    assert box.run("stat", "-c", "%U %a", MESSAGES).stdout.split() == ["lograil", "640"]
