#!/bin/sh
# RELP input: lograild's relp listener against rsyslog's imrelp
# (bench/relp_vs_imrelp.py; needs rsyslog and rsyslog-relp, mk/deps.sh).
# $1 is the build directory.  RELP_BENCH_ARGS adds options (--n, --window).
set -eu
B=${1:-build}
if [ ! -x /usr/sbin/rsyslogd ]; then
    echo "relp: /usr/sbin/rsyslogd missing (mk/deps.sh installs it); skipped"
    exit 0
fi
# shellcheck disable=SC2086
/usr/bin/python3 "$(dirname "$0")/relp_vs_imrelp.py" "$B" ${RELP_BENCH_ARGS:-}
