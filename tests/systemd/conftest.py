"""Fixtures: the host's real systemd as PID 1 of a throw-away container.

Every test gets its own container (tests/systemd/sdbox.sh: unshare + an
overlay of / whose writes go to a tmpfs; it boots journald only, in well
under a second).  Before it boots, the tree `make install DESTDIR=...
PREFIX=/usr/local` would produce is copied over the container's / (built
here from $LOGRAILD's directory and the repository: see stage_tree()), and
after boot the shipped sysusers file creates the user lograil.  Nothing is
written to the host's /etc, /run or /var/log.

Tests are skipped, saying why, where no container can be made (not root, no
CAP_SYS_ADMIN, no /lib/systemd/systemd, no writable cgroup2, unshare
refused); LOGRAIL_SDBOX_REQUIRED=1 turns those skips into failures.  On a
failed test the container's journal is attached to the report.
"""

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOGRAILD = os.path.abspath(os.environ.get("LOGRAILD") or os.path.join(REPO, "build", "lograild"))
LOGRAILCTL = os.path.abspath(os.environ.get("LOGRAILCTL")
                             or os.path.join(os.path.dirname(LOGRAILD), "lograilctl"))
SDBOX = os.path.join(HERE, "sdbox.sh")
REQUIRED = os.environ.get("LOGRAIL_SDBOX_REQUIRED") == "1"
SAN = os.environ.get("LOGRAIL_SAN", "")   # asan|tsan: $LOGRAILD is a sanitizer build

# Where `make install PREFIX=/usr/local` puts things (the Makefile's defaults).
PREFIX = "/usr/local"
SBINDIR = PREFIX + "/sbin"
BINDIR = PREFIX + "/bin"
UNITDIR = PREFIX + "/lib/systemd/system"
SYSUSERSDIR = PREFIX + "/lib/sysusers.d"
CONF = "/etc/lograil/lograild.conf"

CAP_SYS_ADMIN = 21
SAN_MARKERS = ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer", "ERROR: LeakSanitizer",
               "runtime error:")


def cannot_make_container():
    """Why no container can be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (to unshare and boot systemd in a container)"
    with open("/proc/self/status") as f:
        capeff = int(re.search(r"^CapEff:\s*([0-9a-f]+)", f.read(), re.M).group(1), 16)
    if not capeff & (1 << CAP_SYS_ADMIN):
        return "needs CAP_SYS_ADMIN"
    if not os.access("/lib/systemd/systemd", os.X_OK):
        return "no /lib/systemd/systemd on this machine"
    for tool in ("unshare", "nsenter", "setpriv", "setsid", "ps", "tar", "logger"):
        if shutil.which(tool) is None:
            return "the tool %s is missing" % tool
    cg = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
    probe = os.path.join(cg, "lograil-sdbox-probe-%d" % os.getpid())
    try:
        if not os.path.exists(os.path.join(cg, "cgroup.procs")):
            return "no cgroup2 hierarchy at %s" % cg
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as e:
        return "cannot create a cgroup under %s: %s" % (cg, e)
    try:
        p = subprocess.run(["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net",
                            "--cgroup", "--propagation", "private", "true"],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "unshare did not return"
    if p.returncode != 0:
        return "unshare refused: %s" % p.stderr.strip()
    return None


def skip_or_fail(reason):
    if REQUIRED:
        pytest.fail("LOGRAIL_SDBOX_REQUIRED=1 but " + reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sdbox_possible():
    reason = cannot_make_container()
    if reason:
        skip_or_fail(reason)


def stage_tree(root):
    """What `make install DESTDIR=root PREFIX=/usr/local` installs (minus man
    pages), with the binaries taken from $LOGRAILD's directory so that a
    sanitizer build can be tested too.  Kept in step with the Makefile's
    install target."""
    for b in (LOGRAILD, LOGRAILCTL):
        if not os.access(b, os.X_OK):
            pytest.fail("%s is missing: run make first (or set LOGRAILD)" % b, pytrace=False)
    os.chmod(root, 0o755)

    def put(src, dst, mode, text=None):
        path = root + dst
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        if text is None:
            shutil.copyfile(src, path)
        else:
            with open(path, "w") as f:
                f.write(text)
        os.chmod(path, mode)

    put(LOGRAILD, SBINDIR + "/lograild", 0o755)
    put(LOGRAILCTL, BINDIR + "/lograilctl", 0o755)
    with open(os.path.join(REPO, "systemd", "lograild.service.in")) as f:
        unit = f.read().replace("@SBINDIR@", SBINDIR)
    put(None, UNITDIR + "/lograild.service", 0o644, unit)
    put(os.path.join(REPO, "systemd", "lograild.socket"), UNITDIR + "/lograild.socket", 0o644)
    put(os.path.join(REPO, "systemd", "lograil.sysusers"), SYSUSERSDIR + "/lograil.conf", 0o644)
    put(os.path.join(REPO, "conf", "lograild.conf"), CONF, 0o644)
    if SAN:
        # LeakSanitizer stops the world with ptrace at exit, which the unit's
        # SystemCallFilter= forbids: the daemon then spins until systemd
        # kills it.  So no leak checks here; TSan as in tests/integration.
        put(None, "/etc/systemd/system/lograild.service.d/90-sanitizer.conf", 0o644,
            "[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0 "
            "TSAN_OPTIONS=ignore_noninstrumented_modules=1\n")


@pytest.fixture(scope="session")
def stage(sdbox_possible):
    root = tempfile.mkdtemp(prefix="lograil-stage-")
    try:
        stage_tree(root)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


class Box:
    """One booted container.  Commands run inside through `sdbox.sh exec`."""

    # Where things are inside (tests use these: no `from conftest import`,
    # which another directory's conftest.py could shadow).
    SBINDIR, BINDIR, UNITDIR, CONF = SBINDIR, BINDIR, UNITDIR, CONF

    def __init__(self, stage):
        self.work = tempfile.mkdtemp(prefix="lgsdbox-")
        self.env = dict(os.environ, SDBOX_WORK=self.work, SDBOX_STAGE=stage,
                        SDBOX_NAME="lograil-" + os.path.basename(self.work))
        self.up = False

    def boot(self):
        t0 = time.monotonic()
        p = subprocess.run([SDBOX, "start"], env=self.env, capture_output=True, text=True,
                           timeout=60)
        if p.returncode != 0:
            self.stop()
            skip_or_fail("the container did not boot (sdbox.sh start exit %d):\n%s%s"
                         % (p.returncode, p.stdout, p.stderr))
        self.up = True
        print("container up in %.2fs: %s" % (time.monotonic() - t0, p.stdout.strip()))
        # Commands must run in the container, never on the host.
        assert self.run("cat", "/etc/hostname").stdout.strip() == "sdbox"

    def start(self):
        self.boot()
        # The overlay shows the host's /: logs of a lograild that ran on the
        # host must not leak in (a root-owned messages.log there made the
        # unit fail to start).  Removed in the container only.
        self.run("rm", "-rf", "/var/log/lograil")
        # The user, from the shipped sysusers file (as systemd-sysusers.service would).
        self.run("systemd-sysusers", SYSUSERSDIR + "/lograil.conf")

    def stop(self):
        # kill, not stop: a graceful poweroff costs seconds and tests nothing here.
        p = subprocess.run([SDBOX, "kill"], env=self.env, capture_output=True, text=True,
                           timeout=60)
        self.up = False
        shutil.rmtree(self.work, ignore_errors=True)
        assert p.returncode == 0, "sdbox.sh kill: %s%s" % (p.stdout, p.stderr)

    def run(self, *cmd, input=None, check=True, timeout=30):
        p = subprocess.run([SDBOX, "exec", *cmd], env=self.env, input=input,
                           capture_output=True, text=isinstance(input, str) or input is None,
                           timeout=timeout)
        if check and p.returncode != 0:
            pytest.fail("inside the container, %s exited %d\nstdout: %s\nstderr: %s"
                        % (shlex.join(cmd), p.returncode, p.stdout, p.stderr), pytrace=False)
        return p

    def systemctl(self, *args, **kw):
        return self.run("systemctl", "--no-pager", *args, **kw)

    def show(self, unit, *props):
        out = self.systemctl("show", unit, *("-p" + p for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def prop(self, unit, prop):
        return self.show(unit, prop).get(prop, "")

    def journal(self, *units):
        args = [a for u in units for a in ("-u", u)]
        return self.run("journalctl", "--no-pager", "-o", "short-monotonic", *args,
                        check=False).stdout

    def read(self, path):
        """The file's bytes, or None when it does not exist."""
        p = self.run("cat", path, check=False, input=b"")
        return p.stdout if p.returncode == 0 else None

    def write(self, path, text, mode="0644"):
        self.run("/bin/sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
                 "sh", path, mode, input=text)

    def wait(self, pred, timeout, what, interval=0.1):
        """pred()'s first true value; what (text, or a function giving it)
        names the wait in the failure."""
        end = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > end:
                pytest.fail("timed out after %ss waiting for %s"
                            % (timeout, what() if callable(what) else what), pytrace=False)
            time.sleep(interval)

    def wait_state(self, unit, state, timeout=10):
        self.wait(lambda: self.prop(unit, "ActiveState") == state, timeout,
                  lambda: "%s to be %s (it is %s)" % (unit, state, self.prop(unit, "ActiveState")))

    def wait_in_file(self, path, needle, timeout=10):
        needle = needle.encode() if isinstance(needle, str) else needle
        return self.wait(lambda: needle in (self.read(path) or b""), timeout,
                         "%r in %s" % (needle, path))

    def wait_in_journal(self, unit, needle, timeout=10):
        """The unit's journal, once it holds needle."""
        def has():
            j = self.journal(unit)
            return j if needle in j else None
        return self.wait(has, timeout, "%r in the journal of %s" % (needle, unit))


@pytest.fixture
def box(stage):
    b = Box(stage)
    try:
        b.start()
        yield b
        if SAN and b.up:
            j = b.journal("lograild.service")
            found = [m for m in SAN_MARKERS if m in j]
            assert not found, "sanitizer report in the journal:\n" + j
    finally:
        if b.up or os.path.exists(os.path.join(b.work, "unshare.pid")):
            b.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the container's journal (lograild and its socket,
    then the last of everything)."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    b = (item.funcargs.get("box") or item.funcargs.get("syslog_box")) \
        if hasattr(item, "funcargs") else None
    if not isinstance(b, Box) or not b.up:
        return
    try:
        rep.sections.append(("journal: lograild.socket, lograild.service",
                             b.journal("lograild.socket", "lograild.service")))
        st = b.systemctl("status", "lograild.socket", "lograild.service", check=False)
        rep.sections.append(("systemctl status", st.stdout + st.stderr))
        tail = b.run("journalctl", "--no-pager", "-n", "60", check=False).stdout
        rep.sections.append(("journal: last 60 lines", tail))
    except Exception as e:  # the report must not fail because the box did
        rep.sections.append(("journal", "could not read it: %r" % e))


# ---- the Debian package as the system's logger (test_syslog.py) ------------

@pytest.fixture(scope="session")
def deb(sdbox_possible):
    """lograil_*.deb, built once per session with `make deb` into a
    temporary folder, and the rsyslog package to go back to (None when this
    machine has none cached).  The package builds its own binaries without
    sanitizers: under LOGRAIL_SAN the tests that use it skip, since the
    plain run tests the same package."""
    if SAN:
        pytest.skip("the package is built without sanitizers: tested in the plain run")
    for tool in ("dpkg-buildpackage", "dh", "git", "apt-get"):
        if shutil.which(tool) is None:
            skip_or_fail("%s is missing (mk/deps.sh deb installs what make deb needs)" % tool)
    out = tempfile.mkdtemp(prefix="lograil-deb-")
    # nocheck: the unit suites run in `make unit`, not again here.
    p = subprocess.run(["make", "-C", REPO, "--no-print-directory", "B=" + out, "LINTIAN=no",
                        "deb"],
                       capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, DEB_BUILD_OPTIONS="nocheck"))
    if p.returncode != 0:
        pytest.fail("make deb failed:\n%s\n%s" % (p.stdout[-4000:], p.stderr[-4000:]),
                    pytrace=False)
    debs = [f for f in os.listdir(os.path.join(out, "deb"))
            if f.startswith("lograil_") and f.endswith(".deb")]
    assert len(debs) == 1, debs
    cache = "/var/cache/apt/archives"
    rs = sorted(f for f in os.listdir(cache) if re.match(r"rsyslog_.*\.deb$", f)) \
        if os.path.isdir(cache) else []
    stage = tempfile.mkdtemp(prefix="lograil-debstage-")
    os.chmod(stage, 0o755)
    os.makedirs(stage + "/var/tmp/lograil-debs")
    shutil.copy(os.path.join(out, "deb", debs[0]), stage + "/var/tmp/lograil-debs/lograil.deb")
    if rs:
        shutil.copy(os.path.join(cache, rs[-1]), stage + "/var/tmp/lograil-debs/rsyslog.deb")
    shutil.rmtree(out, ignore_errors=True)
    yield {"stage": stage, "lograil": "/var/tmp/lograil-debs/lograil.deb",
           "rsyslog": "/var/tmp/lograil-debs/rsyslog.deb" if rs else None}
    shutil.rmtree(stage, ignore_errors=True)


class SyslogBox(Box):
    """A container with /dev/kmsg and CAP_SYSLOG (sdbox.sh SDBOX_KMSG=1), the
    packages in /var/tmp/lograil-debs, nothing of `make install`, and
    whatever system logger this machine has installed (the overlay shows
    the host's /, dpkg's database included)."""

    def __init__(self, stage):
        super().__init__(stage)
        self.env["SDBOX_KMSG"] = "1"

    def start(self):
        self.boot()
        # A policy-rc.d that forbids starting services (set on the host so
        # that installing rsyslog there starts nothing) would stop the
        # package's units here too: removed in the container only.
        self.run("rm", "-f", "/usr/sbin/policy-rc.d")
        # The overlay shows the host's dpkg database as it is: when an apt
        # run on the host is under way, finish it here (in the overlay only)
        # or apt refuses to install anything.
        if self.run("dpkg", "--audit", check=False).stdout.strip():
            self.run("env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "--configure", "-a",
                     timeout=300)
        # systemd raises net.unix.max_dgram_qlen to 512 at boot, which it
        # cannot do here (/proc/sys is read-only inside): done from outside,
        # in the container's network namespace only, before any socket of
        # the tests exists (a socket takes the value when it is made).
        pid = subprocess.run([SDBOX, "pid"], env=self.env, capture_output=True, text=True,
                             check=True).stdout.strip()
        subprocess.run(["nsenter", "-t", pid, "-n", "sh", "-c",
                        "echo 512 > /proc/sys/net/unix/max_dgram_qlen"], check=True)

    def apt_install(self, path, timeout=120):
        # No recommends: the container has no network, and the host need not
        # have them (rsyslog recommends logrotate).
        return self.run("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y",
                        "-q", "--no-install-recommends", path, timeout=timeout)


@pytest.fixture
def syslog_box(deb):
    b = SyslogBox(deb["stage"])
    b.debs = deb
    try:
        b.start()
        yield b
    finally:
        if b.up or os.path.exists(os.path.join(b.work, "unshare.pid")):
            b.stop()
