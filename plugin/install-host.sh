#!/usr/bin/env bash
# Installs volgate as a host daemon on Debian/Ubuntu and starts it on the default
# socket /run/docker/plugins/volgate.sock (legacy plugin discovery). Run as root
# from a checkout: sudo bash plugin/install-host.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "install-host.sh: run as root (sudo bash plugin/install-host.sh)" >&2; exit 1; }
command -v node >/dev/null || { echo "install-host.sh: Node.js 20 or newer is needed (node not found)" >&2; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' ||
  { echo "install-host.sh: Node.js 20 or newer is needed (found $(node --version))" >&2; exit 1; }

echo "==> installing mount helpers (sshfs, s3fs, nfs-common, fuse3)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends sshfs s3fs nfs-common fuse3 ca-certificates >/dev/null

echo "==> building volgate into /opt/volgate"
npm ci --no-audit --no-fund
npm run build
install -d -m 0755 /opt/volgate
rm -rf /opt/volgate/dist
cp -r dist package.json package-lock.json README.md /opt/volgate/
(cd /opt/volgate && npm ci --omit=dev --no-audit --no-fund --ignore-scripts >/dev/null)
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
  exec node --max-semi-space-size=1 --optimize-for-size /opt/volgate/dist/main.js
fi
