#!/usr/bin/python3
"""End-to-end benchmark: lograild against rsyslog, syslog-ng and a floor.

    make bench-e2e
    python3 bench/e2e/run.py --lograild build/lograild --build build/e2e \\
        [--workloads W1,W1b,W2,W3,W4,W1f,L] [--daemons floor,lograild,rsyslog,syslog-ng]
        (--daemons may also name floor-2t: the floor writing from a second thread)
        [--rounds 5] [--quick] [--no-install] [--csv FILE] [--keep]

Each workload is run against each daemon, interleaved (round 1: W1 floor,
lograild, rsyslog, syslog-ng; W1b ...; round 2: ...), and medians are
reported.  bench/e2e/README.md says what is measured and how.
"""

import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HELPERS = ("loadgen", "floor", "check")
CLK_TCK = os.sysconf("SC_CLK_TCK")
DAEMONS = ("floor", "lograild", "rsyslog", "syslog-ng")
# Known but not run by default: the floor with its write(2) calls in a second
# thread (floor -t), to show what a writer thread costs by itself.
EXTRA_DAEMONS = ("floor-2t",)

# name: (transport, clients, messages per client, size, messages per write,
#        fsync, rate msgs/s (latency mode) or 0, what it is)
WORKLOADS = {
    "W1": ("stream", 4, 250_000, 120, 1, None, 0, "4 stream clients x 250k x 120 B, 1 msg/write"),
    "W1b": ("stream", 4, 250_000, 120, 64, None, 0, "W1 with 64 msgs/write"),
    "W2": ("stream", 16, 62_500, 120, 1, None, 0, "16 stream clients x 62.5k x 120 B"),
    "W3": ("dgram", 4, 100_000, 120, 1, None, 0, "4 datagram clients x 100k x 120 B"),
    "W4": ("stream", 4, 25_000, 2000, 1, None, 0, "4 stream clients x 25k x 2000 B"),
    "W1f": ("stream", 4, 250_000, 120, 1, "1s", 0, "W1 with fsync once a second"),
    "L": ("stream", 4, 50_000, 120, 1, None, 20_000, "latency: 4 stream clients, 20k msg/s total, 10 s"),
    # Not run by default: every daemon's own per-batch fsync (lograild
    # fsync = "always", rsyslog sync="on", syslog-ng fsync(yes), the floor
    # fdatasync after every write).
    "W1s": ("stream", 4, 25_000, 120, 1, "always", 0, "4 x 25k x 120 B, each daemon's per-batch fsync"),
    # Network inputs (127.0.0.1; each daemon's TCP and UDP listeners).
    "W5": ("tcp", 16, 62_500, 120, 1, None, 0, "16 TCP clients x 62.5k x 120 B"),
    "W6": ("tcp", 999, 200, 120, 1, None, 0, "999 TCP connections x 200 x 120 B (client ids have 3 digits)"),
    "W8": ("udp", 4, 50_000, 120, 1, None, 100_000, "UDP, 4 senders at 100k msg/s in all, 2 s"),
    # W5 over TLS: loadgen -t, one TLS session per connection, handshakes
    # before the start.  The floor decrypts on the socket (floor -k).
    "W7": ("tls", 16, 62_500, 120, 1, None, 0, "W5 over TLS (16 TLS clients x 62.5k x 120 B)"),
    # W8 at the issue's second offered rate; loss = datagrams the kernel dropped.
    "W8b": ("udp", 4, 150_000, 120, 1, None, 300_000, "UDP, 4 senders at 300k msg/s in all, 2 s"),
    # A higher offered rate, to separate the peers by their drops.
    "W8c": ("udp", 4, 500_000, 120, 1, None, 1_000_000, "UDP, 4 senders asked for 1M msg/s in all (they reach less)"),
}
DEFAULT_WORKLOADS = ("W1", "W1b", "W2", "W3", "W4", "W1f", "L", "W5", "W6", "W7", "W8", "W8b", "W8c")
NET = ("tcp", "udp", "tls")


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

# Peers are compared with lograild; the floor with everyone.
PEERS = ("rsyslog", "syslog-ng")

# --dgram-qlen: every daemon (the floor too) starts in a private network
# namespace whose net.unix.max_dgram_qlen is this; None: the machine's.
DGRAM_QLEN = None


def machine_qlen():
    with open("/proc/sys/net/unix/max_dgram_qlen") as f:
        return int(f.read())


def in_qlen_netns(argv, qlen):
    """argv run in a new network namespace with max_dgram_qlen = qlen.  The
    kernel takes a datagram socket's queue length from the namespace of the
    process that creates it, and a socket bound to a path is reached from any
    namespace, so only the daemon has to run there.  No fork: the PID stays
    the daemon's."""
    return ["unshare", "-n", "sh", "-c",
            'echo "$0" > /proc/sys/net/unix/max_dgram_qlen && exec "$@"', str(qlen)] + argv


class BenchError(Exception):
    pass


class Interrupted(BaseException):
    pass


def log(*args):
    print(*args, flush=True)


def note(*args):
    print("  note:", *args, flush=True)


# --------------------------------------------------------------------------
# Helpers in C


def build_helpers(build):
    os.makedirs(build, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    for name in HELPERS:
        src = os.path.join(HERE, name + ".c")
        out = os.path.join(build, name)
        if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
            continue
        cmd = [cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-pthread", "-o", out, src]
        if name in ("loadgen", "floor"):
            cmd += ["-lssl", "-lcrypto"]  # their TLS client and server (W7)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise BenchError(f"compiling {src} failed:\n{r.stderr}")
    return {name: os.path.join(build, name) for name in HELPERS}


# --------------------------------------------------------------------------
# Installing the peers
#
# rsyslog and syslog-ng-core conflict as Debian packages: whichever is on the
# system is used; a missing rsyslog is installed with apt-get (unless
# syslog-ng-core is installed), and the other is unpacked with dpkg -x into
# BUILD/peers/NAME/root, its library dependencies installed normally.  An
# /usr/sbin/policy-rc.d that exits 101 keeps the install from starting a
# system-wide daemon; any that starts anyway is killed.

APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def run_cmd(cmd, timeout=600, cwd=None, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    if r.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({r.returncode}):\n{(r.stderr or r.stdout)[-2000:]}")
    return r.stdout


def as_root(cmd):
    if os.geteuid() == 0:
        return cmd
    if shutil.which("sudo"):
        return ["sudo", "-n"] + cmd
    raise BenchError("installing needs root (or sudo)")


def syslog_pids():
    pids = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("rsyslogd", "syslog-ng") or comm.startswith("rs:"):
            pids.add(int(pid))
    return pids


class Installer:
    def __init__(self, build):
        self.build = build
        self.updated = False

    def apt(self, args, timeout=900):
        if not self.updated:
            log("  apt-get update")
            run_cmd(as_root(["apt-get", "update", "-q"]), timeout=600, env=APT_ENV)
            self.updated = True
        before = syslog_pids()
        made_policy = False
        policy = "/usr/sbin/policy-rc.d"
        try:
            if not os.path.exists(policy):
                run_cmd(as_root(["sh", "-c", f"printf '#!/bin/sh\\nexit 101\\n' >{policy} && chmod 755 {policy}"]))
                made_policy = True
            log("  apt-get " + " ".join(args))
            run_cmd(as_root(["apt-get", "-y", "-q", "--no-install-recommends"] + args),
                    timeout=timeout, env=APT_ENV)
        finally:
            if made_policy:
                subprocess.run(as_root(["rm", "-f", policy]), timeout=30)
            for pid in syslog_pids() - before:
                note(f"the install started a system daemon (pid {pid}); killing it")
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

    def unpack(self, package):
        """apt-get download PACKAGE, dpkg -x into BUILD/peers/PACKAGE/root,
        and install the libraries it depends on.  Returns the root."""
        top = os.path.join(self.build, "peers", package)
        root = os.path.join(top, "root")
        stamp = os.path.join(top, "unpacked")
        if os.path.exists(stamp):
            return root
        shutil.rmtree(top, ignore_errors=True)
        os.makedirs(top)
        if not self.updated:
            log("  apt-get update")
            run_cmd(as_root(["apt-get", "update", "-q"]), timeout=600, env=APT_ENV)
            self.updated = True
        log(f"  apt-get download {package}; dpkg -x into {root}")
        run_cmd(["apt-get", "download", "-q", package], cwd=top, timeout=600, env=APT_ENV)
        debs = [f for f in os.listdir(top) if f.endswith(".deb")]
        if not debs:
            raise BenchError(f"apt-get download {package}: no .deb")
        deb = os.path.join(top, debs[0])
        run_cmd(["dpkg-deb", "-x", deb, root])
        depends = run_cmd(["dpkg-deb", "-f", deb, "Depends"]).strip()
        wanted = []
        for alt in depends.split(","):
            name = alt.split("|")[0].strip().split(" ")[0].split(":")[0]
            if not name:
                continue
            st = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", name],
                                capture_output=True, text=True)
            if "install ok installed" not in st.stdout:
                wanted.append(name)
        if wanted:
            self.apt(["install"] + wanted)
        with open(stamp, "w") as f:
            f.write(depends + "\n")
        return root


def system_binary(name):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def find_peers(build, wanted, install):
    """Returns {name: (argv prefix, env)} for the peers that can run."""
    found = {}
    inst = Installer(build)
    env = dict(os.environ)

    # rsyslog
    if "rsyslog" in wanted:
        try:
            rs = system_binary("rsyslogd")
            if not rs and install and not system_binary("syslog-ng"):
                inst.apt(["install", "rsyslog"])
                rs = system_binary("rsyslogd")
            if rs:
                found["rsyslog"] = ([rs], env, None)
            elif install:
                root = inst.unpack("rsyslog")
                rs = os.path.join(root, "usr/sbin/rsyslogd")
                mods = os.path.join(root, "usr/lib/x86_64-linux-gnu/rsyslog")
                found["rsyslog"] = ([rs, "-M", mods], env, root)
        except (BenchError, subprocess.TimeoutExpired, OSError) as e:
            note(f"rsyslog could not be installed; running without it: {e}")

    # syslog-ng
    if "syslog-ng" in wanted:
        try:
            sng = system_binary("syslog-ng")
            if sng:
                found["syslog-ng"] = ([sng], env, None)
            else:
                root = os.path.join(build, "peers", "syslog-ng-core", "root")
                if not os.path.exists(os.path.join(root, "usr/sbin/syslog-ng")) and install:
                    root = inst.unpack("syslog-ng-core")
                binary = os.path.join(root, "usr/sbin/syslog-ng")
                if os.path.exists(binary):
                    libdir = os.path.join(root, "usr/lib/syslog-ng")
                    ver = [d for d in os.listdir(libdir) if re.fullmatch(r"\d+\.\d+", d)]
                    e = dict(env, LD_LIBRARY_PATH=libdir + ":" + env.get("LD_LIBRARY_PATH", ""))
                    argv = [binary, "--module-path", os.path.join(libdir, ver[0])] if ver else [binary]
                    found["syslog-ng"] = (argv, e, root)
        except (BenchError, subprocess.TimeoutExpired, OSError) as e:
            note(f"syslog-ng could not be installed; running without it: {e}")

    # Does each one start at all?
    for name in list(found):
        argv, e, _ = found[name]
        flag = "-v" if name == "rsyslog" else "--version"
        try:
            r = subprocess.run(argv + [flag], capture_output=True, text=True, timeout=30, env=e)
            first = (r.stdout or r.stderr).strip().splitlines()[:1]
            if r.returncode != 0 or not first:
                raise BenchError((r.stderr or r.stdout).strip()[-500:])
            found[name] = (argv, e, first[0])
        except (BenchError, subprocess.TimeoutExpired, OSError) as ex:
            note(f"{name} does not run; running without it: {ex}")
            del found[name]
    for name in wanted:
        if name in PEERS and name not in found:
            note(f"{name} is not available: its columns stay empty")
    return found


# --------------------------------------------------------------------------
# Daemons


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def thread_cpu_s(pid):
    """{tid: (name, CPU seconds)} for every thread of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                data = f.read()
        except OSError:
            continue
        name = data[data.index("(") + 1:data.rindex(")")]
        fields = data[data.rindex(")") + 2:].split()
        out[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def thread_split(before, after, messages):
    """'name#1:0.31 name#2:0.45 ...': each thread's CPU µs per message
    during the run, threads in creation order (tid order)."""
    parts = []
    for i, tid in enumerate(sorted(after), 1):
        name, cpu = after[tid]
        cpu0 = before.get(tid, (name, 0.0))[1]
        parts.append(f"{name.replace(' ', '_')}#{i}:{(cpu - cpu0) * 1e6 / messages:.2f}")
    return " ".join(parts)


def udp_kernel_drops(port):
    """The drops column of /proc/net/udp for the socket bound to port
    (datagrams the kernel threw away: receive buffer full); None if absent."""
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if int(fields[1].split(":")[1], 16) == port:
                    return int(fields[-1])
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return None


def proc_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Daemon:
    """One daemon under test in one run directory."""

    name = ""

    def __init__(self, rundir, wl, helpers, peers, lograild):
        self.rundir = rundir
        self.wl = wl
        self.helpers = helpers
        self.peers = peers
        self.lograild = lograild
        self.stream = os.path.join(rundir, "stream.sock")
        self.dgram = os.path.join(rundir, "dgram.sock")
        self.outdir = os.path.join(rundir, "out")
        self.out = os.path.join(self.outdir, "messages.log")
        os.makedirs(self.outdir)
        # Network workloads: one port for this run; loadgen's target.
        self.net = wl[0] if wl[0] in NET else None
        self.port = free_port(socket.SOCK_DGRAM if self.net == "udp" else socket.SOCK_STREAM) \
            if self.net else None
        self.target = (f"inet:{self.port}" if self.net else
                       self.dgram if wl[0] == "dgram" else self.stream)
        self.proc = None
        self.logf = None
        self.fsync = wl[5]
        if self.net == "tls":
            self.make_cert()

    def make_cert(self):
        """A self-signed server certificate for the TLS workloads."""
        self.cert = os.path.join(self.rundir, "srv.pem")
        self.key = os.path.join(self.rundir, "srv.key")
        run_cmd(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", "/CN=localhost", "-keyout", self.key, "-out", self.cert], timeout=60)

    def argv(self):
        raise NotImplementedError

    def env(self):
        return None

    def start(self):
        argv = self.argv()
        if DGRAM_QLEN is not None:
            argv = in_qlen_netns(argv, DGRAM_QLEN)
        self.logf = open(os.path.join(self.rundir, "daemon.log"), "w+")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.env(),
                                     cwd=self.rundir, start_new_session=True)
        self.wait_ready(15)

    def log_tail(self):
        if not self.logf:
            return ""
        self.logf.flush()
        self.logf.seek(0)
        return self.logf.read()[-1500:]

    def wait_ready(self, timeout):
        if self.net:
            return self.wait_port(timeout)
        deadline = time.monotonic() + timeout
        stype = socket.SOCK_DGRAM if self.wl[0] == "dgram" else socket.SOCK_STREAM
        path = self.dgram if self.wl[0] == "dgram" else self.stream
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited at start ({self.proc.returncode}):\n{self.log_tail()}")
            if os.path.exists(path):
                s = socket.socket(socket.AF_UNIX, stype)
                try:
                    s.connect(path)
                    return
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.02)
        raise BenchError(f"{self.name} did not open {path} within {timeout} s:\n{self.log_tail()}")

    def wait_port(self, timeout):
        """The daemon holds its port: TCP accepts, or UDP cannot be bound."""
        deadline = time.monotonic() + timeout
        kind = socket.SOCK_DGRAM if self.net == "udp" else socket.SOCK_STREAM
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited at start ({self.proc.returncode}):\n{self.log_tail()}")
            with socket.socket(socket.AF_INET, kind) as s:
                try:
                    if kind == socket.SOCK_STREAM:
                        s.connect(("127.0.0.1", self.port))
                        return
                    s.bind(("127.0.0.1", self.port))
                except OSError:
                    if kind == socket.SOCK_DGRAM:
                        return
            time.sleep(0.02)
        raise BenchError(f"{self.name} did not open port {self.port} within {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout=30):
        """SIGTERM, wait; SIGKILL past the time-out.  Returns the exit code."""
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            note(f"{self.name} did not stop within {timeout} s; killed")
            self.kill()
            return "killed"

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.logf:
            self.logf.close()
            self.logf = None

    def outputs(self):
        """Every output file (live and archives), oldest first."""
        files = []
        for dirpath, _, names in os.walk(self.outdir):
            for n in names:
                files.append(os.path.join(dirpath, n))
        return sorted(files, key=lambda p: (p == self.out, p))

    # An outside fsync once a second, for daemons that have no such setting.
    def start_syncer(self):
        self._stop_sync = threading.Event()

        def loop():
            fd = -1
            while not self._stop_sync.wait(1.0):
                if fd < 0:
                    try:
                        fd = os.open(self.out, os.O_RDONLY)
                    except OSError:
                        continue
                os.fsync(fd)
            if fd >= 0:
                os.close(fd)

        self._sync_thread = threading.Thread(target=loop, daemon=True)
        self._sync_thread.start()

    def stop_syncer(self):
        if getattr(self, "_sync_thread", None):
            self._stop_sync.set()
            self._sync_thread.join(30)


class Floor(Daemon):
    name = "floor"

    def argv(self):
        a = [self.helpers["floor"], "-o", self.out,
             "-s", self.target if self.net in ("tcp", "tls") else self.stream,
             "-d", self.target if self.net == "udp" else self.dgram]
        if self.net == "tls":
            a += ["-k", f"{self.cert},{self.key}"]
        if self.fsync == "1s":
            a += ["-f", "1000"]
        elif self.fsync == "always":
            a += ["-f", "1"]  # near enough: a millisecond timer
        return a


class FloorTwoThreads(Floor):
    name = "floor-2t"

    def argv(self):
        return super().argv() + ["-t"]


class Lograild(Daemon):
    name = "lograild"

    def argv(self):
        conf = os.path.join(self.rundir, "lograild.conf")
        fsync = self.fsync or "never"
        with open(conf, "w") as f:
            f.write(f"""# bench/e2e: the default configuration but for sockets and outputs
control = {{ path = "{self.rundir}/control.sock"; }};
listen = (
  {{ path = "{self.stream}"; type = "stream"; }},
  {{ path = "{self.dgram}"; type = "dgram"; }}{self.lograild_net()}
);
outputs = (
  {{ path = "{self.out}"; fsync = "{fsync}"; rotate = {{ max_size = "64G"; }}; }}
);
""")
        return [self.lograild, "-c", conf]

    def lograild_net(self):
        if self.net == "tcp":
            return f',\n  {{ address = "127.0.0.1:{self.port}"; type = "tcp"; max_connections = 4096; }}'
        if self.net == "udp":
            return f',\n  {{ address = "127.0.0.1:{self.port}"; type = "udp"; rcvbuf = "8M"; }}'
        if self.net == "tls":
            return (f',\n  {{ address = "127.0.0.1:{self.port}"; type = "tls"; max_connections = 4096;'
                    f' tls = {{ cert = "{self.cert}"; key = "{self.key}"; }}; }}')
        return ""


class Rsyslog(Daemon):
    name = "rsyslog"

    def argv(self):
        conf = os.path.join(self.rundir, "rsyslog.conf")
        work = os.path.join(self.rundir, "rsyslog-work")
        os.makedirs(work)
        sync = ' sync="on"' if self.fsync == "always" else ""
        with open(conf, "w") as f:
            f.write(f"""# bench/e2e: rsyslog with its defaults but for inputs, output and paths
global(workDirectory="{work}"{self.rsyslog_tls_global()})
module(load="imuxsock" SysSock.Use="off")
module(load="imptcp")
input(type="imuxsock" Socket="{self.dgram}" RateLimit.Interval="0")
input(type="imptcp" path="{self.stream}" unlink="on")
{self.rsyslog_net()}*.* action(type="omfile" file="{self.out}" template="RSYSLOG_TraditionalFileFormat"{sync})
""")
        argv, _, _ = self.peers["rsyslog"]
        return argv + ["-n", "-f", conf, "-i", os.path.join(self.rundir, "rsyslogd.pid")]

    def env(self):
        return self.peers["rsyslog"][1]

    def rsyslog_tls_global(self):
        if self.net != "tls":
            return ""
        return (f' DefaultNetstreamDriver="ossl" DefaultNetstreamDriverCAFile="{self.cert}"'
                f' DefaultNetstreamDriverCertFile="{self.cert}" DefaultNetstreamDriverKeyFile="{self.key}"')

    def rsyslog_net(self):
        if self.net == "tls":
            return ('module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1"'
                    ' StreamDriver.AuthMode="anon" MaxSessions="4096")\n'
                    f'input(type="imtcp" port="{self.port}" address="127.0.0.1")\n')
        if self.net == "tcp":
            return f'input(type="imptcp" port="{self.port}" address="127.0.0.1")\n'
        if self.net == "udp":
            return ('module(load="imudp")\n'
                    f'input(type="imudp" port="{self.port}" address="127.0.0.1" rcvbufSize="8m")\n')
        return ""


class SyslogNg(Daemon):
    name = "syslog-ng"

    def argv(self):
        conf = os.path.join(self.rundir, "syslog-ng.conf")
        fsync = " fsync(yes)" if self.fsync == "always" else ""
        with open(conf, "w") as f:
            f.write(f"""# bench/e2e: syslog-ng with its defaults but for sources, destination and paths
@version: 3.38
source s_bench {{
  unix-stream("{self.stream}");
  unix-dgram("{self.dgram}");{self.ng_net()}
}};
destination d_bench {{ file("{self.out}"{fsync}); }};
log {{ source(s_bench); destination(d_bench); flags(flow-control); }};
""")
        argv, _, _ = self.peers["syslog-ng"]
        r = self.rundir
        return argv + ["-F", "-f", conf, "-p", f"{r}/syslog-ng.pid", "-R", f"{r}/syslog-ng.persist",
                       "-c", f"{r}/syslog-ng.ctl"]

    def env(self):
        return self.peers["syslog-ng"][1]

    def ng_net(self):
        if self.net == "tcp":
            return (f'\n  network(ip("127.0.0.1") port({self.port}) transport("tcp")'
                    ' max-connections(4096));')
        if self.net == "tls":
            return (f'\n  network(ip("127.0.0.1") port({self.port}) transport("tls")'
                    f' tls(key-file("{self.key}") cert-file("{self.cert}") peer-verify(optional-untrusted))'
                    ' max-connections(4096));')
        if self.net == "udp":
            return (f'\n  network(ip("127.0.0.1") port({self.port}) transport("udp")'
                    ' so-rcvbuf(8388608));')
        return ""


CLASSES = {"floor": Floor, "floor-2t": FloorTwoThreads, "lograild": Lograild,
           "rsyslog": Rsyslog, "syslog-ng": SyslogNg}


# --------------------------------------------------------------------------
# One run


def parse_kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


def read_line(proc, timeout, what):
    """First line of proc's stdout within timeout."""
    result = []

    def reader():
        result.append(proc.stdout.readline())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout)
    if not result or not result[0]:
        raise BenchError(f"{what}: no answer within {timeout} s")
    return result[0]


def kill_proc(p):
    if p and p.poll() is None:
        try:
            p.kill()
            p.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            pass


def raise_priority():
    try:
        os.nice(-15)
    except OSError:
        pass


def one_run(name, wname, wl, args, helpers, peers, tmp, seq):
    transport, clients, per_client, size, per_write, fsync, rate, _ = wl
    rundir = os.path.join(tmp, f"{seq:03d}-{wname}-{name}")
    os.makedirs(rundir)
    d = CLASSES[name](rundir, wl, helpers, peers, args.lograild)
    follow = gen = None
    timeout = args.timeout
    with open("/proc/loadavg") as f:
        load1 = float(f.read().split()[0])
    res = {"workload": wname, "daemon": name, "messages": clients * per_client, "load1": load1}
    try:
        d.start()
        if fsync == "1s" and name in PEERS:
            d.start_syncer()
        time.sleep(0.2)  # let start-up messages settle
        cpu0 = proc_cpu_s(d.proc.pid)
        threads0 = thread_cpu_s(d.proc.pid)

        fargs = [helpers["check"], "follow", "-p", d.out, "-c", str(clients), "-n", str(per_client),
                 "-i", str(args.idle), "-T", str(timeout)]
        fargs += ["-l"] if rate else ["-P", "2"]
        # In latency mode the follower runs at nice -15 (when it may) so that
        # its own wake-ups do not count as the daemon's latency.
        follow = subprocess.Popen(fargs, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                  preexec_fn=raise_priority if rate else None)
        if read_line(follow, 10, "check follow").strip() != "ready":
            raise BenchError("check follow did not start")

        gargs = [helpers["loadgen"], "-s", d.target,
                 "-c", str(clients), "-n", str(per_client), "-S", str(size), "-k", str(per_write),
                 "-T", str(int(timeout))]
        if transport in ("dgram", "udp"):
            gargs.append("-d")
        if transport == "tls":
            gargs.append("-t")
        if rate:
            gargs += ["-r", str(rate)]
        gen = subprocess.Popen(gargs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
        try:
            gout, gerr = gen.communicate(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            raise BenchError(f"loadgen did not finish within {timeout} s")
        if gen.returncode != 0:
            raise BenchError(f"loadgen failed ({gen.returncode}): {gerr.strip()}\n{d.log_tail()}")
        g = parse_kv(gout)

        follow.send_signal(signal.SIGUSR1)
        try:
            fout, _ = follow.communicate(timeout=timeout + args.idle + 10)
        except subprocess.TimeoutExpired:
            raise BenchError("check follow did not finish")
        fr = parse_kv(fout)
        if not fr.get("done_ns"):
            raise BenchError(f"check follow: {fout!r}")

        alive = d.proc.poll() is None
        if alive:
            cpu1 = proc_cpu_s(d.proc.pid)
            threads1 = thread_cpu_s(d.proc.pid)
            hwm = proc_hwm_kib(d.proc.pid)
            kdrops = udp_kernel_drops(d.port) if d.net == "udp" else None
        d.stop_syncer()
        code = d.stop()
        if not alive:
            raise BenchError(f"{name} died during the run ({code}):\n{d.log_tail()}")

        scan = subprocess.run([helpers["check"], "scan", "-c", str(clients), "-n", str(per_client)]
                              + d.outputs(), capture_output=True, text=True, timeout=300)
        sc = parse_kv(scan.stdout)
        if not sc:
            raise BenchError(f"check scan failed: {scan.stderr}")

        done = int(fr["done_ns"])
        start = int(g["start_ns"])
        unique = int(fr["unique"])
        elapsed = (done - start) / 1e9 if done > start else float("nan")
        res.update(
            elapsed_s=elapsed,
            msgs_per_s=unique / elapsed if elapsed > 0 else float("nan"),
            send_s=(int(g["end_ns"]) - start) / 1e9,
            cpu_s=cpu1 - cpu0,
            cpu_us_per_msg=(cpu1 - cpu0) * 1e6 / res["messages"],
            cpu_threads=thread_split(threads0, threads1, res["messages"]),
            peak_rss_kib=hwm,
            complete=int(fr["complete"]),
            missing=int(sc["missing"]),
            dup=int(sc["dup"]),
            bad=int(sc["bad"]),
            other_lines=int(sc["other"]),
            loss=int(sc["missing"]) + int(sc["dup"]),
            exit_code=code,
            loadgen_cpu_us_per_msg=int(g["cpu_us"]) / res["messages"],
            archives=len(d.outputs()) - 1,
        )
        if kdrops is not None:
            res["kernel_drops"] = kdrops
        if rate:
            for k in ("p50_us", "p99_us", "p999_us", "max_us"):
                res[k] = float(fr[k])
        if res["loss"] or not res["complete"]:
            note(f"{wname} {name}: missing {res['missing']}, duplicated {res['dup']}"
                 f" (complete={res['complete']})")
        if code not in (0, None):
            note(f"{wname} {name}: exit code {code} at stop\n{d.log_tail()}")
        return res
    finally:
        kill_proc(gen)
        kill_proc(follow)
        d.stop_syncer()
        d.kill()
        if not args.keep:
            shutil.rmtree(rundir, ignore_errors=True)


# --------------------------------------------------------------------------
# Report


def median(xs):
    xs = [x for x in xs if x is not None and x == x]
    return statistics.median(xs) if xs else None


def fmt(x, spec, none="-"):
    return none if x is None else format(x, spec)


def report(results, workloads, daemons, rounds):
    """results: list of dicts with 'round'.  Prints one table per workload."""
    summary = []
    for wname in workloads:
        wl = WORKLOADS[wname]
        rows = [r for r in results if r["workload"] == wname]
        if not rows:
            continue
        latency = bool(wl[6])
        log("")
        log(f"== {wname}: {wl[7]}" + (f"  [fsync {wl[5]}]" if wl[5] else ""))
        by = {(r["daemon"], r["round"]): r for r in rows}

        def per_round_ratio(a, bfun):
            out = []
            for rd in range(rounds):
                ra = by.get((a, rd))
                b = bfun(rd)
                if ra and b and ra.get("msgs_per_s") and b > 0:
                    out.append(ra["msgs_per_s"] / b)
            return median(out)

        def floor_of(rd):
            r = by.get(("floor", rd))
            return r.get("msgs_per_s") if r else None

        def best_peer(rd):
            v = [by[(p, rd)]["msgs_per_s"] for p in PEERS if (p, rd) in by
                 and by[(p, rd)].get("msgs_per_s")]
            return max(v) if v else None

        if latency:
            head = f"{'daemon':<10} {'p50 µs':>9} {'p99 µs':>9} {'p99.9 µs':>9} {'max µs':>9} " \
                   f"{'CPU µs/msg':>10} {'RSS MiB':>8} {'loss':>6} {'runs':>4}"
        else:
            head = f"{'daemon':<10} {'msgs/s':>10} {'(min-max)':>17} {'x floor':>8} {'CPU µs/msg':>10} " \
                   f"{'RSS MiB':>8} {'loss':>6} {'runs':>4}  {'vs best peer':>12}"
        log(head)
        for name in daemons:
            rs = [r for r in rows if r["daemon"] == name and "msgs_per_s" in r]
            failed = [r for r in rows if r["daemon"] == name and "error" in r]
            if not rs:
                if failed:
                    log(f"{name:<10} failed: {failed[0]['error'].splitlines()[0][:90]}")
                continue
            rate = median([r["msgs_per_s"] for r in rs])
            lo = min(r["msgs_per_s"] for r in rs)
            hi = max(r["msgs_per_s"] for r in rs)
            cpu = median([r["cpu_us_per_msg"] for r in rs])
            rss = max(r["peak_rss_kib"] for r in rs) / 1024
            loss = sum(r["loss"] for r in rs) + sum(1 for r in rs if not r["complete"] and not r["loss"])
            xfloor = per_round_ratio(name, floor_of) if name != "floor" else 1.0
            vs = per_round_ratio("lograild", best_peer) if name == "lograild" else None
            s = dict(workload=wname, daemon=name, runs=len(rs), msgs_per_s=rate, x_floor=xfloor,
                     cpu_us_per_msg=cpu, peak_rss_mib=rss, loss=loss, vs_best_peer=vs)
            if latency:
                for k in ("p50_us", "p99_us", "p999_us", "max_us"):
                    s[k] = median([r.get(k) for r in rs])
                log(f"{name:<10} {fmt(s['p50_us'], '9.0f')} {fmt(s['p99_us'], '9.0f')} "
                    f"{fmt(s['p999_us'], '9.0f')} {fmt(s['max_us'], '9.0f')} {cpu:10.2f} {rss:8.1f} "
                    f"{loss:6d} {len(rs):4d}")
            else:
                log(f"{name:<10} {rate:10,.0f} {f'({lo / 1e3:,.0f}k-{hi / 1e3:,.0f}k)':>17} {fmt(xfloor, '8.2f')} "
                    f"{cpu:10.2f} {rss:8.1f} {loss:6d} {len(rs):4d}  {fmt(vs, '12.2f', '')}")
            if failed:
                log(f"{'':<10} ({len(failed)} failed run(s): {failed[0]['error'].splitlines()[0][:80]})")
            summary.append(s)
        if wl[0] == "udp":
            kd = []
            for name in daemons:
                v = [r["kernel_drops"] for r in rows if r["daemon"] == name and "kernel_drops" in r]
                if v:
                    kd.append(f"{name} {'/'.join(str(x) for x in v)}")
                    for s in summary:
                        if s["workload"] == wname and s["daemon"] == name:
                            s["kernel_drops"] = median(v)
            if kd:
                log("  kernel drops (/proc/net/udp, per round): " + ", ".join(kd))
            # What the senders reached: loadgen paces to the asked rate but
            # cannot pass what its 4 threads manage beside the daemon.
            sent = []
            for name in daemons:
                v = [r["messages"] / r["send_s"] for r in rows
                     if r["daemon"] == name and r.get("send_s")]
                if v:
                    sent.append(f"{name} {'/'.join(f'{x / 1000:.0f}k' for x in v)}")
            if sent:
                log(f"  offered msg/s reached (asked {wl[6] / 1000:.0f}k; per round): " + ", ".join(sent))
        lg = sorted((r for r in rows if r["daemon"] == "lograild" and r.get("cpu_threads")),
                    key=lambda r: r["msgs_per_s"])
        if lg:
            mid = lg[len(lg) // 2]
            log(f"  lograild CPU µs/msg by thread (tid order; its median run): {mid['cpu_threads']}")
    return summary


TARGETS = {  # workload: (min x floor, min x best peer)
    "W1": (0.85, None), "W1b": (0.50, 4.0), "W3": (0.80, 2.5), "W4": (0.80, 2.0),
}


def report_targets(summary):
    """The issue's targets for lograild, as met or not in this run."""
    s = {(r["workload"], r["daemon"]): r for r in summary}
    lines = []

    def check(label, value, ok):
        if value is not None:
            lines.append(f"  {'ok  ' if ok else 'MISS'} {label}: {value}")

    for w, (xf, xp) in TARGETS.items():
        r = s.get((w, "lograild"))
        if not r:
            continue
        if xf is not None and r["x_floor"] is not None:
            check(f"{w} >= {xf:.2f} x floor", f"{r['x_floor']:.2f}", r["x_floor"] >= xf)
        if xp is not None and r["vs_best_peer"] is not None:
            check(f"{w} >= {xp:.1f} x best peer", f"{r['vs_best_peer']:.2f}", r["vs_best_peer"] >= xp)
    r = s.get(("W1", "lograild"))
    if r:
        check("W1 CPU <= 1.0 µs/msg", f"{r['cpu_us_per_msg']:.2f}", r["cpu_us_per_msg"] <= 1.0)
    rss = [r["peak_rss_mib"] for (w, d), r in s.items() if d == "lograild" and w != "W1s"]
    if rss:
        check("peak RSS <= 24 MiB (all workloads)", f"{max(rss):.1f} MiB", max(rss) <= 24)
    loss = [r["loss"] for (w, d), r in s.items() if d == "lograild"]
    if loss:
        check("no loss", str(sum(loss)), sum(loss) == 0)
    r = s.get(("L", "lograild"))
    if r and r.get("p99_us") is not None:
        check("L p99 < 2 ms", f"{r['p99_us']:.0f} µs", r["p99_us"] < 2000)
    if lines:
        log("")
        log("== lograild against the targets of issue 6 (ratios within this run)")
        for line in lines:
            log(line)


CSV_FIELDS = ("kind", "started", "nproc", "dgram_qlen", "load1", "lograild_sha256", "round", "workload", "daemon", "messages", "elapsed_s", "msgs_per_s",
              "x_floor", "vs_best_peer", "cpu_us_per_msg", "peak_rss_kib", "peak_rss_mib", "loss",
              "missing", "dup", "complete", "other_lines", "archives", "exit_code", "send_s",
              "loadgen_cpu_us_per_msg", "cpu_threads", "kernel_drops", "p50_us", "p99_us", "p999_us", "max_us", "runs", "error")


def write_csv(path, results, summary, common):
    """One row per run (kind=run), one per workload and daemon (kind=median);
    common: columns every row has (start time, nproc, lograild's hash)."""
    import csv
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        w.writeheader()
        for r in results:
            row = dict(r, kind="run", **common)
            if "error" in row:
                row["error"] = row["error"].splitlines()[0][:200]
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        for s in summary:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v)
                        for k, v in dict(s, kind="median", **common).items()})


# --------------------------------------------------------------------------


def machine_line():
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"machine: nproc {os.cpu_count()}, load average {load}, {model}, kernel {os.uname().release}"


def main():
    ap = argparse.ArgumentParser(description="lograild against rsyslog, syslog-ng and a floor")
    ap.add_argument("--lograild", default=os.path.join(REPO, "build", "lograild"))
    ap.add_argument("--build", default=os.path.join(REPO, "build", "e2e"),
                    help="where the C helpers are built and the peers unpacked")
    ap.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                    help=f"comma list of {', '.join(WORKLOADS)} (default: %(default)s)")
    ap.add_argument("--daemons", default=",".join(DAEMONS),
                    help="comma list (default: %(default)s; floor-2t may be added)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 5; --quick: 1)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 1 round, a tenth of the messages")
    ap.add_argument("--scale", type=float, default=None,
                    help="multiply message counts by this (default 1; --quick: 0.1)")
    ap.add_argument("--no-install", action="store_true",
                    help="never install rsyslog or syslog-ng; run without what is missing")
    ap.add_argument("--csv", default=None,
                    help="CSV file (default bench/results/e2e-TIMESTAMP.csv)")
    ap.add_argument("--timeout", type=float, default=180, help="seconds one run may take")
    ap.add_argument("--idle", type=float, default=5,
                    help="seconds without a new message, once all are sent, before a run "
                         "is declared incomplete")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    ap.add_argument("--tmpdir", default=None, help="where the temporary directory goes")
    ap.add_argument("--dgram-qlen", type=int, default=None, metavar="N",
                    help="run every daemon in a private network namespace with "
                         "net.unix.max_dgram_qlen = N (needs root; default: the machine's)")
    args = ap.parse_args()

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    daemons = [d.strip() for d in args.daemons.split(",") if d.strip()]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    for d in daemons:
        if d not in DAEMONS + EXTRA_DAEMONS:
            ap.error(f"unknown daemon {d!r} (known: {', '.join(DAEMONS + EXTRA_DAEMONS)})")
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    scale = args.scale if args.scale is not None else (0.1 if args.quick else 1.0)
    args.lograild = os.path.abspath(args.lograild)
    args.build = os.path.abspath(args.build)
    if args.dgram_qlen is not None:
        if args.dgram_qlen < 1:
            ap.error("--dgram-qlen must be at least 1")
        probe = subprocess.run(in_qlen_netns(["cat", "/proc/sys/net/unix/max_dgram_qlen"],
                                             args.dgram_qlen),
                               capture_output=True, text=True, timeout=30)
        if probe.returncode != 0 or probe.stdout.strip() != str(args.dgram_qlen):
            ap.error(f"--dgram-qlen: cannot set it in a new network namespace "
                     f"(unshare -n needs root): {(probe.stderr or probe.stdout).strip()}")
        global DGRAM_QLEN
        DGRAM_QLEN = args.dgram_qlen

    def on_term(sig, frame):
        raise Interrupted()

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    machine = machine_line()
    log(machine)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    qlen = DGRAM_QLEN if DGRAM_QLEN is not None else machine_qlen()
    common = {"started": stamp, "nproc": os.cpu_count(), "dgram_qlen": qlen, "lograild_sha256": ""}
    csv_path = args.csv or os.path.join(REPO, "bench", "results", f"e2e-{stamp}.csv")

    try:
        helpers = build_helpers(args.build)
    except (BenchError, subprocess.TimeoutExpired) as e:
        log(f"error: {e}")
        return 1
    if "lograild" in daemons and not os.access(args.lograild, os.X_OK):
        log(f"error: {args.lograild} is not executable (run make)")
        return 1
    peers = find_peers(args.build, [d for d in daemons if d in PEERS], not args.no_install)
    if "lograild" in daemons:
        v = subprocess.run([args.lograild, "--version"], capture_output=True, text=True, timeout=10)
        with open(args.lograild, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.path.getmtime(args.lograild)))
        log(f"lograild: {args.lograild} ({(v.stdout or v.stderr).strip().splitlines()[0]}, "
            f"built {built}, sha256 {digest})")
        common["lograild_sha256"] = digest
    for p in PEERS:
        if p in peers:
            log(f"{p}: {peers[p][0][0]} ({peers[p][2]})")
    daemons = [d for d in daemons if d not in PEERS or d in peers]

    wls = {}
    for w in workloads:
        t = list(WORKLOADS[w])
        t[2] = max(1, int(t[2] * scale))
        wls[w] = tuple(t)
    log(f"workloads: {', '.join(workloads)}; daemons: {', '.join(daemons)}; rounds: {rounds}"
        + (f"; message counts x {scale:g}" if scale != 1 else "")
        + f"; net.unix.max_dgram_qlen {qlen}"
        + (" (each daemon in its own network namespace)" if DGRAM_QLEN is not None else ""))

    results = []
    tmp = tempfile.mkdtemp(prefix="lograil-e2e-", dir=args.tmpdir)
    if "lograild" in daemons:
        # One binary for the whole run, even if the build is redone meanwhile.
        snap = os.path.join(tmp, "lograild")
        shutil.copy2(args.lograild, snap)
        args.lograild = snap
    seq = 0
    t_start = time.monotonic()
    try:
        for rd in range(rounds):
            log(f"-- round {rd + 1}/{rounds} ({machine_line().split(', ')[1]})")
            for w in workloads:
                line = []
                for name in daemons:
                    seq += 1
                    try:
                        r = one_run(name, w, wls[w], args, helpers, peers, tmp, seq)
                        if WORKLOADS[w][6]:
                            line.append(f"{name} p99 {r['p99_us']:.0f} µs")
                        else:
                            line.append(f"{name} {r['msgs_per_s'] / 1e3:,.0f}k")
                    except Exception as e:  # noqa: BLE001 -- one failed run must not end the rest
                        if not isinstance(e, (BenchError, subprocess.TimeoutExpired, OSError)):
                            e = f"{type(e).__name__}: {e}"
                        r = {"workload": w, "daemon": name, "error": str(e)}
                        line.append(f"{name} FAILED")
                        note(f"{w} {name} failed: {e}")
                    r["round"] = rd
                    results.append(r)
                log(f"   {w:<4} " + ", ".join(line))
    except (KeyboardInterrupt, Interrupted):
        log("interrupted: reporting what was measured")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"(kept {tmp})")
    log(f"({time.monotonic() - t_start:.0f} s)")

    summary = report(results, workloads, daemons, rounds)
    report_targets(summary)
    write_csv(csv_path, results, summary, common)
    log("")
    log(f"CSV: {os.path.relpath(csv_path, os.getcwd()) if csv_path.startswith(os.getcwd()) else csv_path}")
    failed = [r for r in results if "error" in r]
    return 1 if failed and len(failed) == len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
