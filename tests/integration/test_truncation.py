"""Issue 14, point 4: a line longer than max_message is cut, and the cut is
marked in every format: json ("truncated":true), rfc5424 (truncated="1"
in lograil's SD element), traditional and raw (" [truncated]" at the end
of the line).  Real daemon, real clients: logger(1) over the stream and
the datagram socket, and a Python socket with octet counting."""

import json
import subprocess

from conftest import connect, deadline

MAX = 200
MARK = b" [truncated]"
OUTPUTS = [{"path": "out.json", "format": "json"},
           {"path": "out.5424", "format": "rfc5424"},
           {"path": "out.trad", "format": "traditional"},
           {"path": "out.raw", "format": "raw"}]


def logger(sock, *args):
    r = subprocess.run(["logger", "-u", sock, "--socket-errors=on", "--size", "100000"]
                       + list(args), capture_output=True, timeout=deadline(60))
    assert r.returncode == 0, r.stderr.decode()


def test_cut_line_marked_in_every_format(daemon):
    d = daemon(listen=[{"path": "s.sock", "type": "stream", "max_message": MAX},
                       {"path": "d.sock", "type": "dgram", "max_message": MAX}],
               outputs=OUTPUTS)
    long_text = "y" * 1000
    logger(d.stream, "-T", "-t", "cutstream", long_text)
    logger(d.dgram, "-d", "-t", "cutdgram", long_text)
    logger(d.stream, "-T", "-t", "whole", "short and whole")
    frame = b"<13>Nov 26 11:03:56 cutoctet: " + b"z" * 1000
    with connect(d.stream) as s:
        s.sendall(b"%d " % len(frame) + frame)
    d.wait_records(4)
    d.stop()

    cut_apps = {"cutstream", "cutdgram", "cutoctet"}
    recs = {r["app"]: r for r in d.records()}
    assert set(recs) == cut_apps | {"whole"}, recs
    for app in cut_apps:
        assert recs[app].get("truncated") is True, recs[app]
    assert "truncated" not in recs["whole"]

    def by_app(output, sep):
        out = {}
        for line in d.lines(output):
            for app in cut_apps | {"whole"}:
                if (app + sep).encode() in line:
                    out[app] = line
        assert set(out) == cut_apps | {"whole"}, (output, d.lines(output))
        return out

    # rfc5424: the flag in lograil's own SD element.
    for app, line in by_app("out.5424", " ").items():
        assert (b'truncated="1"' in line) == (app in cut_apps), line
        if app in cut_apps:
            assert not line.endswith(MARK), line  # the flag is in the SD, not the text
    # traditional: the mark after what is left of the message.
    for app, line in by_app("out.trad", ":").items():
        if app in cut_apps:
            assert line.endswith((b"y" if app != "cutoctet" else b"z") + MARK), line
        else:
            assert line.endswith(b": short and whole"), line
    # raw: max_message bytes as received, then the mark.
    raw = by_app("out.raw", "")
    for app in cut_apps:
        line = raw[app]
        assert line.endswith(MARK) and len(line) == MAX + len(MARK), (len(line), line)
    assert not raw["whole"].endswith(MARK) and raw["whole"].endswith(b"short and whole")
    # The text in each format is the same cut: json's msg is what traditional
    # shows before the mark.
    trad = by_app("out.trad", ":")
    for app in ("cutstream", "cutdgram"):
        msg = recs[app]["msg"].encode()
        assert trad[app].endswith(b": " + msg + MARK), (trad[app], msg)
