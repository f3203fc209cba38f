#!/usr/bin/env bash
# Publishes the built plugin directories to a registry, one tag per architecture:
#
#   rootfs-build/push.sh REGISTRY[/PATH] [VERSION]     # npm run plugin:push -- REGISTRY[/PATH] [VERSION]
#
#   REGISTRY/volgate:VERSION-amd64   from build/plugin-amd64
#   REGISTRY/volgate:VERSION-arm64   from build/plugin-arm64
#   REGISTRY/volgate:VERSION         the amd64 one again (the plain tag is amd64)
#
# Docker plugins have no multi-architecture manifests (`docker plugin install` takes the one
# image a tag names), so each architecture is its own tag, as rclone's plugin does. Only the
# architectures built (npm run plugin:build -- amd64|arm64) are pushed. VERSION defaults to
# package.json's version; VOLGATE_BUILD_DIR (default build/) holds the plugin-<arch> directories.
# Uses the docker CLI as configured (DOCKER_HOST, `docker login` for the registry). Each plugin
# is created under its registry name, pushed, and the local copy removed again: dockerd 20.10
# refuses to create a plugin whose rootfs content another installed plugin already holds.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() {
  printf 'push.sh: %s\n' "$*" >&2
  exit 1
}

registry=${1:-}
[[ -n $registry ]] || die "usage: push.sh REGISTRY[/PATH] [VERSION]   (npm run plugin:push -- REGISTRY[/PATH] [VERSION])"
registry=${registry%/}
version=${2:-$(cd "$repo" && node -p 'require("./package.json").version')}
build=${VOLGATE_BUILD_DIR:-$repo/build}

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f s", b - a }'; }

# push NAME DIR: create, push, remove.
push() {
  local name=$1 dir=$2 out status=0 started
  if docker plugin inspect "$name" >/dev/null 2>&1; then
    [[ $(docker plugin inspect -f '{{.Enabled}}' "$name") == false ]] ||
      die "$name is installed and enabled on this engine: disable it (or use another version) first"
    docker plugin rm "$name" >/dev/null
  fi
  started=$(now)
  if ! out=$(docker plugin create "$name" "$dir" 2>&1); then
    echo "$out" >&2
    if grep -q 'already exists' <<<"$out"; then
      die "another plugin on this engine holds the same rootfs (e.g. the one npm run plugin:create made): docker plugin ls, remove it, and retry"
    fi
    die "docker plugin create $name $dir failed"
  fi
  echo "push.sh: created $name from $dir in $(took "$started")"
  started=$(now)
  out=$(docker plugin push "$name" 2>&1) || status=$?
  docker plugin rm "$name" >/dev/null || true
  ((status == 0)) || die "docker plugin push $name failed: $out"
  echo "push.sh: pushed $name in $(took "$started")"
}

pushed=()
for arch in amd64 arm64; do
  dir=$build/plugin-$arch
  [[ -f $dir/config.json && -d $dir/rootfs ]] || continue
  push "$registry/volgate:$version-$arch" "$dir"
  pushed+=("$registry/volgate:$version-$arch")
  if [[ $arch == amd64 ]]; then
    push "$registry/volgate:$version" "$dir"
    pushed+=("$registry/volgate:$version")
  fi
done
((${#pushed[@]})) || die "no plugin-amd64 or plugin-arm64 (config.json + rootfs/) in $build: run npm run plugin:build first"

cat <<EOF
push.sh: done: ${pushed[*]}
Install on a host (state and credentials stay in host directories, outside /var/lib/docker):
  mkdir -p -m 0700 /var/lib/volgate /etc/volgate/credentials
  docker plugin install --grant-all-permissions --alias volgate $registry/volgate:$version-\$(dpkg --print-architecture)
After a \`docker plugin upgrade\`, set state.source / credentials.source again if you changed them:
dockerd resets mount sources to the new config's defaults.
EOF
