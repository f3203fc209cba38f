#!/usr/bin/env bash
# Rebuilds the rootfs's ICU data library with only the charset converters:
#
#   rootfs-build/icu-data.sh ARCH ROOT
#
# ICU enters the rootfs through s3fs -> libxml2, which calls ICU for one thing: converting a
# document in a charset it does not decode itself (ucnv_open/ucnv_convertEx; the rootfs has no
# iconv modules). That needs the converter tables (*.cnv) and their alias table (cnvalias.icu),
# 5 of libicudata's 30 MB; the rest (locales, collation, break iteration, time zones, ...) is never
# read. The data blob (the icudtNN_dat symbol) is cut out of Debian's library, the other items
# are removed with ICU's own icupkg (its -r list must be a *.txt file), and the result is linked
# back into a library of the same name and soname with the target's binutils.
# test/e2e/rootfs.test.ts converts Shift_JIS and windows-1250 XML through the rootfs's libxml2
# to prove the converters still work.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
  printf 'icu-data.sh: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=lib.sh
source "$here/lib.sh"
arch=${1:?usage: icu-data.sh ARCH ROOT}
root=${2:?usage: icu-data.sh ARCH ROOT}
arch_setup "$arch"
command -v icupkg >/dev/null || die "icupkg not found (apt-get install icu-devtools)"
for tool in as ld; do
  command -v "$triplet-$tool" >/dev/null || die "$triplet-$tool not found (apt-get install binutils-${triplet//_/-})"
done

shopt -s nullglob
libs=("$root/usr/lib/$triplet"/libicudata.so.*.*)
shopt -u nullglob
((${#libs[@]} == 1)) || die "expected one libicudata.so.N.M in $root/usr/lib/$triplet, found ${#libs[@]}"
lib=${libs[0]}
[[ ! -L $lib ]] || die "$lib is a symlink"
soname=$(readelf -dW "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
# The data blob: its symbol's address and size, and where its section sits in the file.
read -r symbol value size ndx < <(readelf -sW "$lib" | awk '$8 ~ /^icudt[0-9]+_dat$/ { print $8, $2, $3, $7; exit }')
[[ -n ${symbol:-} ]] || die "$lib exports no icudtNN_dat symbol"
read -r addr offset < <(readelf -SW "$lib" | sed 's/^ *\[ *\([0-9]*\)\]/\1/' | awk -v n="$ndx" '$1 == n { print $4, $5 }')
[[ -n ${addr:-} ]] || die "$lib: section $ndx of $symbol not found"
((size = size)) # readelf prints large sizes in hex (0x...)
start=$((0x$value - 0x$addr + 0x$offset))

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
package=${symbol%_dat}l # icudt72l: ICU's name for its little-endian data (both architectures here)
mkdir "$tmp/in" "$tmp/out"
dd if="$lib" of="$tmp/in/$package.dat" bs=64K iflag=skip_bytes,count_bytes skip="$start" count="$size" status=none
icupkg -l "$tmp/in/$package.dat" >"$tmp/items" || die "icupkg cannot read the data in $lib"
grep -q '^cnvalias\.icu$' "$tmp/items" || die "$lib has no converter alias table (cnvalias.icu)"
grep -v -E '\.cnv$|^cnvalias\.icu$' "$tmp/items" >"$tmp/remove.txt" || true
icupkg -r "$tmp/remove.txt" "$tmp/in/$package.dat" "$tmp/out/$package.dat" >/dev/null
icupkg -l "$tmp/out/$package.dat" >"$tmp/kept"
grep -q '^cnvalias\.icu$' "$tmp/kept" || die "icupkg dropped the converter alias table"

(
  cd "$tmp/out"
  printf '%s\n' '.section .rodata' ".globl $symbol" ".type $symbol, %object" '.balign 16' "$symbol:" \
    ".incbin \"$package.dat\"" ".size $symbol, . - $symbol" '.section .note.GNU-stack,"",%progbits' |
    "$triplet-as" -o data.o -
  "$triplet-ld" -shared -soname "$soname" -z noexecstack -z relro -o lib.so data.o
)
install -m 0644 "$tmp/out/lib.so" "$lib"
echo "icu-data.sh: $(basename "$lib"): $(wc -l <"$tmp/kept") converter items kept, $((size / 1048576)) -> $(($(stat -c %s "$lib") / 1048576)) MB"
