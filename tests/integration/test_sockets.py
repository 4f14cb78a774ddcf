"""Issue "ingest": what the daemon does with the socket paths it is given."""

import array
import os
import socket
import stat

import pytest

from conftest import dgram_send, stream_send

HDR = b"<13>Nov 26 11:03:56 "


def leave_stale(path, kind):
    """A socket file nobody listens on, as a crash leaves it."""
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(path)
    if kind == socket.SOCK_STREAM:
        s.listen()
    s.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_stale_socket_files_are_replaced(daemon):
    leave_stale(os.path.join(daemon.dir, "s.sock"), socket.SOCK_STREAM)
    leave_stale(os.path.join(daemon.dir, "d.sock"), socket.SOCK_DGRAM)
    d = daemon()
    stream_send(d.stream, HDR + b"st: over a replaced stream socket\n")
    dgram_send(d.dgram, HDR + b"dg: over a replaced datagram socket")
    d.wait_records(2)
    d.stop()
    assert sorted(r["msg"] for r in d.records()) == ["over a replaced datagram socket",
                                                     "over a replaced stream socket"]
    # Ours, so removed at the end.
    assert not os.path.exists(d.stream) and not os.path.exists(d.dgram)


@pytest.mark.parametrize("which", [0, 1], ids=["stream", "dgram"])
def test_regular_file_is_refused(daemon, which):
    d = daemon.new()
    victim = d.listen[which]["path"]
    other = d.listen[1 - which]["path"]
    with open(victim, "w") as f:
        f.write("precious data\n")
    rc = d.start_failing()
    err = d.stderr()
    assert rc != 0, err
    assert victim in err and "not a socket" in err, err
    with open(victim) as f:
        assert f.read() == "precious data\n"
    assert stat.S_ISREG(os.lstat(victim).st_mode)
    # A socket it did bind before giving up is removed again.
    assert not os.path.exists(other), "%s was left behind" % other


@pytest.mark.parametrize("which", [0, 1], ids=["stream", "dgram"])
def test_live_socket_is_refused(daemon, which):
    first = daemon()
    second = daemon.new(listen=[
        {"path": first.listen[0]["path"] if which == 0 else "s2.sock", "type": "stream"},
        {"path": first.listen[1]["path"] if which == 1 else "d2.sock", "type": "dgram"},
    ])
    taken = first.listen[which]["path"]
    rc = second.start_failing()
    err = second.stderr()
    assert rc != 0, err
    assert taken in err and "another process is listening" in err, err
    # The first daemon keeps its sockets and serves them.
    assert stat.S_ISSOCK(os.lstat(first.stream).st_mode)
    assert stat.S_ISSOCK(os.lstat(first.dgram).st_mode)
    stream_send(first.stream, HDR + b"a: still the first daemon's\n")
    dgram_send(first.dgram, HDR + b"b: still the first daemon's")
    first.wait_records(2)
    first.stop()
    assert [r["msg"] for r in first.records()] == ["still the first daemon's"] * 2
    assert second.records() == []


def test_socket_directory_is_created_and_mode_set(daemon):
    d = daemon(listen=[{"path": "sub/dir/s.sock", "type": "stream", "mode": "0600"},
                       {"path": "sub/d.sock", "type": "dgram", "mode": "0620"}])
    assert stat.S_IMODE(os.lstat(d.stream).st_mode) == 0o600
    assert stat.S_IMODE(os.lstat(d.dgram).st_mode) == 0o620
    stream_send(d.stream, HDR + b"m: hi\n")
    d.wait_records(1)
    d.stop()


def test_hung_listener_is_refused_without_waiting(daemon):
    """Another process listens but no longer accepts (its backlog is full,
    as with a hung daemon): refused at once, not a start that never ends."""
    path = os.path.join(daemon.dir, "s.sock")
    hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    hung.bind(path)
    hung.listen(0)
    fillers = []
    try:
        while True:
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.setblocking(False)
            fillers.append(c)
            try:
                c.connect(path)
            except BlockingIOError:
                break
            assert len(fillers) < 100, "the backlog never filled"
        d = daemon.new()
        rc = d.start_failing(timeout=30)
        err = d.stderr()
        assert rc != 0 and path in err and "another process is listening" in err, err
    finally:
        for c in fillers:
            c.close()
        hung.close()


def test_path_too_long_is_refused(daemon):
    long_dir = os.path.join(daemon.dir, "x" * 60, "y" * 60)
    d = daemon.new(listen=[{"path": os.path.join(long_dir, "s.sock"), "type": "stream"},
                           {"path": "d.sock", "type": "dgram"}])
    rc = d.start_failing()
    err = d.stderr()
    assert rc != 0 and "path longer than 107 bytes" in err and long_dir in err, err
    assert not os.path.exists(d.dgram)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give sockets away")
def test_owner_group_and_mode(daemon):
    import grp
    import pwd
    user = pwd.getpwuid(65534).pw_name
    group = grp.getgrgid(65534).gr_name
    d = daemon(listen=[{"path": "s.sock", "type": "stream", "mode": "0600", "owner": user,
                        "group": group},
                       {"path": "d.sock", "type": "dgram", "mode": "0660", "group": group}])
    st = os.lstat(d.stream)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o600)
    st = os.lstat(d.dgram)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 65534, 0o660)
    bad = daemon.new(listen=[{"path": "s.sock", "type": "stream", "owner": "no-such-user-lr"}])
    rc = bad.start_failing()
    assert rc != 0 and 'no user "no-such-user-lr"' in bad.stderr(), bad.stderr()
    d.stop()


# Which outputs make a datagram socket ask the kernel for each sender's pid,
# uid and gid (SO_PASSCRED): those that show them.
CRED_CASES = [
    ("json", [{"path": "out.json", "format": "json"}, {"path": "out.raw", "format": "raw"}]),
    ("uid-template", [{"path": "u%{uid}.log", "format": "raw"}, {"path": "out.raw", "format": "raw"}]),
    ("none", [{"path": "out.txt", "format": "traditional"}, {"path": "out.raw", "format": "raw"}]),
]


@pytest.mark.parametrize("case,outputs", CRED_CASES, ids=[c[0] for c in CRED_CASES])
def test_dgram_credentials_and_passed_descriptors(daemon, case, outputs):
    """Outputs that show a sender's credentials get them for datagrams too;
    descriptors a client passes along (SCM_RIGHTS) never stay open in the
    daemon, whether or not it asks for credentials."""
    d = daemon(outputs=outputs)
    dgram_send(d.dgram, HDR + b"first")
    d.wait_lines(1)  # templated files are open now
    before = d.nfds()
    n = 50
    fd = os.open("/dev/null", os.O_RDONLY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(d.dgram)
            for i in range(n):
                s.sendmsg([HDR + b"fdtest: passing %d" % i],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd, fd]))])
    finally:
        os.close(fd)
    d.wait_lines(n + 1)
    assert d.nfds() == before, "the daemon kept passed descriptors: %s" % os.listdir(
        "/proc/%d/fd" % d.pid)
    d.stop()
    want = [b"passing %d" % i for i in range(n)]
    if case == "json":
        recs = d.records()[1:]
        assert [r["msg"].encode() for r in recs] == want
        for r in recs:
            assert (r["pid"], r["uid"], r["gid"]) == (os.getpid(), os.getuid(), os.getgid()), r
    elif case == "uid-template":
        lines = d.lines("u%d.log" % os.getuid())[1:]
        assert [l.split(b": ", 1)[1] for l in lines] == want
    else:
        lines = d.lines("out.txt")[1:]
        assert [l.split(b"fdtest: ", 1)[1] for l in lines] == want
