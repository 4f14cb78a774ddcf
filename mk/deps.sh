#!/bin/sh
# Make sure the build and test dependencies are present.  On Debian (and
# derivatives) missing packages are installed with apt-get, through sudo
# when not root; elsewhere we stop and say what to install.
set -eu

# pkg-config module -> Debian package
PC_MODULES="libuv:libuv1-dev libconfig:libconfig-dev check:check zlib:zlib1g-dev libzstd:libzstd-dev"
# command -> Debian package
COMMANDS="cc:gcc pkg-config:pkg-config logger:bsdutils python3:python3 setarch:util-linux jq:jq zstd:zstd"

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
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >&2
