#!/bin/sh
# Docker mounts /sys and the cgroup hierarchies read-only, even with every
# capability: podman needs them writable to make its containers' cgroups.
set -eu
mount -o remount,rw /sys
mount -o remount,rw /sys/fs/cgroup 2>/dev/null || true
awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | while read -r m; do
  mount -o remount,bind,rw "$m"
done
exec "$@"
