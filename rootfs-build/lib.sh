# Shared by build.sh, assemble.sh and check.sh (sourced): the target architectures, running a
# program inside a root filesystem, and deleting trees that may have mounts under them.
# shellcheck shell=bash

# arch_setup ARCH: sets triplet, loader (the dynamic loader's path), elf_machine (readelf -h's
# Machine) and qemu (the qemu-user binary when ARCH is not this machine's, else empty).
arch_setup() {
  case $1 in
    amd64) triplet=x86_64-linux-gnu loader=/lib64/ld-linux-x86-64.so.2 elf_machine="Advanced Micro Devices X86-64" ;;
    arm64) triplet=aarch64-linux-gnu loader=/lib/ld-linux-aarch64.so.1 elf_machine=AArch64 ;;
    *) die "unknown architecture '$1' (amd64 or arm64)" ;;
  esac
  qemu=
  if [[ $1 != "$(dpkg --print-architecture)" ]]; then
    qemu=$(command -v "qemu-${triplet%%-*}-static") ||
      die "qemu-${triplet%%-*}-static not found: running $1 programs here needs it (apt-get install qemu-user-static)"
  fi
}

# in_root ROOT PROGRAM ARGS...: runs PROGRAM inside ROOT (chroot), under qemu-user when foreign.
# No binfmt_misc is needed: qemu is copied into ROOT as /.qemu (once; leave_root removes it).
in_root() {
  local root=$1
  shift
  if [[ -z $qemu ]]; then
    chroot "$root" "$@"
    return
  fi
  [[ -x $root/.qemu ]] || cp "$qemu" "$root/.qemu"
  chroot "$root" /.qemu "$@"
}
leave_root() { rm -f "$1/.qemu"; }

# Unmounts everything at or under $1 (deepest first); then it is safe to delete.
umount_under() {
  local dir mp
  dir=$(realpath -m "$1")
  while read -r mp; do
    umount "$mp" 2>/dev/null || umount -l "$mp"
  done < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
}

remove_tree() {
  [[ -e $1 || -L $1 ]] || return 0
  umount_under "$1"
  if awk -v d="$(realpath -m "$1")" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "not deleting $1: something is still mounted under it"
  fi
  rm -rf "$1"
}
