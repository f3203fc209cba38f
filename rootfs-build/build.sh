#!/usr/bin/env bash
# Builds the managed plugin directory build/plugin/ (config.json + rootfs/) from Debian packages,
# without pulling any container image:
#
#   npm run build && rootfs-build/build.sh        # as root (debootstrap, chroot); or: npm run plugin:build
#   docker plugin create volgate:VERSION build/plugin
#
# Two layers:
#   base  debootstrap --variant=minbase, then apt-get install --no-install-recommends of packages.txt
#         inside the chroot (installing them through --include picks fuse 2 and conflicts), slimmed
#         by slim.sh and checked (sshfs, s3fs, mount.nfs, ssh run). Cached in
#         .cache/rootfs/<key>/rootfs, key = hash of packages.txt, build.sh, slim.sh, suite and
#         architecture. VOLGATE_ROOTFS_REFRESH=1 rebuilds it (do so now and then: security updates).
#   app   this machine's node binary (must be Node 20: bookworm's nodejs is 18) -> /usr/bin/node,
#         stripped of symbols when `strip` exists; dist/, package.json and the production
#         node_modules (npm's own production tree, copied from ./node_modules) -> /opt/volgate.
#         Rebuilt every time (seconds).
# Then the size of rootfs/ is reported (du -sm) and the build fails above VOLGATE_ROOTFS_MAX_MB.
#
# Settings (environment):
#   VOLGATE_DEBIAN_MIRROR           Debian archive URL. Default: the one this machine's apt sources
#                                   (/etc/apt/sources.list, sources.list.d/*.list|*.sources) use for the suite.
#   VOLGATE_DEBIAN_SECURITY_MIRROR  security archive URL; default from the apt sources (<suite>-security);
#                                   "none" leaves security updates out.
#   VOLGATE_DEBIAN_SUITE            default bookworm
#   VOLGATE_NODE                    the node binary to ship; default: node on PATH
#   VOLGATE_PLUGIN_DIR              output directory; default build/plugin
#   VOLGATE_ROOTFS_CACHE            cache directory; default .cache/rootfs
#   VOLGATE_ROOTFS_MAX_MB           size limit of rootfs/ in MB; default 250
#   VOLGATE_ROOTFS_REFRESH=1        rebuild the base layer even when it is cached
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
suite=${VOLGATE_DEBIAN_SUITE:-bookworm}
max_mb=${VOLGATE_ROOTFS_MAX_MB:-250}
cache_root=${VOLGATE_ROOTFS_CACHE:-$repo/.cache/rootfs}
out=${VOLGATE_PLUGIN_DIR:-$repo/build/plugin}
out=${out%/}

say() { printf 'build.sh: %s\n' "$*"; }
die() {
  printf 'build.sh: %s\n' "$*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || die "run as root: debootstrap and chroot need it (sudo -E $0)"
for tool in debootstrap chroot dpkg sha256sum flock tar du npm; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install debootstrap; npm comes with node)"
done
[[ -n $out && $out != / && $out != "$repo" ]] || die "VOLGATE_PLUGIN_DIR must name a directory of its own"
[[ -f $repo/dist/main.js ]] || die "dist/main.js not found: run npm run build first (npm run plugin:build does both)"
[[ -d $repo/node_modules ]] || die "node_modules not found: run npm ci first"
arch=$(dpkg --print-architecture)

# ---------------------------------------------------------------- the Debian mirror from apt's config
# Prints the first archive URL this machine's apt sources use for suite $1 (one-line and deb822 formats).
host_apt_uri() {
  local want=$1 f
  {
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [[ -f $f ]] || continue
      awk -v want="$want" '
        $1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == want) print $i
        }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      [[ -f $f ]] || continue
      awk -v want="$want" '
        BEGIN { RS = ""; FS = "\n" }
        {
          types = ""; uris = ""; suites = ""; enabled = "yes"
          for (i = 1; i <= NF; i++) {
            line = $i
            if (line ~ /^#/ || !match(line, /^[A-Za-z-]+:/)) continue
            key = tolower(substr(line, 1, RLENGTH - 1)); val = substr(line, RLENGTH + 1)
            gsub(/^[ \t]+|[ \t]+$/, "", val)
            if (key == "types") types = val
            else if (key == "uris") uris = val
            else if (key == "suites") suites = val
            else if (key == "enabled") enabled = tolower(val)
          }
          if (enabled == "no" || (" " types " ") !~ / deb /) next
          n = split(suites, s, /[ \t]+/)
          for (j = 1; j <= n; j++) if (s[j] == want) { split(uris, u, /[ \t]+/); print u[1] }
        }' "$f"
    done
  } | head -n 1 | sed 's:/*$::'
}

# ---------------------------------------------------------------- helpers
# Unmounts everything at or under $1 (deepest first); then it is safe to delete.
umount_under() {
  local dir mp
  dir=$(realpath -m "$1")
  while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp"
  done < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}
remove_tree() {
  [[ -e $1 ]] || return 0
  umount_under "$1"
  if awk -v d="$(realpath -m "$1")" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "not deleting $1: something is still mounted under it"
  fi
  rm -rf "$1"
}
in_chroot() { chroot "$1" "${@:2}"; }
run_logged() { # run_logged LOGFILE WHAT cmd... : quiet unless it fails
  local log=$1 what=$2
  shift 2
  if ! "$@" >>"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "$what failed (full log: $log)"
  fi
}

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9 # one build at a time per cache

mapfile -t packages < <(sed 's/#.*//' "$here/packages.txt" | tr -s ' \t' '\n' | grep -v '^$')
key=$(
  {
    cat "$here/packages.txt" "$here/build.sh" "$here/slim.sh"
    echo "$suite $arch"
  } | sha256sum | cut -c1-16
)
base=$cache_root/$key

# ---------------------------------------------------------------- base layer (cached)
build_base() {
  local mirror security tmp root log
  mirror=${VOLGATE_DEBIAN_MIRROR:-$(host_apt_uri "$suite")}
  [[ -n $mirror ]] || die "no Debian mirror for $suite in /etc/apt/sources.list*: set VOLGATE_DEBIAN_MIRROR"
  security=${VOLGATE_DEBIAN_SECURITY_MIRROR:-$(host_apt_uri "$suite-security")}
  tmp=$cache_root/tmp.$$
  root=$tmp/rootfs
  log=$tmp/build.log
  local stale
  for stale in "$cache_root"/tmp.*; do remove_tree "$stale"; done # failed builds (we hold the lock)
  mkdir -p "$tmp"
  trap 'umount_under "'"$tmp"'" 2>/dev/null || true' EXIT

  say "base layer $key: debootstrap --variant=minbase $suite ($arch) from $mirror"
  run_logged "$log" debootstrap debootstrap --variant=minbase --arch="$arch" "$suite" "$root" "$mirror"

  {
    echo "deb $mirror $suite main"
    echo "deb $mirror $suite-updates main"
    if [[ -n $security && $security != none ]]; then echo "deb $security $suite-security main"; fi
  } >"$root/etc/apt/sources.list"
  [[ -z $security ]] && say "warning: no $suite-security source in apt's config: building without security updates"
  rm -f "$root/etc/resolv.conf"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" # start no services
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"

  say "base layer $key: apt-get install --no-install-recommends ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  run_logged "$log" "apt-get update" in_chroot "$root" apt-get update
  run_logged "$log" "apt-get install" in_chroot "$root" apt-get install -y --no-install-recommends "${packages[@]}"
  run_logged "$log" "apt-get clean" in_chroot "$root" apt-get clean
  umount "$root/proc"

  say "base layer $key: slimming"
  run_logged "$log" "slim.sh" bash "$here/slim.sh" "$root"
  rm -rf "$root/etc/apt" "$root/usr/sbin/policy-rc.d"
  : >"$root/etc/resolv.conf" # dockerd bind-mounts the host's over it (network host)

  say "base layer $key: checking the mount helpers still run"
  local check
  for check in "sshfs --version" "s3fs --version" "mount.nfs -V" "ssh -V" "tini --version" \
    "mount --version" "umount --version" "fusermount3 --version"; do
    # shellcheck disable=SC2086
    in_chroot "$root" $check >/dev/null 2>&1 || die "'$check' does not run in the slimmed rootfs ($root)"
  done
  mkdir -p "$root/mnt/volgate" "$root/var/lib/volgate" "$root/etc/volgate/credentials" "$root/opt/volgate"

  trap - EXIT
  remove_tree "$base"
  mv "$tmp" "$base"
  touch "$base/complete"
  # Older keys are dead weight (~130 MB each).
  local old
  for old in "$cache_root"/*; do
    [[ -d $old && $old != "$base" && $(basename "$old") =~ ^[0-9a-f]{16}$ ]] && remove_tree "$old"
  done
  return 0
}

started=$SECONDS
if [[ ${VOLGATE_ROOTFS_REFRESH:-0} == 1 || ! -f $base/complete ]]; then
  build_base
  say "base layer built in $((SECONDS - started)) s"
else
  say "base layer $key: cached ($base)"
fi
base_s=$((SECONDS - started))

# ---------------------------------------------------------------- app layer (every build)
app_started=$SECONDS
node_bin=$(readlink -f "${VOLGATE_NODE:-$(command -v node)}")
node_version=$("$node_bin" -p 'process.versions.node')
[[ $node_version =~ ^20\.([0-9]+)\. && ${BASH_REMATCH[1]} -ge 19 ]] ||
  die "$node_bin is Node $node_version: the plugin ships Node 20 (>= 20.19, see engines); set VOLGATE_NODE"

new=$out.new.$$
remove_tree "$new"
mkdir -p "$new"
trap 'remove_tree "'"$new"'"' EXIT
cp -a "$base/rootfs" "$new/rootfs"
rootfs=$new/rootfs

if command -v strip >/dev/null; then
  strip --strip-all -o "$rootfs/usr/bin/node" "$node_bin"
else
  say "strip not found (binutils): shipping node with its symbols (+13 MB)"
  cp "$node_bin" "$rootfs/usr/bin/node"
fi
chmod 0755 "$rootfs/usr/bin/node"

app=$rootfs/opt/volgate
tar -C "$repo" --exclude='*.map' --owner=0 --group=0 --numeric-owner -cf - dist package.json | tar -C "$app" -xf -

# The production tree exactly as npm resolved it (nested copies included), minus type
# declarations, source maps and docs; license files stay.
list=$new/modules.list
(
  cd "$repo"
  npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
    rel=${dir#"$repo"/}
    find "$rel" -path "$rel/node_modules" -prune -o \( -type f -o -type l \) \
      ! -name '*.d.ts' ! -name '*.d.mts' ! -name '*.d.cts' ! -name '*.map' \
      ! \( -iname '*.md' ! -iname 'licen[cs]e*' ! -iname 'notice*' \) -print
  done
) >"$list" || die "npm ls --omit=dev failed: is node_modules in sync with package-lock.json? (npm ci)"
[[ -s $list ]] || die "no production modules found (npm ls --omit=dev listed nothing)"
tar -C "$repo" --no-recursion --owner=0 --group=0 --numeric-owner -T "$list" -cf - | tar -C "$app" -xf -
rm -f "$list"

in_chroot "$rootfs" /usr/bin/node --version >/dev/null || die "the shipped node does not run in the rootfs"
in_chroot "$rootfs" /usr/bin/node /opt/volgate/dist/main.js --help >/dev/null ||
  die "volgate does not start in the rootfs (node /opt/volgate/dist/main.js --help failed)"
find "$rootfs/dev" -mindepth 1 -delete # dockerd mounts its own /dev
cp "$repo/plugin/config.json" "$new/config.json"
app_s=$((SECONDS - app_started))

size=$(du -sm "$rootfs" | cut -f1)
say "rootfs: ${size} MB (limit ${max_mb} MB); node $node_version; base ${base_s} s, app ${app_s} s"
if ((size > max_mb)); then
  du -sm "$rootfs"/usr/bin/node "$rootfs"/opt/volgate/* "$rootfs"/usr/lib/*-linux-gnu "$rootfs"/usr/share | sort -n >&2
  die "rootfs is ${size} MB, over the ${max_mb} MB limit (biggest parts above)"
fi

trap - EXIT
remove_tree "$out.old"
[[ -e $out ]] && mv "$out" "$out.old"
mkdir -p "$(dirname "$out")"
mv "$new" "$out"
remove_tree "$out.old"
say "plugin directory: $out (docker plugin create NAME:TAG $out)"
