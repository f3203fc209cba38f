#!/usr/bin/env bash
# Builds a managed plugin directory (config.json + rootfs/) for one architecture from Debian
# packages and the npm registry only, pulling no container image:
#
#   npm run build && rootfs-build/build.sh [amd64|arm64]     # as root (chroot); npm run plugin:build
#   docker plugin create volgate:VERSION build/plugin-amd64      # or rootfs-build/push.sh REGISTRY
#
# Two layers:
#   base  fetch.sh downloads packages.txt with its dependency closure for the architecture;
#         assemble.sh unpacks it with the pinned Node 24 (node.sh; stripped) as /usr/bin/node and
#         keeps only what programs.txt runs (no apt, dpkg, perl or python). Cached in
#         .cache/rootfs/<arch>-<key>/rootfs, key = hash of the rootfs-build scripts and lists
#         (node.sh pins Node), suite and architecture. VOLGATE_ROOTFS_REFRESH=1 rebuilds it (do
#         so now and then: security updates).
#   app   the daemon bundle (dist/bundle/: volgate.mjs and its lazily loaded chunks, no
#         node_modules) -> /opt/volgate. Rebuilt every time (seconds).
# Then check.sh proves it inside the rootfs (chroot; qemu-user for arm64 on amd64): every ELF is
# for the architecture and resolves its libraries there, the programs, node and volgate run.
# The size of rootfs/ is reported (du -sm) and the build fails above VOLGATE_ROOTFS_MAX_MB.
#
# Settings (environment; fetch.sh reads the VOLGATE_DEBIAN_* ones):
#   VOLGATE_DEBIAN_MIRROR, VOLGATE_DEBIAN_SECURITY_MIRROR, VOLGATE_DEBIAN_SUITE (default bookworm)
#   VOLGATE_BUILD_DIR               where plugin-<arch>/ goes; default build/ (push.sh reads it there)
#   VOLGATE_PLUGIN_DIR              output directory; default $VOLGATE_BUILD_DIR/plugin-<arch>
#   VOLGATE_ROOTFS_CACHE            cache directory; default .cache/rootfs
#   VOLGATE_ROOTFS_MAX_MB           size limit of rootfs/ in MB; default 150
#   VOLGATE_ROOTFS_REFRESH=1        rebuild the base layer even when it is cached
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
say() { printf 'build.sh: %s\n' "$*"; }
die() {
  printf 'build.sh: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=lib.sh
source "$here/lib.sh"

[[ $(id -u) == 0 ]] || die "run as root: chroot needs it (sudo -E $0)"
for tool in apt-get dpkg-deb chroot sha256sum flock tar du readelf npm; do
  command -v "$tool" >/dev/null || die "$tool not found (bash .ci/setup installs what the build needs)"
done
arch=${1:-$(dpkg --print-architecture)}
arch_setup "$arch"
suite=${VOLGATE_DEBIAN_SUITE:-bookworm}
max_mb=${VOLGATE_ROOTFS_MAX_MB:-150}
cache_root=${VOLGATE_ROOTFS_CACHE:-$repo/.cache/rootfs}
out=${VOLGATE_PLUGIN_DIR:-${VOLGATE_BUILD_DIR:-$repo/build}/plugin-$arch}
out=${out%/}
bundle=$repo/dist/bundle
[[ -n $out && $out != / && $out != "$repo" ]] || die "VOLGATE_PLUGIN_DIR must name a directory of its own"
[[ -f $bundle/volgate.mjs ]] || die "$bundle/volgate.mjs not found: run npm run build first (npm run plugin:build does both)"

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9 # one build at a time per cache

key=$(
  {
    cat "$here"/{packages.txt,programs.txt,build.sh,fetch.sh,assemble.sh,icu-data.sh,lib.sh,node.sh}
    echo "$suite $arch"
  } | sha256sum | cut -c1-16
)
base=$cache_root/$arch-$key

# ---------------------------------------------------------------- base layer (cached)
build_base() {
  local tmp=$cache_root/tmp.$arch.$$ stale old
  for stale in "$cache_root"/tmp.*; do remove_tree "$stale"; done # failed builds (we hold the lock)
  mkdir -p "$tmp/debs"
  trap 'remove_tree "'"$tmp"'"' EXIT
  say "base layer $arch-$key: Debian $suite packages"
  bash "$here/fetch.sh" "$arch" "$tmp/debs"
  bash "$here/assemble.sh" "$arch" "$tmp/debs" "$(bash "$here/node.sh" "$arch" | tail -n 1)" "$tmp/rootfs"
  rm -rf "$tmp/debs"
  trap - EXIT
  remove_tree "$base"
  mv "$tmp" "$base"
  touch "$base/complete"
  # Older keys of this architecture are dead weight.
  for old in "$cache_root/$arch"-*; do
    [[ -d $old && $old != "$base" && $(basename "$old") =~ ^$arch-[0-9a-f]{16}$ ]] && remove_tree "$old"
  done
  return 0
}

started=$SECONDS
if [[ ${VOLGATE_ROOTFS_REFRESH:-0} == 1 || ! -f $base/complete ]]; then
  build_base
  say "base layer built in $((SECONDS - started)) s"
else
  say "base layer $arch-$key: cached ($base)"
fi
base_s=$((SECONDS - started))

# ---------------------------------------------------------------- app layer (every build)
app_started=$SECONDS
new=$out.new.$$
remove_tree "$new"
mkdir -p "$new"
trap 'remove_tree "'"$new"'"' EXIT
cp -a "$base/rootfs" "$new/rootfs"
rootfs=$new/rootfs

install -d -m 0755 "$rootfs/opt/volgate"
cp -r "$bundle"/. "$rootfs/opt/volgate/"

bash "$here/check.sh" "$arch" "$rootfs" || die "the $arch rootfs does not pass its checks ($rootfs)"
find "$rootfs/dev" -mindepth 1 -delete # dockerd mounts its own /dev
[[ ! -e $rootfs/.qemu ]] || die "qemu was left in the rootfs"
cp "$repo/plugin/config.json" "$new/config.json"
app_s=$((SECONDS - app_started))

size=$(du -sm "$rootfs" | cut -f1)
node_mb=$(du -sm "$rootfs/usr/bin/node" | cut -f1)
say "rootfs ($arch): ${size} MB (limit ${max_mb} MB); node $("$here/node.sh" --version) ${node_mb} MB; base ${base_s} s, app ${app_s} s"
if ((size > max_mb)); then
  du -sm "$rootfs"/usr/bin/node "$rootfs"/opt/volgate "$rootfs"/usr/lib/*-linux-gnu/* "$rootfs"/usr/share | sort -n | tail -n 12 >&2
  die "rootfs is ${size} MB, over the ${max_mb} MB limit (biggest parts above)"
fi

trap - EXIT
remove_tree "$out.old"
[[ -e $out ]] && mv "$out" "$out.old"
mkdir -p "$(dirname "$out")"
mv "$new" "$out"
remove_tree "$out.old"
say "plugin directory: $out (docker plugin create NAME:TAG $out)"
