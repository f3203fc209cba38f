#!/bin/sh
# Runs INSIDE a swarm-lab node's fresh namespaces (test/support/swarm.ts starts it as
#   nsenter --net=/run/netns/NS -- unshare --mount --uts --propagation slave -- THIS HOSTNAME DIR dockerd ARGS...)
# and gives the node its private view of the paths dockerd 20.10 / containerd 1.6 hard-code, then
# becomes dockerd (exec: the pid the harness started is dockerd's).
set -eu
name=$1; dir=$2; shift 2
hostname "$name"
# /sys: a sysfs for THIS netns, with the host's cgroup mounts carried over onto it. (`ip netns exec`
# would remount /sys and drop /sys/fs/cgroup/*: dockerd could not run containers.)
mkdir -p "$dir/.cgroup"
mount --rbind /sys/fs/cgroup "$dir/.cgroup"
mount -t sysfs "sysfs-$name" /sys
mount --move "$dir/.cgroup" /sys/fs/cgroup
rmdir "$dir/.cgroup"
# /run/docker/plugins: legacy plugin sockets and managed plugins' exec root, whatever --exec-root says.
# /run/containerd: dockerd would use a foreign containerd.sock found there; shims keep sockets in it.
# /etc/docker: key.json (the engine ID swarm uses), plugin .spec/.json files.
for pair in run-docker:/run/docker run-containerd:/run/containerd etc-docker:/etc/docker; do
  src=$dir/${pair%%:*}; dst=${pair#*:}
  mkdir -p "$src" "$dst"
  mount --bind "$src" "$dst"
done
mkdir -p /run/docker/plugins /etc/docker/plugins
# dockerd's own lookups (registry names) fail at once on the node's loopback, never leave the lab.
echo "nameserver 127.0.0.1" > "$dir/resolv.conf"
mount --bind "$dir/resolv.conf" /etc/resolv.conf
exec "$@"
