"""Integration fixtures: start the real lograild on a temporary directory.

The `daemon` fixture is a factory.  Each call writes a libconfig file into a
fresh directory under /tmp (short, because a Unix socket path holds at most
107 bytes), starts $LOGRAILD -c FILE with its stderr captured to a file, and
waits until the daemon has said "started" and its sockets accept
connections.  Tests talk to the sockets with real clients and assert on what
reached the output files.  Every daemon still running at teardown is killed;
a test that wants the exit code calls .stop(), which sends SIGTERM and
asserts exit code 0 (a sanitizer report makes the daemon exit 66).

Under sanitizers (LOGRAIL_SAN=asan|tsan, exported by the Makefile) the
daemon is several times slower: tests scale their message counts with
scaled() and every deadline with deadline().
"""

import json
import os
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LOGRAILD = os.environ.get("LOGRAILD") or os.path.join(REPO, "build", "lograild")
SAN = os.environ.get("LOGRAIL_SAN", "")

# Words a sanitizer writes when it finds something; the exit code says it
# too, but the message is what a person needs to see.
SAN_MARKERS = ("ERROR: AddressSanitizer", "WARNING: ThreadSanitizer",
               "ERROR: LeakSanitizer", "runtime error:")


def scaled(n, factor=4):
    """Message counts: the full figure normally, a quarter under sanitizers."""
    return max(1, n // factor) if SAN else n


def deadline(seconds):
    """Timeouts: generous, and three times that under sanitizers."""
    return seconds * 3 if SAN else seconds


def daemon_env():
    env = dict(os.environ)
    if SAN == "tsan":
        # The system libuv is not built with TSan, and on Linux it closes
        # descriptors with syscall(SYS_close), which TSan cannot see.  When
        # another thread then gets the same descriptor number from accept4()
        # (the main loop's epoll fd, closed at SIGTERM, is the usual one),
        # TSan reports a race on the number between two threads that never
        # shared anything.  Ignoring the interceptors libuv itself calls
        # removes those reports; races in lograil's own code are still seen.
        env["TSAN_OPTIONS"] = (env.get("TSAN_OPTIONS", "") + " ignore_noninstrumented_modules=1").strip()
    return env


def wait_until(pred, timeout, what, interval=0.02):
    """Poll pred() until it returns a true value; fail naming `what`."""
    end = time.monotonic() + deadline(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            pytest.fail("timed out after %ss waiting for %s" % (deadline(timeout), what))
        time.sleep(interval)


def conf_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return json.dumps(str(v))


def conf_group(d):
    return "{ " + " ".join("%s = %s;" % (k, conf_value(v)) for k, v in d.items()) + " }"


class Daemon:
    """One lograild process and its directory."""

    def __init__(self, workdir, threads=2, queue=64, listen=None, outputs=None, extra="",
                 nofile=None, control="ctl.sock", queue_bytes=None):
        """nofile: (soft, hard) RLIMIT_NOFILE for the daemon.  control: the
        control socket (None: the configuration does not name one, and the
        daemon uses its default under /run).  queue_bytes: queue.max_bytes
        (None: the default)."""
        self.dir = workdir
        self.nofile = nofile
        self.control = self.path(control) if control else None
        if listen is None:
            listen = [{"path": "s.sock", "type": "stream"},
                      {"path": "d.sock", "type": "dgram"}]
        if outputs is None:
            outputs = [{"path": "out.json", "format": "json"},
                       {"path": "out.raw", "format": "raw"}]
        self.listen = [dict(l, path=self.path(l["path"])) for l in listen]
        self.outputs = [dict(o, path=self.path(o["path"])) for o in outputs]
        for o in self.outputs:
            o.setdefault("fsync", "never")
        self.conf = self.path("lograild.conf")
        q = {"capacity": queue}
        if queue_bytes is not None:
            q["max_bytes"] = queue_bytes
        text = ["threads = %d;" % threads, "queue = %s;" % conf_group(q)]
        if self.control:
            text.append("control = %s;" % conf_group({"path": self.control}))
        text.append("listen = (\n  " + ",\n  ".join(conf_group(l) for l in self.listen) + "\n);")
        text.append("outputs = (\n  " + ",\n  ".join(conf_group(o) for o in self.outputs) + "\n);")
        text.append(extra)
        with open(self.conf, "w") as f:
            f.write("\n".join(text) + "\n")
        self.proc = None
        self.stopped = False
        self.returncode = None
        self._errpath = None

    # ---- paths ------------------------------------------------------------

    def path(self, name):
        return name if os.path.isabs(name) else os.path.join(self.dir, name)

    @property
    def stream(self):
        """The first stream socket."""
        return next(l["path"] for l in self.listen if l.get("type", "stream") == "stream")

    @property
    def dgram(self):
        """The first datagram socket."""
        return next(l["path"] for l in self.listen if l.get("type") == "dgram")

    @property
    def pid(self):
        return self.proc.pid

    # ---- life ---------------------------------------------------------------

    def spawn(self, name="lograild"):
        assert self.proc is None
        self._errpath = self.path(name + ".stderr")
        self._err = open(self._errpath, "wb")
        self.proc = subprocess.Popen([LOGRAILD, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self._err, stderr=self._err, cwd=self.dir,
                                     env=daemon_env(), preexec_fn=self._limits)
        return self

    def _limits(self):
        if self.nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile)

    def nofile_limit(self):
        """The daemon's soft RLIMIT_NOFILE, as it is now."""
        with open("/proc/%d/limits" % self.pid) as f:
            return next(int(l.split()[3]) for l in f if l.startswith("Max open files"))

    def start(self, probe=True):
        """Spawn and wait until it serves.  probe=False skips the test
        connections, for tests that count the daemon's connections."""
        self.spawn()

        def ready():
            if self.proc.poll() is not None:
                pytest.fail("lograild exited with %s at start:\n%s"
                            % (self.proc.returncode, self.stderr()))
            if "started:" not in self.stderr():
                return False
            return all(os.path.exists(l["path"]) for l in self.listen)

        wait_until(ready, 30, "lograild to start")
        if probe:
            for l in self.listen:
                kind = socket.SOCK_DGRAM if l.get("type") == "dgram" else socket.SOCK_STREAM
                with socket.socket(socket.AF_UNIX, kind) as s:
                    s.settimeout(deadline(10))
                    s.connect(l["path"])
        return self

    def start_failing(self, timeout=30):
        """Spawn a daemon that is expected to refuse to start; its exit code."""
        self.spawn()
        try:
            rc = self.proc.wait(deadline(timeout))
        except subprocess.TimeoutExpired:
            pytest.fail("lograild did not exit although it should refuse to start:\n"
                        + self.stderr())
        self.stopped = True
        self.returncode = rc
        self._err.close()
        return rc

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=120, expect=0, sig=signal.SIGTERM):
        """Send sig (None: a signal was sent already), wait, and assert the
        exit code (0 unless told)."""
        if self.stopped:
            return self.returncode
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(deadline(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("lograild did not stop within %ss of SIGTERM:\n%s"
                        % (deadline(timeout), self.stderr()))
        self.stopped = True
        self.returncode = rc
        self._err.close()
        err = self.stderr()
        assert rc == expect, "lograild exited with %d (expected %d); stderr:\n%s" % (rc, expect, err)
        for m in SAN_MARKERS:
            assert m not in err, "sanitizer report in stderr:\n" + err
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None and not self._err.closed:
            self._err.close()

    def alive(self):
        return self.proc.poll() is None

    # ---- what it wrote ------------------------------------------------------

    def stderr(self):
        if self._errpath is None or not os.path.exists(self._errpath):
            return ""
        with open(self._errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def read(self, output=None):
        p = self.path(output or self.outputs[0]["path"])
        if not os.path.exists(p):
            return b""
        with open(p, "rb") as f:
            return f.read()

    def lines(self, output="out.raw"):
        """The output's lines as bytes.  Every record ends with a newline,
        so a file that does not is a bug (checked once the daemon stopped)."""
        data = self.read(output)
        if not data:
            return []
        if self.stopped:
            assert data.endswith(b"\n"), "output %s does not end with a newline" % output
        return data[: data.rfind(b"\n")].split(b"\n") if b"\n" in data else []

    def records(self, output="out.json"):
        return [json.loads(l) for l in self.lines(output)]

    def wait_lines(self, n, output="out.raw", timeout=30):
        """Wait until the output has at least n lines; return them."""
        got = []

        def enough():
            got[:] = self.lines(output)
            return len(got) >= n

        wait_until(enough, timeout, "%d lines in %s (have %d)" % (n, output, len(got)))
        return got

    def wait_records(self, n, output="out.json", timeout=30):
        return [json.loads(l) for l in self.wait_lines(n, output, timeout)]

    def status(self, key):
        """A field of /proc/PID/status in kB (VmHWM, VmRSS)."""
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def stats(self):
        """Every counter, from the control socket: {"queue": {...},
        "listener PATH": {...}, "output PATH": {...}, ...}, values int
        where they are numbers."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(deadline(30))
            s.connect(self.control)
            s.sendall(b"stats\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
        out, cur = {}, None
        for line in data.decode().splitlines():
            if line.startswith("# "):
                cur = out.setdefault(line[2:], {})
            elif ": " in line and cur is not None:
                k, v = line.split(": ", 1)
                cur[k] = int(v) if v.lstrip("-").isdigit() else v
        return out

    def listener_stats(self, path):
        return self.stats()["listener " + self.path(path)]

    def nfds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))


@pytest.fixture
def workdir():
    # World-searchable, so that clients running as another uid reach the
    # sockets; short, for sun_path.
    d = tempfile.mkdtemp(dir="/tmp", prefix="lr")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemon(workdir):
    """Factory: daemon(**config) -> started Daemon.  daemon.new(**config)
    returns one not yet started (for tests of start-up failures)."""
    made = []
    counter = [0]

    def new(**kw):
        sub = workdir if not made else os.path.join(workdir, "d%d" % counter[0])
        counter[0] += 1
        os.makedirs(sub, exist_ok=True)
        d = Daemon(sub, **kw)
        made.append(d)
        return d

    def factory(probe=True, **kw):
        return new(**kw).start(probe=probe)

    factory.new = new
    factory.dir = workdir
    yield factory
    for d in made:
        d.kill()


@pytest.fixture(scope="session", autouse=True)
def _lograild_exists():
    if not os.access(LOGRAILD, os.X_OK):
        pytest.exit("LOGRAILD=%s is not an executable; run `make` first" % LOGRAILD, 2)


@pytest.fixture(scope="session")
def clients_bin():
    """The C helper clients, built once per session into a temporary folder."""
    out = tempfile.mkdtemp(dir="/tmp", prefix="lrc")
    os.chmod(out, 0o755)
    src = os.path.join(HERE, "clients")
    built = {}
    for name in sorted(os.listdir(src)):
        if not name.endswith(".c"):
            continue
        exe = os.path.join(out, name[:-2])
        r = subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-Wall", "-Werror",
                            "-o", exe, os.path.join(src, name)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.fail("cannot build %s:\n%s" % (name, r.stderr))
        built[name[:-2]] = exe
    yield built
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture
def many_fds():
    """Raise this process's open-file limit to its hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def small_fs(workdir):
    """A tmpfs of its own (root only), unmounted at teardown: a disk to fill."""
    mnt = os.path.join(workdir, "fs")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs to fill (needs root and CAP_SYS_ADMIN): %s"
                    % (r.stderr.strip() or r.returncode))
    yield mnt
    # The daemon fixture kills the daemon after this teardown: lazy, so
    # that open files do not keep the mount busy.
    subprocess.run(["umount", "-l", mnt], capture_output=True)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: floods of messages (tens of seconds)")


# ---- clients ---------------------------------------------------------------

def connect(path, timeout=30):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(deadline(timeout))
    s.connect(path)
    return s


def stream_send(path, data, timeout=60):
    """One connection: send data, close."""
    with connect(path, timeout) as s:
        s.sendall(data)


def dgram_send(path, *datagrams, timeout=60):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.settimeout(deadline(timeout))
        s.connect(path)
        for d in datagrams:
            s.send(d)


def wait_eof(s, timeout=30):
    """True when the daemon closed the connection (recv returns b"")
    within timeout; data the daemon would send is a failure."""
    s.settimeout(deadline(timeout))
    try:
        data = s.recv(1)
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
    assert data == b"", "the daemon sent data: %r" % data
    return True


def closed_now(s):
    """True when the daemon has closed s already; does not wait."""
    s.settimeout(0)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


class FifoOutput:
    """An output that is a FIFO: the writer blocks in write(2) until the
    test reads, which holds the writer back as a stuck disk would, with no
    hook in the daemon.  Create it before the daemon starts (our read end
    must be open, or the daemon's open() would wait), then start() reading
    when the writer may go on."""

    def __init__(self, path):
        self.path = path
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.chunks = []
        self.thread = None
        self.finish = threading.Event()

    def _drain(self):
        while True:
            select.select([self.fd], [], [], 0.2)
            try:
                b = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                continue
            if b:
                self.chunks.append(b)
            elif self.finish.is_set():
                return  # the daemon has exited and all it wrote is read
            else:
                # No writer for now: the daemon is between closing and
                # reopening its outputs (SIGHUP), or about to exit.
                time.sleep(0.01)

    def start(self):
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def join(self, timeout=60):
        """Once the daemon has exited: all that it wrote."""
        self.finish.set()
        self.thread.join(deadline(timeout))
        assert not self.thread.is_alive(), "the FIFO was never closed by the daemon"
        return b"".join(self.chunks)

    def close(self):
        os.close(self.fd)
