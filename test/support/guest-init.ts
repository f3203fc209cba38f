/**
 * The shell a test guest runs as PID 1, in two stages (see guest.ts for the whole picture):
 * - the root stage (kind-specific) builds a tmpfs root holding read-only binds of the host's
 *   top-level directories, mounts the work dir read-write and the extra shares read-only at their
 *   host paths, switches to that root and execs the NFS stage;
 * - the NFS stage (common) loads the modules, starts the NFS server on the guest's loopback, runs
 *   the script with its output and exit code written to the work dir, and powers the guest off.
 * Console lines `volgate-guest: <uptime> <stage>` mark the progress (guest-process.ts reads them).
 */

/** The NFS server's address inside the guest (its own loopback). */
export const NFS_SERVER = "127.0.0.1";

/**
 * Exports every guest provides, each its own tmpfs, exported to 127.0.0.1 with
 * `sync,no_subtree_check,insecure,fsid=N`. Add more from a script with `mount -t tmpfs` + `exportfs -o`.
 */
export const EXPORTS = {
  /** rw, no_root_squash, empty, mode 0777. */
  data: "/exports/data",
  /** ro; holds `hello.txt` ("hello from the ro export\n"). */
  ro: "/exports/ro",
  /** rw but root_squash: root in the guest is nobody here, and the dir (root:root 0755) is not writable. */
  squash: "/exports/squash",
} as const;

/** The content of `${EXPORTS.ro}/hello.txt`. */
export const RO_HELLO = "hello from the ro export\n";

export const MARK = "volgate-guest:";

/**
 * Helpers every stage defines: a progress line, power off, and fail-with-reason. `off` waits with a
 * `sleep` that must not be read from a 9p share: the share goes away while the kernel powers off.
 */
const prelude = (sleep = "sleep") => `mount -t proc proc /proc
say() { read up _ < /proc/uptime; echo "${MARK} $up $*"; }
off() { sync; echo o > /proc/sysrq-trigger; ${sleep} 10; }
die() { say "SETUP FAILED: $*"; off; }`;
const PRELUDE = prelude();

/**
 * How a root stage reaches the host: `src` is where the host's `/` is visible (hostfs at `/` in
 * UML, 9p at /host in QEMU); `work` and `share` are shell commands mounting the work dir (rw) and
 * one share (ro, path in $1) at their host paths under $N.
 */
interface RootAccess {
  readonly src: string;
  readonly work: string;
  readonly share: string;
}

/** Build $N from the host root, mount the work dir and the shares into it. */
function buildRoot(dir: string, shares: readonly string[], access: RootAccess): string {
  return `W=${dir}
N=/mnt
S=${access.src}
# A tmpfs root holding read-only binds of the host's top-level directories.
mount -t tmpfs -o mode=0755 tmpfs $N || die "tmpfs root"
for p in $S/* $S/.[!.]*; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  name=\${p#$S/}
  case $name in
    proc|sys|dev|run|tmp|mnt|exports|host|lost+found) mkdir "$N/$name" ;;
    *) if [ -L "$p" ]; then ln -s "$(readlink "$p")" "$N/$name"
       elif [ -d "$p" ]; then mkdir "$N/$name" && mount --bind "$p" "$N/$name" || die "bind $p"
       fi ;;
  esac
done
chmod 1777 $N/tmp
mount -t tmpfs -o mode=1777 tmpfs $N/tmp || die "tmpfs /tmp"
mkdir -p "$N$W" && ${access.work} || die "work dir $W"
share() { mkdir -p "$N$1" && ${access.share} || die "share $1"; }
${shares.map((s) => `share ${s}`).join("\n")}`;
}

/** Stage one of a UML guest: the host's `/` is the hostfs root; hostfs mounts the work dir and shares. */
export function umlRootStage(dir: string, shares: readonly string[]): string {
  return `#!/bin/sh
# PID 1 of a volgate UML test guest, stage 1 (written by test/support/guest-init.ts).
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
${PRELUDE}
say init
${buildRoot(dir, shares, {
  src: "",
  work: `mount -t hostfs -o "rw,$W" none "$N$W"`,
  share: `mount -t hostfs -o "ro,$1" none "$N$1"`,
})}
mkdir $N/.oldroot && cd $N && pivot_root . .oldroot || die pivot_root
cd /
mount -t proc proc /proc
umount -l /.oldroot && rmdir /.oldroot
umount /proc
exec /bin/sh $W/nfs-stage.sh
`;
}

/** 9p over virtio: the host's `/` (read-only) and the work dir (read-write) are QEMU -virtfs tags. */
const NINE_P = "trans=virtio,version=9p2000.L,msize=512000";

/**
 * Stage one of a QEMU guest, the initramfs's /init under busybox: load the virtio and 9p modules
 * in the initramfs, mount the host's `/` at /host, build the root, switch_root into it.
 */
export function qemuRootStage(dir: string, shares: readonly string[], modules: readonly string[]): string {
  return `#!/bin/busybox sh
# PID 1 of a volgate QEMU test guest, stage 1 in the initramfs (written by test/support/guest-init.ts).
/bin/busybox --install -s /bin
PATH=/bin; export PATH
${PRELUDE}
say init
${modules.map((m) => `insmod /lib/${m} || die "insmod ${m}"`).join("\n")}
mount -t 9p -o ro,cache=loose,${NINE_P} hostroot /host || die "9p host root"
${buildRoot(dir, shares, {
  src: "/host",
  work: `mount -t 9p -o rw,cache=none,${NINE_P} work "$N$W"`,
  share: `mount --bind "$S$1" "$N$1"`,
})}
cp /bin/busybox $N/run/busybox || die "copy busybox"
umount /proc
exec switch_root $N /bin/sh $W/nfs-stage.sh
`;
}

interface NfsStage {
  /** Shell run first: makes `modroot`. */
  readonly modules: string;
  /** A dir whose lib/modules/<release> holds the running kernel's modules. */
  readonly modroot: string;
  /** The command `off` waits with. */
  readonly sleep?: string;
}

/** Stage two, on the new root as PID 1. */
export function nfsStage(dir: string, { modules, modroot, sleep }: NfsStage): string {
  return `#!/bin/sh
# PID 1 of a volgate test guest, stage 2 (written by test/support/guest-init.ts).
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
W=${dir}
${prelude(sleep)}
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname volgate-guest
say root

# Kernel modules, for explicit and on-demand loads.
${modules}
printf '#!/bin/sh\\nexec /sbin/modprobe -d ${modroot} "$@"\\n' > /run/modprobe && chmod 755 /run/modprobe
echo /run/modprobe > /proc/sys/kernel/modprobe
for m in nfsd nfsv3 nfsv4; do /run/modprobe $m || die "modprobe $m"; done
ip link set lo up || die "lo up"
say modules

# The NFS server.
mount -t tmpfs -o mode=0755 tmpfs /var/lib/nfs || die "tmpfs /var/lib/nfs"
mkdir -p /var/lib/nfs/sm /var/lib/nfs/sm.bak /var/lib/nfs/v4recovery /run/rpc_pipefs
: > /var/lib/nfs/etab; : > /var/lib/nfs/rmtab
mount -t rpc_pipefs sunrpc /run/rpc_pipefs || die rpc_pipefs
mount -t nfsd nfsd /proc/fs/nfsd || die "nfsd fs"
# nfsdcld: NFSv4 client tracking; with no client to reclaim, nfsd skips the grace period.
mkdir -p /var/lib/nfs/nfsdcld && nfsdcld || die nfsdcld
echo 10 > /proc/sys/fs/nfs/nlm_grace_period
mkdir -p ${EXPORTS.data} ${EXPORTS.ro} ${EXPORTS.squash}
mount -t tmpfs -o mode=0777 tmpfs ${EXPORTS.data} || die "tmpfs data"
mount -t tmpfs -o mode=0755 tmpfs ${EXPORTS.ro} || die "tmpfs ro"
printf '${RO_HELLO.replace("\n", "\\n")}' > ${EXPORTS.ro}/hello.txt
mount -t tmpfs -o mode=0755 tmpfs ${EXPORTS.squash} || die "tmpfs squash"
rpcbind || die rpcbind
say rpcbind
rpc.statd --no-notify || die rpc.statd
say statd
common=sync,no_subtree_check,insecure
exportfs -o rw,no_root_squash,$common,fsid=1 127.0.0.1:${EXPORTS.data} || die "export data"
exportfs -o ro,no_root_squash,$common,fsid=2 127.0.0.1:${EXPORTS.ro} || die "export ro"
exportfs -o rw,root_squash,$common,fsid=3 127.0.0.1:${EXPORTS.squash} || die "export squash"
say exportfs
rpc.mountd || die rpc.mountd
say mountd
rpc.nfsd -H 127.0.0.1 -G 10 -L 10 8 || die rpc.nfsd
say ready

# The script, in its own process group: its leftovers are killed when it ends, so tee sees EOF.
cd /
export HOME=/tmp LANG=C.UTF-8
mkfifo /run/output.fifo
tee "$W/output" < /run/output.fifo &
tee=$!
setsid sh "$W/script.sh" > /run/output.fifo 2>&1 < /dev/null &
job=$!
wait $job
code=$?
kill -KILL -$job 2>/dev/null
wait $tee
echo $code > "$W/status"
say done
off
`;
}

/** A UML boot probe's init: one more exec (UML on AMX hosts panics at the first), then power off. */
export function probeInit(): string {
  return `#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
${PRELUDE}
/bin/true && say probe-ok
off
`;
}
