#!/usr/bin/env bash
# Publishes the built plugin directory to a registry as REGISTRY/volgate:TAG.
#
#   rootfs-build/push.sh REGISTRY[/PATH] [TAG]     # npm run plugin:push -- REGISTRY[/PATH] [TAG]
#
# TAG defaults to package.json's version. Uses the docker CLI as configured (DOCKER_HOST,
# `docker login` for the registry). The plugin is created under its registry name, pushed, and
# the local copy removed again: dockerd 20.10 refuses to create a plugin whose rootfs content
# another installed plugin already holds, so leaving it would block the next create.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() {
  printf 'push.sh: %s\n' "$*" >&2
  exit 1
}

registry=${1:-}
[[ -n $registry ]] || die "usage: push.sh REGISTRY[/PATH] [TAG]   (npm run plugin:push -- REGISTRY[/PATH] [TAG])"
registry=${registry%/}
tag=${2:-$(cd "$repo" && node -p 'require("./package.json").version')}
name=$registry/volgate:$tag
dir=${VOLGATE_PLUGIN_DIR:-$repo/build/plugin}
[[ -f $dir/config.json && -d $dir/rootfs ]] || die "$dir has no config.json + rootfs/: run npm run plugin:build first"

if docker plugin inspect "$name" >/dev/null 2>&1; then
  [[ $(docker plugin inspect -f '{{.Enabled}}' "$name") == false ]] ||
    die "$name is installed and enabled on this engine: disable it (or use another tag) first"
  docker plugin rm "$name" >/dev/null
fi

echo "push.sh: docker plugin create $name $dir"
if ! out=$(docker plugin create "$name" "$dir" 2>&1); then
  echo "$out" >&2
  if grep -q 'already exists' <<<"$out"; then
    die "another plugin on this engine holds the same rootfs (e.g. the one npm run plugin:create made): docker plugin ls, remove it, and retry"
  fi
  die "docker plugin create failed"
fi
status=0
docker plugin push "$name" || status=$?
docker plugin rm "$name" >/dev/null || true
((status == 0)) || die "docker plugin push $name failed"

cat <<EOF
push.sh: pushed $name
Install on a host (state and credentials stay in host directories, outside /var/lib/docker):
  mkdir -p -m 0700 /var/lib/volgate /etc/volgate/credentials
  docker plugin install --grant-all-permissions --alias volgate $name
After a \`docker plugin upgrade\`, set state.source / credentials.source again if you changed them:
dockerd resets mount sources to the new config's defaults.
EOF
