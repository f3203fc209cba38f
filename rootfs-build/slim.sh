#!/usr/bin/env bash
# Slims a Debian root filesystem down to what volgate needs at run time.
#   rootfs-build/slim.sh ROOT      (ROOT=/ inside a container build, see Dockerfile)
#
# Purges packages that only installing needs (python3 and perl, pulled in by nfs-common's and
# mailcap's maintainer scripts; apt; e2fsprogs; tzdata; the openssl CLI) and the files a service
# never reads (docs except copyright notices, man pages, locales, gconv modules, apt lists/caches).
# The packages go through `dpkg --purge --force-depends` so /var/lib/dpkg/status stays true
# for scanners; `dpkg --audit` will name the dependencies this leaves unmet, on purpose.
# build.sh checks afterwards that sshfs, s3fs, mount.nfs, ssh and node still run.
set -euo pipefail

root=${1:?usage: slim.sh ROOT}
root=${root%/}
in_root() {
  if [[ -z $root ]]; then "$@"; else chroot "$root" "$@"; fi
}

# shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
installed=$(in_root dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | awk '$1 ~ /^.i/ {print $2}' | sed 's/:.*//')

# In this order: a package's maintainer scripts may need the interpreter purged after it.
groups=(
  '^python3$|^python3\.[0-9]+$'
  '^libpython3(\.[0-9]+)?-stdlib$'
  '^python3(\.[0-9]+)?-minimal$'
  '^libpython3\.[0-9]+-minimal$'
  '^mime-support$|^mailcap$'
  '^perl$'
  '^libperl5\.[0-9]+$|^perl-modules-5\.[0-9]+$|^libgdbm-compat4$'
  '^e2fsprogs$|^libext2fs2$|^logsave$|^libss2$'
  '^apt$|^libapt-pkg[0-9.]+$'
  '^tzdata$|^openssl$'
  '^perl-base$'
)
for pattern in "${groups[@]}"; do
  mapfile -t pkgs < <(grep -E "$pattern" <<<"$installed" || true)
  ((${#pkgs[@]})) || continue
  if ! out=$(DEBIAN_FRONTEND=noninteractive in_root dpkg --purge --force-depends --force-remove-essential \
    "${pkgs[@]}" 2>&1); then
    echo "slim.sh: dpkg --purge ${pkgs[*]} failed:" >&2
    echo "$out" >&2
    exit 1
  fi
done

# Files nothing reads at run time. Copyright notices stay: the rootfs is redistributed.
if [[ -d $root/usr/share/doc ]]; then
  find "$root/usr/share/doc" -mindepth 1 \( -type f -o -type l \) ! -name copyright -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
fi
rm -rf "$root"/usr/share/{man,info,locale,lintian,linda,bash-completion}
# iconv modules: sshfs, s3fs, mount.nfs and node never convert charsets (node has ICU).
rm -rf "$root"/usr/lib/*-linux-gnu/gconv
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
  "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/tmp/* "$root"/var/tmp/*
