/**
 * The user-mode-linux guest: Debian's `linux` (UML 6.1) runs a Linux guest as ordinary host
 * processes, booting in ~1.5 s. It does not boot everywhere: on hosts whose CPU has AMX it panics at
 * its first exec (`ptrace set fp regs failed`), so guest.ts probes it first (probeUml).
 *
 * Kernel command line: `mem=512M root=/dev/root rootfstype=hostfs rootflags=/ ro init=<dir>/init.sh
 * con0=fd:0,fd:1 con=null ssl=null uml_dir=<dir> umid=<id> quiet`: the host's `/` through hostfs,
 * read-only at the superblock; console 0 on the `linux` process's stdout, no other console or serial
 * line (no host ptys); UML's pid/mconsole files in our temp dir, not ~/.uml. No ethN/vecN device: the
 * guest's only network is its own loopback. The work dir and the shares are hostfs mounts at their
 * host paths; modules come from /usr/lib/uml/modules/<ver>.
 */
import { chmod, mkdtemp, rm, statfs, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MARK, nfsStage, probeInit, umlRootStage } from "./guest-init.ts";
import { boot, type GuestKind, type GuestOptions, type Launch, tail } from "./guest-process.ts";

/** Host tools the UML guest needs besides the NFS ones. */
export const UML_TOOLS = ["linux"];

const MODULES_DIR = "/usr/lib/uml/modules";
const TMPFS_MAGIC = 0x01021994;

/**
 * Where UML keeps the guest's memory file (sparse, unlinked): /dev/shm when it can hold all of it,
 * else our temp dir. A /dev/shm smaller than the guest (Docker's default is 64 MB) kills it with SIGBUS.
 */
async function memoryDir(fallback: string, memMb: number): Promise<string> {
  const shm = await statfs("/dev/shm").catch(() => undefined);
  return shm && shm.type === TMPFS_MAGIC && shm.bavail * shm.bsize >= memMb * 2 ** 20 ? "/dev/shm" : fallback;
}

async function launch(dir: string, id: string, init: string, memMb: number): Promise<Launch> {
  await writeFile(join(dir, "init.sh"), init);
  await chmod(join(dir, "init.sh"), 0o755);
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
    `umid=${id}`,
    "quiet",
  ];
  return { command: "linux", args, env: { ...process.env, TMPDIR: await memoryDir(dir, memMb) } };
}

export const uml: GuestKind = {
  name: "uml",
  async prepare(dir: string, id: string, options: GuestOptions): Promise<Launch> {
    const modules = `mkdir -p /run/modroot/lib && ln -s ${MODULES_DIR} /run/modroot/lib/modules`;
    await writeFile(join(dir, "nfs-stage.sh"), nfsStage(dir, { modules, modroot: "/run/modroot" }));
    return launch(dir, id, umlRootStage(dir, options.shares ?? []), options.memMb ?? 512);
  },
};

/** Whether UML boots here: a tiny guest that execs once and powers off (~1 s). */
export async function probeUml(): Promise<{ ok: true } | { ok: false; reason: string }> {
  const dir = await mkdtemp(join(tmpdir(), "volgate-uml-probe-"));
  try {
    const run = await boot(await launch(dir, `volgate-probe-${process.pid}`, probeInit(), 64), dir, 20_000);
    if (new RegExp(`${MARK} [0-9.]+ probe-ok`).test(run.console)) return { ok: true };
    const panic = run.console.split("\n").filter((line) => /ptrace|panic/i.test(line));
    if (panic.length > 0) return { ok: false, reason: panic.slice(0, 2).join("; ").trim() };
    const why = run.timedOut ? "no answer within 20 s" : `exit ${run.exit}: ${tail(run.console, 3).trim()}`;
    return { ok: false, reason: why };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
