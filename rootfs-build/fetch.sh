#!/usr/bin/env bash
# Downloads the Debian packages of packages.txt with their dependency closure for one architecture,
# with this machine's apt-get but a private apt state (its own sources, lists, caches and an empty
# dpkg status), so nothing of the host's apt setup is read or changed:
#
#   rootfs-build/fetch.sh ARCH DIR      # the .deb files land in DIR
#
# apt resolves Depends and Pre-Depends (no Recommends) as for an empty system, so Essential packages
# come only when packages.txt names them. Archives are verified against Debian's archive keyring.
#
# Settings (environment):
#   VOLGATE_DEBIAN_MIRROR           Debian archive URL. Default: the one this machine's apt sources
#                                   (/etc/apt/sources.list, sources.list.d/*.list|*.sources) use for the suite.
#   VOLGATE_DEBIAN_SECURITY_MIRROR  security archive URL; default from the apt sources (<suite>-security);
#                                   "none" leaves security updates out.
#   VOLGATE_DEBIAN_SUITE            default bookworm
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
arch=${1:?usage: fetch.sh ARCH DIR}
dir=${2:?usage: fetch.sh ARCH DIR}
suite=${VOLGATE_DEBIAN_SUITE:-bookworm}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

say() { printf 'fetch.sh: %s\n' "$*"; }
die() {
  printf 'fetch.sh: %s\n' "$*" >&2
  exit 1
}
[[ -f $keyring ]] || die "$keyring not found (apt-get install debian-archive-keyring)"

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

mirror=${VOLGATE_DEBIAN_MIRROR:-$(host_apt_uri "$suite")}
[[ -n $mirror ]] || die "no Debian mirror for $suite in /etc/apt/sources.list*: set VOLGATE_DEBIAN_MIRROR"
security=${VOLGATE_DEBIAN_SECURITY_MIRROR:-$(host_apt_uri "$suite-security")}
[[ -z $security ]] && say "warning: no $suite-security source in apt's config: building without security updates"
mapfile -t packages < <(sed 's/#.*//' "$here/packages.txt" | tr -s ' \t' '\n' | grep -v '^$')

apt=$dir/.apt
rm -rf "$apt"
mkdir -p "$apt"/etc/{apt.conf.d,preferences.d,sources.list.d} "$apt"/lists/partial "$apt"/archives/partial
: >"$apt/status"
{
  echo "deb [signed-by=$keyring] $mirror $suite main"
  echo "deb [signed-by=$keyring] $mirror $suite-updates main"
  if [[ -n $security && $security != none ]]; then echo "deb [signed-by=$keyring] $security $suite-security main"; fi
} >"$apt/etc/sources.list"
opts=(
  -o "Dir::Etc=$apt/etc" -o "Dir::State=$apt" -o "Dir::State::Lists=$apt/lists"
  -o "Dir::State::status=$apt/status" -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives"
  -o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o APT::Install-Recommends=false
  -o Debug::NoLocking=true -o APT::Sandbox::User=root -qq
)
say "$suite $arch from $mirror: ${packages[*]}"
apt-get "${opts[@]}" update || die "apt-get update from $mirror failed"
apt-get "${opts[@]}" install --download-only -y "${packages[@]}" >/dev/null ||
  die "apt-get could not resolve or download ${packages[*]} for $arch"
mv "$apt"/archives/*.deb "$dir"/
rm -rf "$apt"
say "$(find "$dir" -maxdepth 1 -name '*.deb' | wc -l) packages in $dir"
