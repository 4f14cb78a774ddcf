#!/bin/sh
# Make sure the build and test dependencies are present.  On Debian (and
# derivatives) missing packages are installed with apt-get, through sudo
# when not root; elsewhere we stop and say what to install.
set -eu

# pkg-config module -> Debian package
PC_MODULES="libuv:libuv1-dev libconfig:libconfig-dev check:check zlib:zlib1g-dev libzstd:libzstd-dev"
# command -> Debian package
COMMANDS="cc:gcc pkg-config:pkg-config logger:bsdutils python3:python3 setarch:util-linux jq:jq zstd:zstd"
# TLS (lib/tls.c), and the openssl CLI that its tests make certificates with.
PC_MODULES="$PC_MODULES openssl:libssl-dev"
COMMANDS="$COMMANDS openssl:openssl"
# NATS JetStream output (daemon/nats_sender.c): nats.c to build, and
# nats-server for tests/integration/test_nats.py's three-node cluster.
PC_MODULES="$PC_MODULES libnats:libnats-dev"
# The network-input tests (tests/integration/test_netin.py): curl for the
# metrics endpoint, systemd-socket-activate for socket activation.
COMMANDS="$COMMANDS curl:curl systemd-socket-activate:systemd"

missing=""
for pair in $COMMANDS; do
    cmd=${pair%%:*} pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
if command -v pkg-config >/dev/null 2>&1; then
    for pair in $PC_MODULES; do
        mod=${pair%%:*} pkg=${pair#*:}
        pkg-config --exists "$mod" || missing="$missing $pkg"
    done
else
    for pair in $PC_MODULES; do missing="$missing ${pair#*:}"; done
fi
# The forwarding tests (tests/integration/test_forward.py) run a private
# rsyslogd as the collector: imtcp, imrelp (rsyslog-relp) and the ossl TLS
# driver (rsyslog-openssl).
[ -x /usr/sbin/rsyslogd ] || missing="$missing rsyslog"
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so ] || ls /usr/lib/*/rsyslog/imrelp.so >/dev/null 2>&1 ||
    missing="$missing rsyslog-relp"
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so ] || ls /usr/lib/*/rsyslog/lmnsd_ossl.so >/dev/null 2>&1 ||
    missing="$missing rsyslog-openssl"
# nats-server is in /usr/sbin, which a user's PATH may not have.
[ -x /usr/sbin/nats-server ] || missing="$missing nats-server"
# The integration tests run under Debian's python3 with its pytest.
/usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || missing="$missing python3-pytest"
# `mk/deps.sh fuzz`: clang and its libFuzzer runtime too.
if [ "${1:-}" = fuzz ]; then
    command -v clang >/dev/null 2>&1 || missing="$missing clang"
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 ||
        missing="$missing libclang-rt-dev"
fi
# `mk/deps.sh deb`: what `make deb` needs to build the Debian package.
if [ "${1:-}" = deb ]; then
    command -v dpkg-buildpackage >/dev/null 2>&1 || missing="$missing dpkg-dev"
    command -v dh >/dev/null 2>&1 || missing="$missing debhelper"
    command -v lintian >/dev/null 2>&1 || missing="$missing lintian"
    command -v git >/dev/null 2>&1 || missing="$missing git"
fi

# `mk/deps.sh bench`: systemd-journal-remote, to build the journal that
# bench/reader_bench.py times journalctl on.
if [ "${1:-}" = bench ]; then
    [ -x /lib/systemd/systemd-journal-remote ] || missing="$missing systemd-journal-remote"
fi

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "lograil: missing dependencies; please install (Debian names):$missing" >&2
    echo "lograil: needed: a C11 compiler, pkg-config, libuv, libconfig, Check, util-linux logger, python3 with pytest, jq, zstd" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "lograil: not root and no sudo; install:$missing" >&2; exit 1; }
    SUDO=sudo
fi
echo "lograil: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Installing rsyslog would start the system's instance: the tests only
# want the program.  A policy-rc.d that says "no" (exit 101) keeps it
# stopped, unless the machine already has one of its own.
norc=""
# nats-server's package would start a system server too (the tests run
# their own cluster on ports of their own).
case "$missing" in *rsyslog*|*nats-server*)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 0755 /usr/sbin/policy-rc.d
        norc=1
    fi;;
esac
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
[ -z "$norc" ] || $SUDO rm -f /usr/sbin/policy-rc.d
