#!/bin/bash
# Boot the host's own systemd as PID 1 of a throw-away container (unshare + an
# overlay of / whose writes go to a tmpfs): no image, nothing written to the host.
#   sdbox.sh start         boot; wait until systemd answers (prints the host pid of PID 1)
#   sdbox.sh exec CMD...   run CMD inside (all namespaces, root and cwd of PID 1)
#   sdbox.sh pid           host pid of the container's PID 1 (its files: /proc/PID/root/)
#   sdbox.sh stop          poweroff, wait (kill -9 after 10 s), remove the cgroup
#   sdbox.sh kill          kill -9 PID 1 at once (a throw-away box needs no shutdown), remove the cgroup
# Environment:
#   SDBOX_WORK   work directory (default /tmp/lograil-sdbox); one container per directory
#   SDBOX_NAME   name of its cgroup (default: sdbox-<basename of SDBOX_WORK>)
#   SDBOX_STAGE  a directory tree copied over the container's / before it boots
#                (e.g. a `make install DESTDIR=...` tree); existing directories keep
#                their owner and mode
#   SDBOX_KMSG   1: the container gets /dev/kmsg (the host kernel's log) and keeps
#                CAP_SYSLOG in its bounding set, so that a service inside can read it
# Needs root with CAP_SYS_ADMIN.  Adapted from the shared systemd-sandbox recipe.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${SDBOX_WORK:-/tmp/lograil-sdbox}
NAME=${SDBOX_NAME:-sdbox-$(basename "$W")}
# Hybrid cgroups keep the writable cgroup2 at /sys/fs/cgroup/unified.
if [ -d /sys/fs/cgroup/unified ]; then CG=/sys/fs/cgroup/unified/$NAME; else CG=/sys/fs/cgroup/$NAME; fi
# Capabilities the container never needs: it must not change the host's clock, modules, ...
DROP=-sys_module,-sys_rawio,-sys_time,-syslog,-mac_admin,-mac_override,-sys_pacct,-wake_alarm,-block_suspend,-audit_control,-audit_read
[ "${SDBOX_KMSG:-}" = 1 ] && DROP=$(echo "$DROP" | sed 's/-syslog,//')
upid() { cat "$W/unshare.pid" 2>/dev/null; }
# A zombie (unshare exited, not yet reaped by whoever adopted it) counts as gone.
alive() { [ -n "$1" ] && ps -o stat= -p "$1" 2>/dev/null | grep -qv Z; }
# PID 1 of the container is the one child of `unshare --fork`.
cpid() { local u; u=$(upid) && [ -n "$u" ] && ps -o pid= --ppid "$u" | tr -d ' '; }
ns() {
  local p; p=$(cpid) || { echo "sdbox: no container in $W" >&2; return 125; }
  nsenter -t "$p" -m -u -i -n -p -C -r -w -- env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 LANG=C.UTF-8 "$@"
}
case "${1:-}" in
start)
  mkdir -p "$W/ovl" "$CG"
  # setsid: the container must not share our session (a ^C in a terminal stays ours).
  # The shell moves itself into the cgroup, then becomes unshare: PID 1's cgroup
  # namespace root is that cgroup, so everything systemd creates lands below it.
  SDBOX_WORK=$W SDBOX_HERE=$HERE SDBOX_STAGE=${SDBOX_STAGE:-} SDBOX_KMSG=${SDBOX_KMSG:-} CG=$CG DROP=$DROP setsid sh -c '
    echo $$ > "$CG/cgroup.procs" &&
    exec unshare --pid --fork --mount --uts --ipc --net --cgroup --propagation private \
      setpriv --bounding-set "$DROP" -- \
      env -i container=sdbox SDBOX_WORK="$SDBOX_WORK" SDBOX_HERE="$SDBOX_HERE" \
             SDBOX_STAGE="$SDBOX_STAGE" SDBOX_KMSG="$SDBOX_KMSG" PATH=/usr/sbin:/usr/bin:/sbin:/bin \
      /bin/sh "$SDBOX_HERE/inner-init.sh"' </dev/null >"$W/console.log" 2>&1 &
  echo $! > "$W/unshare.pid"
  for _ in $(seq 150); do          # up to 30 s; a boot takes well under 1 s
    sleep 0.2
    alive "$(upid)" || { echo "sdbox: container died:" >&2; cat "$W/console.log" >&2; exit 1; }
    [ -n "$(cpid || true)" ] && ns systemctl is-system-running --wait >/dev/null 2>&1 && {
      echo "container PID 1 = host pid $(cpid)"; exit 0; }
  done
  echo "sdbox: systemd did not come up: $(ns systemctl is-system-running 2>&1 || true)" >&2
  cat "$W/console.log" >&2; exit 1
  ;;
exec) shift; ns "$@" ;;
pid) cpid ;;
stop|kill)
  U=$(upid || true); p=$(cpid || true)
  if [ "$1" = stop ] && [ -n "$p" ]; then
    kill -s SIGRTMIN+4 "$p" 2>/dev/null || true                  # systemd: SIGRTMIN+4 = poweroff
    for _ in $(seq 100); do alive "$U" || break; sleep 0.1; done
  fi
  # Killing PID 1 of a pid namespace kills everything in it (nsenter'd commands too).
  if alive "$U"; then
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null
    for _ in $(seq 100); do alive "$U" || break; sleep 0.05; done
  fi
  for _ in $(seq 50); do           # the kernel frees a cgroup a moment after its last process
    find "$CG" -depth -type d -exec rmdir {} + 2>/dev/null || true
    [ -d "$CG" ] || break; sleep 0.1
  done
  rm -f "$W/unshare.pid"
  if [ -d "$CG" ]; then echo "sdbox: WARNING: $CG still present" >&2; exit 1; fi
  ;;
*) echo "usage: $0 start|exec CMD...|pid|stop|kill" >&2; exit 2 ;;
esac
