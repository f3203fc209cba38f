#!/usr/bin/env bash
# Installs volgate as a host daemon on Debian/Ubuntu and starts it on the default
# socket /run/docker/plugins/volgate.sock (legacy plugin discovery). Run as root
# from a checkout: sudo bash plugin/install-host.sh
#
# It runs what the managed plugin runs: the pinned Node 24 (rootfs-build/node.sh, from the npm
# registry) as /opt/volgate/node/bin/node and the daemon bundle (no node_modules) in /opt/volgate.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install-host.sh: run as root (sudo bash plugin/install-host.sh)" >&2; exit 1; }
command -v npm >/dev/null ||
  { echo "install-host.sh: npm is needed to fetch volgate's Node runtime (apt-get install npm)" >&2; exit 1; }

echo "==> installing mount helpers (sshfs, s3fs, nfs-common, fuse3)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends sshfs s3fs nfs-common fuse3 ca-certificates >/dev/null

echo "==> fetching the pinned Node runtime and building volgate"
node_dir=$(bash rootfs-build/node.sh | tail -n 1)
PATH="$node_dir/bin:$PATH" # npm ci and the build run on it too
npm ci --no-audit --no-fund
npm run build

echo "==> installing into /opt/volgate"
install -d -m 0755 /opt/volgate
# What earlier versions installed (the tsc output and a node_modules tree) is not used any more.
rm -rf /opt/volgate/dist /opt/volgate/node_modules /opt/volgate/package.json /opt/volgate/package-lock.json \
  /opt/volgate/*.mjs /opt/volgate/*.LEGAL.txt
install -D -m 0755 "$node_dir/bin/node" /opt/volgate/node/bin/node
install -m 0644 "$node_dir/LICENSE" /opt/volgate/node/LICENSE
cp -r dist/bundle/. /opt/volgate/ && cp README.md /opt/volgate/
install -d -m 0700 /etc/volgate /etc/volgate/credentials /var/lib/volgate
install -d -m 0755 /run/docker/plugins

if [ -d /run/systemd/system ]; then
  echo "==> installing and starting volgate.socket and volgate.service"
  install -m 0644 plugin/volgate.socket plugin/volgate.service /etc/systemd/system/
  systemctl daemon-reload
  systemctl enable --now volgate.socket volgate.service
  systemctl --no-pager status volgate.service | head -5
  echo "volgate is running. Logs: journalctl -u volgate"
else
  echo "==> no systemd here: running volgate in the foreground (Ctrl-C stops it)"
  exec /opt/volgate/node/bin/node --max-semi-space-size=1 --optimize-for-size --no-maglev --no-sparkplug --single-threaded /opt/volgate/volgate.mjs
fi
