/**
 * A throwaway Linux guest with a real kernel NFS server and client, for the nfs tier: the host
 * kernel has neither. Two kinds run the same init (guest-init.ts):
 * - uml (uml.ts): Debian's user-mode-linux 6.1, ~2 s to NFS serving; it panics at its first exec
 *   on hosts whose CPU has AMX;
 * - qemu-tcg (qemu.ts): Debian's stock kernel under QEMU's software emulation, host `/` over 9p;
 *   boots everywhere, and everything in it runs several times slower.
 * VOLGATE_TEST_GUEST=uml|qemu forces one; auto (the default) boots a tiny UML probe once per test
 * file and takes QEMU where UML does not boot. The choice is printed (`nfs tier: guest=...`).
 *
 * In both, the guest's root is a tmpfs holding read-only binds of the host's top-level directories
 * (host paths such as /usr/bin/node or /work/... resolve unchanged); /tmp, /run, /var/lib/nfs and
 * /exports/* are guest tmpfs (nfsd cannot export hostfs or 9p). The run's temp dir is shared
 * read-write at the same path: the script's output and exit code come back through it. `shares`
 * are extra host directories made visible read-only at the same path (e.g. compiled code under
 * /tmp, which the guest's own /tmp would hide). NFS: nfsdcld, rpcbind, rpc.statd, exportfs,
 * rpc.mountd, then `rpc.nfsd -H 127.0.0.1 -G 10 -L 10`: nfsd bound to 127.0.0.1 only; with nfsdcld
 * running and no client to reclaim, nfsd skips the NFSv4 grace period. The guest has no network
 * device but its loopback. It runs as root: the host root is read-only to it (hostfs superblock /
 * 9p share), but a UML script that remounted hostfs read-write could write the host. Scripts here never do.
 */

import { type GuestKind, type GuestOptions, type GuestResult, runGuest } from "./guest-process.ts";
import { tierCanRun } from "./prereq.ts";
import { QEMU_TOOLS, qemu, qemuKernel } from "./qemu.ts";
import { probeUml, UML_TOOLS, uml } from "./uml.ts";

export { EXPORTS, NFS_SERVER, RO_HELLO } from "./guest-init.ts";
export type { GuestResult } from "./guest-process.ts";

/** Host tools every guest kind runs inside (the host's own binaries, seen through the shared root). */
const NFS_TOOLS = ["rpc.nfsd", "rpc.mountd", "rpcbind", "exportfs", "mount.nfs", "modprobe", "ip"];

type Wanted = "uml" | "qemu" | "auto";

function wanted(): Wanted {
  const value = process.env.VOLGATE_TEST_GUEST ?? "auto";
  if (value === "uml" || value === "qemu" || value === "auto") return value;
  throw new Error(`VOLGATE_TEST_GUEST=${value}: use uml, qemu or auto`);
}

/**
 * Whether the nfs tier can run with the guest VOLGATE_TEST_GUEST asks for (tierCanRun: throws under
 * CI when it cannot). auto needs both kinds installed, so CI proves the fallback is there on every host.
 */
export function guestTierCanRun(tier: string): boolean {
  const w = wanted();
  const tools = [...NFS_TOOLS, ...(w === "qemu" ? [] : UML_TOOLS), ...(w === "uml" ? [] : QEMU_TOOLS)];
  const kernel = w === "uml" ? undefined : qemuKernel();
  return tierCanRun(`${tier} (guest=${w})`, tools, typeof kernel === "string" ? [kernel] : []);
}

export interface Guest {
  readonly name: string;
  /**
   * How much slower than UML things run in this guest (measured: boot, node start, mounts); host-side
   * timeouts and in-guest deadlines are multiplied by it, assertions stay the same.
   */
  readonly timeScale: number;
  run(options: GuestOptions): Promise<GuestResult>;
}

/** Measured: boot 3-4x, node start ~4x, NFS operations 2-3x, a whole guest run ~2.5x UML's time. */
const QEMU_SCALE = 3;

function guest(kind: GuestKind, timeScale: number): Guest {
  return { name: kind.name, timeScale, run: (options) => runGuest(kind, options) };
}

/** Which guest `w` means here, and why: auto boots the UML probe and takes QEMU when it fails. */
export async function chooseGuest(w: Wanted = wanted()): Promise<{ guest: Guest; why: string }> {
  if (w === "uml") return { guest: guest(uml, 1), why: "VOLGATE_TEST_GUEST=uml" };
  if (w === "qemu") return { guest: guest(qemu, QEMU_SCALE), why: "VOLGATE_TEST_GUEST=qemu" };
  const started = Date.now();
  const probe = await probeUml();
  const ms = Date.now() - started;
  if (probe.ok) return { guest: guest(uml, 1), why: `uml probe booted in ${ms} ms` };
  return { guest: guest(qemu, QEMU_SCALE), why: `uml probe failed in ${ms} ms: ${probe.reason}` };
}

let chosen: Promise<Guest> | undefined;

/** The guest this test file runs in (probed once per file; printed for the test log). */
export function pickGuest(): Promise<Guest> {
  chosen ??= chooseGuest().then(({ guest, why }) => {
    console.log(`nfs tier: guest=${guest.name} (${why})`);
    return guest;
  });
  return chosen;
}
