#!/usr/bin/env bash
# Proves a built plugin rootfs runs, inside itself (chroot; qemu-user for a foreign architecture):
#
#   rootfs-build/check.sh ARCH ROOT
#
# - every ELF file is built for ARCH and every dynamic one has all its libraries, as the rootfs's
#   own loader resolves them (ld.so --list, what ldd prints);
# - every program of programs.txt starts with the arguments listed there; a script's interpreter exists;
# - when present: /usr/bin/node is the pinned version and /opt/volgate/volgate.mjs --help runs.
# Fails with the reasons; prints one line when everything passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
  printf 'check.sh: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=lib.sh
source "$here/lib.sh"
arch=${1:?usage: check.sh ARCH ROOT}
root=$(realpath "${2:?usage: check.sh ARCH ROOT}")
arch_setup "$arch"
failures=()
fail() { failures+=("$*"); }

mkdir -p "$root/dev"
mount --bind /dev "$root/dev" # ssh and sshfs open /dev/null; dockerd provides /dev in the plugin
trap 'umount_under "$root/dev"; leave_root "$root"' EXIT

elves=0
want="(no node)"
while IFS= read -r -d '' file; do
  [[ $(head -c 4 "$file") == $'\x7fELF' ]] || continue
  elves=$((elves + 1))
  rel=/${file#"$root"/}
  machine=$(readelf -h "$file" | sed -n 's/^ *Machine: *//p')
  [[ $machine == "$elf_machine" ]] || fail "$rel is built for $machine, not $arch"
  [[ $(readelf -d "$file" 2>/dev/null) == *'(NEEDED)'* ]] || continue # static, or no dependencies
  if ! listed=$(in_root "$root" "$loader" --list "$rel" 2>&1) || grep -q 'not found' <<<"$listed"; then
    fail "$rel: $(grep 'not found' <<<"$listed" | tr -s ' \t' ' ' || echo "$listed")"
  fi
done < <(find "$root" -xdev -type f ! -path "$root/.qemu" -print0) # .qemu: in_root's, not shipped

while read -r program args; do
  [[ -n $program ]] || continue
  if [[ $(head -c 2 "$root$program" 2>/dev/null) == '#!' ]]; then
    interpreter=$(head -n 1 "$root$program" | sed 's/^#! *//; s/ .*//')
    [[ -x $root$interpreter ]] || fail "$program: its interpreter $interpreter is missing"
  fi
  [[ $args == - ]] && continue
  # shellcheck disable=SC2086 # the listed arguments, split on spaces
  out=$(in_root "$root" "$program" $args 2>&1 </dev/null) || fail "'$program $args' failed: $(tail -n 3 <<<"$out")"
done < <(sed 's/#.*//' "$here/programs.txt")

if [[ -e $root/usr/bin/node ]]; then
  want=v$(bash "$here/node.sh" --version)
  got=$(in_root "$root" /usr/bin/node --version 2>&1) || fail "node --version failed: $got"
  [[ $got == "$want" ]] || fail "/usr/bin/node is $got, not $want"
fi
if [[ -e $root/opt/volgate/volgate.mjs ]]; then
  out=$(in_root "$root" /usr/bin/node /opt/volgate/volgate.mjs --help 2>&1) ||
    fail "node /opt/volgate/volgate.mjs --help failed: $(tail -n 5 <<<"$out")"
  grep -q '^Usage: volgate' <<<"$out" || fail "volgate --help printed no usage: $(head -n 3 <<<"$out")"
fi

if ((${#failures[@]})); then
  printf 'check.sh: %s\n' "${failures[@]}" >&2
  die "$root ($arch): ${#failures[@]} problem(s)"
fi
echo "check.sh: $arch rootfs ok: $elves ELF files for $arch with their libraries; programs, node $want and volgate run"
