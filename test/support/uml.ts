/**
 * A throwaway user-mode-linux guest with a real kernel NFS server and client, for the nfs tier.
 * The host kernel has no NFS client or nfsd; Debian's `linux` (UML 6.1) runs a Linux guest as
 * ordinary host processes in ~1.5 s.
 *
 * How the guest is built (all inside the guest, nothing on the host changes):
 * - Kernel command line: `mem=512M root=/dev/root rootfstype=hostfs rootflags=/ ro init=<dir>/init.sh
 *   con0=fd:0,fd:1 con=null ssl=null uml_dir=<dir> umid=<id> quiet`: the host's `/` through hostfs,
 *   read-only at the superblock; console 0 on the `linux` process's stdout, no other console or serial
 *   line (no host ptys); UML's pid/mconsole files in our temp dir, not ~/.uml. No ethN/vecN device:
 *   the guest's only network is its own loopback.
 * - nfsd cannot export hostfs (no file handles), and the NFSv4 pseudo root needs an exportable `/`,
 *   so init builds a tmpfs root: every top-level host directory bind-mounted at its own path (host
 *   paths such as /usr/bin/node or /work/... resolve unchanged; the binds share the read-only hostfs
 *   superblock), symlinks copied, then `pivot_root`. /tmp, /run, /var/lib/nfs and /exports/* are
 *   guest tmpfs.
 * - Modules come from /usr/lib/uml/modules/<ver> through `modprobe -d` (a tmpfs tree whose
 *   lib/modules points there), also installed as the kernel's modprobe for on-demand loads.
 * - nfsdcld, rpcbind, rpc.statd, exportfs, rpc.mountd, then `rpc.nfsd -H 127.0.0.1 -G 10 -L 10`:
 *   nfsd bound to 127.0.0.1 only (127.0.0.2:2049 refuses). With nfsdcld running and no client to
 *   reclaim, nfsd skips the NFSv4 grace period (without it nfsd waits 1 s for nfsdcld, then holds
 *   a 10 s grace); grace, lease and lockd grace are at the 10 s minimum anyway.
 * - The temp dir is shared read-write with hostfs at the same path; the script's output and exit
 *   code come back through it (and are echoed on the console, which streams live). `shares` are
 *   extra host directories made visible read-only at the same path (e.g. compiled code under /tmp,
 *   which the guest's own /tmp would hide). Then `sync` and a sysrq power-off.
 *
 * The guest runs as the host user (root): the host root is read-only to it, but a script that
 * remounted it read-write could write the host. Scripts here never do.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

/** Host tools a guest needs; pass to tierCanRun. */
export const UML_TOOLS = [
  "linux",
  "rpc.nfsd",
  "rpc.mountd",
  "rpcbind",
  "exportfs",
  "mount.nfs",
  "modprobe",
  "ip",
];

const MODULES_DIR = "/usr/lib/uml/modules";
const TMPFS_MAGIC = 0x01021994;

export interface GuestOptions {
  /** Shell commands, run as root in the guest (`sh -e` not implied) once NFS is up; cwd `/`, HOME=/tmp. */
  readonly script: string;
  /** Whole run, boot included; the guest is killed when it passes. */
  readonly timeoutMs: number;
  /** Host directories made visible read-only at the same path in the guest. */
  readonly shares?: readonly string[];
  /** Guest memory, MiB (default 512). */
  readonly memMb?: number;
  /** Console text as it arrives (boot stages, then the script's output), for live logs. */
  readonly onOutput?: (text: string) => void;
}

export interface GuestResult {
  /** The script's exit code. */
  readonly code: number;
  /** The script's stdout and stderr, exactly as written (read back through hostfs, not the tty). */
  readonly output: string;
  /** The whole console: kernel lines, setup stages, the script's output. */
  readonly console: string;
  /** Host wall time from spawning `linux` until the kernel ran our init. */
  readonly kernelMs: number;
  /** Host wall time from spawning `linux` until NFS was serving (the script starts then). */
  readonly readyMs: number;
  /** Host wall time from spawning `linux` until the guest was gone. */
  readonly totalMs: number;
}

const MARK = "volgate-uml:";
const READY = new RegExp(`${MARK} [0-9.]+ ready\n`);
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;

function initScript(dir: string, shares: readonly string[]): string {
  return `#!/bin/sh
# PID 1 of a volgate test guest (written by test/support/uml.ts).
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
W=${dir}
N=/mnt
mount -t proc proc /proc
say() { read up _ < /proc/uptime; echo "${MARK} $up $*"; }
off() { sync; echo o > /proc/sysrq-trigger; sleep 10; }
die() { say "SETUP FAILED: $*"; off; }
say init

# A tmpfs root holding read-only binds of the host's top-level directories.
mount -t tmpfs -o mode=0755 tmpfs $N || die "tmpfs root"
for p in /* /.[!.]*; do
  [ -e "$p" ] || [ -L "$p" ] || continue
  name=\${p#/}
  case $name in
    proc|sys|dev|run|tmp|mnt|exports|lost+found) mkdir "$N/$name" ;;
    *) if [ -L "$p" ]; then ln -s "$(readlink "$p")" "$N/$name"
       elif [ -d "$p" ]; then mkdir "$N/$name" && mount --bind "$p" "$N/$name" || die "bind $p"
       fi ;;
  esac
done
chmod 1777 $N/tmp
mount -t tmpfs -o mode=1777 tmpfs $N/tmp || die "tmpfs /tmp"
share() { [ -d "$N$1" ] || mkdir -p "$N$1"; mount -t hostfs -o "$2,$1" none "$N$1" || die "hostfs $1"; }
share "$W" rw
${shares.map((s) => `share ${s} ro`).join("\n")}
mkdir $N/.oldroot && cd $N && pivot_root . .oldroot || die pivot_root
cd /
mount -t proc proc /proc
umount -l /.oldroot && rmdir /.oldroot
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
hostname volgate-guest
say root

# Kernel modules from the UML package, for explicit and on-demand loads.
mkdir -p /run/modroot/lib && ln -s ${MODULES_DIR} /run/modroot/lib/modules
printf '#!/bin/sh\\nexec /sbin/modprobe -d /run/modroot "$@"\\n' > /run/modprobe && chmod 755 /run/modprobe
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
mkdir -p /exports/data /exports/ro /exports/squash
mount -t tmpfs -o mode=0777 tmpfs /exports/data || die "tmpfs data"
mount -t tmpfs -o mode=0755 tmpfs /exports/ro || die "tmpfs ro"
printf '${RO_HELLO.replace("\n", "\\n")}' > /exports/ro/hello.txt
mount -t tmpfs -o mode=0755 tmpfs /exports/squash || die "tmpfs squash"
rpcbind || die rpcbind
say rpcbind
rpc.statd --no-notify || die rpc.statd
say statd
common=sync,no_subtree_check,insecure
exportfs -o rw,no_root_squash,$common,fsid=1 127.0.0.1:/exports/data || die "export data"
exportfs -o ro,no_root_squash,$common,fsid=2 127.0.0.1:/exports/ro || die "export ro"
exportfs -o rw,root_squash,$common,fsid=3 127.0.0.1:/exports/squash || die "export squash"
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

/**
 * Where UML keeps the guest's memory file (sparse, unlinked): /dev/shm when it can hold all of it,
 * else our temp dir. A /dev/shm smaller than the guest (Docker's default is 64 MB) kills it with SIGBUS.
 */
async function memoryDir(fallback: string, memMb: number): Promise<string> {
  const shm = await statfs("/dev/shm").catch(() => undefined);
  return shm && shm.type === TMPFS_MAGIC && shm.bavail * shm.bsize >= memMb * 2 ** 20 ? "/dev/shm" : fallback;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** UML's host processes are ptrace-stopped children: they go a moment after the group is killed. */
async function waitGroupGone(pid: number, timeoutMs = 5000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pid, 0);
    } catch {
      return true;
    }
    if (Date.now() > until) return false;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

/**
 * Boot a guest, bring NFS up, run `script`, power off. Resolves with the script's exit code and
 * output; rejects when setup fails, the guest dies early, or the timeout passes (the guest is
 * killed, the console tail is in the message). Leaves no process and no file behind.
 */
export async function runInGuest(options: GuestOptions): Promise<GuestResult> {
  const shares = options.shares ?? [];
  for (const path of [tmpdir(), ...shares]) {
    if (!SAFE_PATH.test(path)) {
      throw new Error(`uml: path ${path} has characters the guest init cannot quote`);
    }
  }
  const memMb = options.memMb ?? 512;
  const dir = await mkdtemp(join(tmpdir(), "volgate-uml-"));
  await writeFile(join(dir, "init.sh"), initScript(dir, shares));
  await chmod(join(dir, "init.sh"), 0o755);
  await writeFile(join(dir, "script.sh"), options.script);
  const umid = `volgate-${process.pid}-${Date.now().toString(36)}`;
  const args = [
    `mem=${memMb}M`,
    "root=/dev/root",
    "rootfstype=hostfs",
    "rootflags=/",
    "ro",
    `init=${join(dir, "init.sh")}`,
    "con0=fd:0,fd:1",
    "con=null",
    "ssl=null",
    `uml_dir=${dir}`,
    `umid=${umid}`,
    "quiet",
  ];
  const started = Date.now();
  let kernelMs = -1;
  let readyMs = -1;
  let consoleText = "";
  const env = { ...process.env, TMPDIR: await memoryDir(dir, memMb) };
  const child = spawn("linux", args, { cwd: dir, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of live) killGroup(c);
    });
  }
  const onData = (d: Buffer) => {
    const text = d.toString().replace(/\r/g, "");
    consoleText += text;
    if (kernelMs < 0 && consoleText.includes(`${MARK} `)) kernelMs = Date.now() - started;
    if (readyMs < 0 && READY.test(consoleText)) readyMs = Date.now() - started;
    options.onOutput?.(text);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, options.timeoutMs);
  try {
    const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve({ code, signal }));
    });
    const totalMs = Date.now() - started;
    if (timedOut) {
      throw new Error(
        `uml guest ${umid} (${dir}) did not finish within ${options.timeoutMs} ms and was killed; console:\n${tail(consoleText)}`,
      );
    }
    const failed = /SETUP FAILED: (.*)/.exec(consoleText);
    if (failed) throw new Error(`uml guest setup failed (${failed[1]}); console:\n${tail(consoleText)}`);
    const status = await readFile(join(dir, "status"), "utf8").catch(() => undefined);
    if (status === undefined) {
      throw new Error(
        `uml guest ended (exit ${exit.code ?? exit.signal}) without finishing the script; console:\n${tail(consoleText)}`,
      );
    }
    const output = await readFile(join(dir, "output"), "utf8");
    return { code: Number(status.trim()), output, console: consoleText, kernelMs, readyMs, totalMs };
  } finally {
    clearTimeout(timer);
    killGroup(child);
    if (child.pid !== undefined) await waitGroupGone(child.pid);
    live.delete(child);
    await rm(dir, { recursive: true, force: true });
  }
}
