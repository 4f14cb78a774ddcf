#!/bin/sh
# PID 1 of fresh pid/mount/uts/ipc/net/cgroup namespaces (started by sdbox.sh).
# Builds a throw-away overlay of the host's / (all writes go to a tmpfs that vanishes
# with this mount namespace), mounts the API file systems as systemd-nspawn would,
# copies the test payload in, pivot_roots into it and execs the host's systemd.
set -eu
W=${SDBOX_WORK:?}
HERE=${SDBOX_HERE:?}
mount -t tmpfs -o mode=755 sdbox-ovl "$W/ovl"
mkdir -p "$W/ovl/upper" "$W/ovl/work" "$W/ovl/merged"
mount -t overlay overlay -o "lowerdir=/,upperdir=$W/ovl/upper,workdir=$W/ovl/work" "$W/ovl/merged"
M=$W/ovl/merged
# API file systems.  /proc/sys and /sys read-only: no host sysctl changes, no udevd.
mount -t proc -o nosuid,nodev,noexec proc "$M/proc"
mount --bind "$M/proc/sys" "$M/proc/sys"; mount -o remount,bind,ro "$M/proc/sys"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$M/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$M/sys/fs/cgroup"   # our cgroup ns root
mount -t tmpfs -o mode=755,nosuid sdbox-dev "$M/dev"
for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
  IFS=: read name ma mi <<E
$n
E
  mknod -m 666 "$M/dev/$name" c "$ma" "$mi"
done
# The host kernel's log, for kmsg readers inside (sdbox.sh keeps CAP_SYSLOG then).
if [ "${SDBOX_KMSG:-}" = 1 ]; then mknod -m 644 "$M/dev/kmsg" c 1 11; fi
mkdir -p "$M/dev/pts" "$M/dev/shm" "$M/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts "$M/dev/pts"
ln -s pts/ptmx "$M/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/dev/shm"
mount -t mqueue mqueue "$M/dev/mqueue" || true
mount -t tmpfs -o mode=755,nosuid,nodev tmpfs "$M/run"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/tmp"
# The payload (an installed tree) lands in the overlay, never on the host's disk.
# --no-overwrite-dir: /usr, /etc, ... keep their owner and mode.
if [ -n "${SDBOX_STAGE:-}" ]; then (cd "$SDBOX_STAGE" && tar -cf - .) | tar -xf - -C "$M" --no-overwrite-dir; fi
cp "$HERE/sdbox.target" "$M/etc/systemd/system/"
mkdir -p "$M/etc/systemd/system.conf.d"
# Without CAP_SYS_RESOURCE, systemd's default hard RLIMIT_NOFILE (524288) above our
# own hard limit makes every service fail at step LIMITS: stay under ours.
printf '[Manager]\nDefaultLimitNOFILE=1024:%s\n' "$(ulimit -Hn)" > "$M/etc/systemd/system.conf.d/50-sdbox.conf"
echo sdbox > "$M/etc/hostname"
cd "$M"; mkdir -p .oldroot; pivot_root . .oldroot; cd /
umount -l /.oldroot; rmdir /.oldroot
exec /lib/systemd/systemd --unit=sdbox.target --show-status=no
