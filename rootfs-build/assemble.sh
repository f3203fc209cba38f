#!/usr/bin/env bash
# Assembles the plugin's base root filesystem from downloaded Debian packages (fetch.sh) and the
# pinned Node runtime (node.sh):
#
#   rootfs-build/assemble.sh ARCH DEBDIR NODEDIR ROOT
#
# 1. Unpacks every package (dpkg-deb's data, merged /usr; no maintainer scripts run, so no perl,
#    python, apt or dpkg are needed or left) into a scratch tree, and node (stripped) as /usr/bin/node.
# 2. Keeps only what runs: the programs of programs.txt and the shared libraries the rootfs's own
#    dynamic loader resolves for them (ld.so --list, inside the tree); of the packages these come
#    from (and the data packages they read), the /etc and /var files and the copyright notices.
#    Docs, man pages, locales, unused programs and libraries, other packages' files go; ICU's
#    data keeps only its charset converters (icu-data.sh).
# 3. Writes what maintainer scripts would have: /etc/passwd and group (root, nobody),
#    nsswitch.conf, the CA bundle GnuTLS reads, /etc/mtab, and /var/lib/dpkg/status listing the
#    packages whose files remain (for image scanners) with their copyright files. Set-id bits
#    are dropped: everything runs as root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { printf 'assemble.sh: %s\n' "$*"; }
die() {
  printf 'assemble.sh: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=lib.sh
source "$here/lib.sh"

usage="usage: assemble.sh ARCH DEBDIR NODEDIR ROOT"
arch=${1:?$usage}
debs=${2:?$usage}
node_dir=${3:?$usage}
root=${4:?$usage}
arch_setup "$arch"
strip=$triplet-strip
command -v "$strip" >/dev/null || die "$strip not found (apt-get install binutils-${triplet//_/-})"
all=$root.all
remove_tree "$all"
remove_tree "$root"

# merged /usr, as Debian bookworm installs it
usr_merge() {
  mkdir -p "$1"/usr/{bin,sbin,lib}
  ln -s usr/bin "$1/bin"
  ln -s usr/sbin "$1/sbin"
  ln -s usr/lib "$1/lib"
  if [[ $arch == amd64 ]]; then mkdir -p "$1/usr/lib64" && ln -s usr/lib64 "$1/lib64"; fi
}

# ---------------------------------------------------------------- 1. unpack
usr_merge "$all"
mkdir -p "$all/.pkg"
for deb in "$debs"/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$all"
  dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's:^\./::; s:/$::; /^$/d' >"$all/.pkg/$pkg.list"
  dpkg-deb -f "$deb" >"$all/.pkg/$pkg.control"
done
"$strip" --strip-all -o "$all/usr/bin/node" "$node_dir/bin/node"
chmod 0755 "$all/usr/bin/node"
install -D -m 0644 "$node_dir/LICENSE" "$all/usr/share/doc/nodejs/copyright"
# Absolute symlinks would point out of the tree when it is read from outside: make them relative.
while IFS= read -r -d '' link; do
  target=$(readlink "$link")
  [[ $target == /* ]] || continue
  ln -sfn "$(realpath -m -s --relative-to="$(dirname "/${link#"$all"/}")" "$target")" "$link"
done < <(find "$all" -type l -print0)

# ---------------------------------------------------------------- 2. what stays
keep=$all/.keep
: >"$keep"
# keep PATH (absolute inside the tree): the path, every symlink on the way, and the file it ends at.
keep() {
  local p=$1 n=0 phys target
  while :; do
    phys=$(realpath -m "$all$(dirname "$p")")/$(basename "$p")
    [[ -e $phys || -L $phys ]] || die "$p is not in the unpacked packages (packages.txt / programs.txt)"
    echo "${phys#"$all"/}" >>"$keep"
    [[ -L $phys ]] || return 0
    ((++n < 40)) || die "$p: too many levels of symlinks"
    target=$(readlink "$phys")
    if [[ $target == /* ]]; then p=$target; else p=$(realpath -m -s "$(dirname "/${phys#"$all"/}")/$target"); fi
  done
}
is_elf() { [[ $(head -c 4 "$1" 2>/dev/null) == $'\x7fELF' ]]; }

mapfile -t programs < <(sed 's/#.*//' "$here/programs.txt" | awk 'NF { print $1 }')
for program in "${programs[@]}"; do
  keep "$program"
  real=$all/$(tail -n 1 "$keep")
  is_elf "$real" || continue
  # The loader of this very tree says which libraries the program gets (what ldd prints).
  listed=$(in_root "$all" "$loader" --list "$program") || die "$loader --list $program failed: $listed"
  if grep -q 'not found' <<<"$listed"; then die "$program: libraries missing from the packages: $listed"; fi
  while read -r lib; do keep "$lib"; done < <(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$listed")
done
leave_root "$all"
shopt -s nullglob
for f in "$all"/usr/share/common-licenses/* "$all"/usr/lib/os-release "$all"/usr/share/doc/nodejs/copyright; do
  keep "/${f#"$all"/}"
done
shopt -u nullglob
sort -u "$keep" -o "$keep"
cp "$keep" "$all/.run" # what runs (programs, libraries, licences): which packages are in use

# The packages in use ship a kept file, or are data the programs read: of them, and only of them,
# the configuration and state directories (/etc, /var; not what only an init system, cron or PAM
# reads), the copyright notice and the status entry stay.
data_packages=" media-types libtirpc-common ca-certificates " # mime.types (s3fs), netconfig (libtirpc), the CA bundle
not_run='^etc/(init\.d|rc.\.d|systemd|pam\.d|security|insserv\.conf\.d|cron\.[a-z]+|logrotate\.d)(/|$)'
mkdir -p "$all/.used"
for list in "$all"/.pkg/*.list; do
  pkg=$(basename "$list" .list)
  files=$(sed -E 's:^(bin|sbin|lib|lib64)/:usr/\1/:' "$list") # as merged /usr places them
  grep -qxFf "$all/.run" <<<"$files" || [[ $data_packages == *" $pkg "* ]] || continue
  mv "$all/.pkg/$pkg.control" "$all/.used/"
  { grep -E '^(etc|var)/' <<<"$files" | grep -vE "$not_run" || true; } >>"$keep"
  if [[ -f $all/usr/share/doc/$pkg/copyright ]]; then echo "usr/share/doc/$pkg/copyright" >>"$keep"; fi
done

usr_merge "$root"
sort -u "$keep" | tar -C "$all" --no-recursion -T - -cf - | tar -C "$root" -x --keep-directory-symlink
bash "$here/icu-data.sh" "$arch" "$root"

# ---------------------------------------------------------------- 3. what maintainer scripts would write
mkdir -p "$root"/{dev,proc,sys,run,tmp,var/tmp,root,mnt/volgate,var/lib/volgate,etc/volgate/credentials,opt/volgate}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 0700 "$root/root" "$root/var/lib/volgate" "$root/etc/volgate/credentials"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\nrpc: files\n' \
  >"$root/etc/nsswitch.conf"
: >"$root/etc/hosts" # dockerd bind-mounts the host's /etc/hosts and /etc/resolv.conf (network host)
: >"$root/etc/resolv.conf"
ln -sfn ../proc/self/mounts "$root/etc/mtab"
# update-ca-certificates' bundle: every certificate ca-certificates ships, in its order.
mkdir -p "$root/etc/ssl/certs"
find "$all/usr/share/ca-certificates" -name '*.crt' -print0 | LC_ALL=C sort -z |
  xargs -0 sed -s -e '$a\' >"$root/etc/ssl/certs/ca-certificates.crt"
[[ -s $root/etc/ssl/certs/ca-certificates.crt ]] || die "no CA certificates in the ca-certificates package"
find "$root" -type f -perm /6000 -exec chmod ug-s {} +

mkdir -p "$root/var/lib/dpkg"
status=$root/var/lib/dpkg/status
for control in "$all"/.used/*.control; do
  sed '/^Status:/d' "$control" | sed '1a Status: install ok installed'
  echo
done >"$status"

remove_tree "$all"
say "$arch: $(grep -c '^Package:' "$status") packages have files in $root ($(du -sm "$root" | cut -f1) MB)"
