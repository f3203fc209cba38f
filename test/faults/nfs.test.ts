/**
 * Fault: the kernel NFS server stopped (rpc.nfsd 0) for 15 s in a guest (the host kernel has no
 * nfsd), with the daemon running in the guest, an NFS volume mounted and a process writing to it
 * every second; meanwhile an sshfs volume on the guest's own sshd makes its round and a Create on
 * the stopped server is refused. Then nfsd starts again: the next Mount works, Status is ok, the
 * writes land again, and nothing was lost. The guest script is nfs-guest.mjs.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { parseMountInfo } from "../../src/mountinfo.ts";
import { readState } from "../../src/state/load.ts";
import { EXPORTS, guestTierCanRun, NFS_SERVER, pickGuest } from "../support/guest.ts";
import { tierCanRun } from "../support/prereq.ts";
import { ensureTestUser, TEST_USER } from "../support/sshd.ts";
import { SHIPPED_NODE_FLAGS } from "../support/volgate.ts";
import { report } from "./lib/figures.ts";
import { lostIn, type View } from "./lib/lost.ts";
import { percentile } from "./lib/sampler.ts";

const canRun =
  guestTierCanRun("faults (nfs)") && tierCanRun("faults (nfs, sshd in the guest)", ["sshd", "sshfs"]);
const guest = canRun ? await pickGuest() : undefined;
const SCALE = guest?.timeScale ?? 1;
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const DOWN_MS = 15_000;
/**
 * After nfsd starts again the client reconnects and reclaims its state within nfsd's grace period
 * (the guest runs it with -G 10): 10 s, a health tick (1 s) and a probe (2 s) on top, and room for
 * the guest's slowness (QEMU: SCALE).
 */
const RECOVERY_BOUND_MS = 25_000 * SCALE;

// biome-ignore lint/suspicious/noExplicitAny: the guest's JSON, checked field by field below
type Step = Record<string, any>;

/** A View (lost.ts) from what the guest reported: its state files are read back here. */
async function viewOf(reported: Step, dir: string): Promise<View> {
  const stateDir = await mkdtemp(join(dir, "state-"));
  for (const [name, text] of Object.entries(reported.files as Record<string, string>)) {
    await writeFile(join(stateDir, name), text);
  }
  const state = await readState(stateDir).then(
    (m) => ({ volumes: [...m.values()] }),
    (err: unknown) => new Error(String(err)),
  );
  return {
    root: reported.root,
    state,
    listed: new Set(reported.listed),
    mounts: parseMountInfo(reported.mountinfo),
    processes: reported.processes,
    workFiles: reported.workFiles,
  };
}

describe.runIf(guest)("fault: the NFS server stopped in the guest", () => {
  let dir = "";
  afterAll(async () => {
    if (dir !== "") await rm(dir, { recursive: true, force: true });
  });

  it("keeps Get, List and another volume working, and recovers when nfsd is back", async () => {
    if (!guest) throw new Error("no guest");
    await ensureTestUser();
    dir = await mkdtemp(join(tmpdir(), "volgate-faults-nfs-"));
    const config = join(dir, "config.json");
    await writeFile(
      config,
      JSON.stringify({
        bundle: join(REPO, "dist", "bundle"),
        nodeFlags: SHIPPED_NODE_FLAGS,
        scale: SCALE,
        downMs: DOWN_MS,
        user: TEST_USER,
        nfsServer: NFS_SERVER,
        exportDir: EXPORTS.data,
      }),
    );
    const script = join(REPO, "test", "faults", "nfs-guest.mjs");
    const run = await guest.run({
      script: `exec ${process.execPath} ${script} ${config}\n`,
      // The guest's /tmp is its own: the config's dir, and a checkout under /tmp, are shared.
      shares: REPO.startsWith(`${tmpdir()}/`) ? [dir, REPO] : [dir],
      timeoutMs: 240_000 * SCALE,
    });
    const steps = new Map<string, Step>();
    for (const line of run.output.split("\n")) {
      if (line.startsWith("RESULT ")) {
        const r = JSON.parse(line.slice(7)) as Step;
        steps.set(r.name, r);
      }
    }
    const step = (name: string): Step => {
      const s = steps.get(name);
      expect(
        s,
        `the guest printed no ${name}; ${steps.get("error")?.error ?? ""}\n${run.output.slice(-3000)}`,
      ).toBeDefined();
      return s as Step;
    };
    const setup = step("setup");
    const down = step("down");
    const back = step("back");
    const seen = step("view");
    const cleanup = step("cleanup");
    const lost = lostIn(await viewOf(seen, dir), ["nfs-used"]);
    const leftover = lostIn(await viewOf(cleanup.view, dir), []);
    const other = down.other.ok
      ? `ok (create/mount/write/unmount/remove of an sshfs volume in ${down.other.ms} ms)`
      : `failed: ${JSON.stringify(down.other)}`;
    report({
      scenario: "nfs-server-stopped",
      getP99: percentile(down.sampled.gets, 0.99),
      listP99: percentile(down.sampled.lists, 0.99),
      others: other,
      status: `${down.during.health}: ${down.during.lastError ?? ""}`,
      recoveredMs: Math.max(back.mountMs, back.writerMs ?? Number.POSITIVE_INFINITY),
      lost: [...lost, ...leftover.map((l) => `after cleanup: ${l}`)],
      notes:
        `${guest.name} guest, whole run ${run.totalMs} ms; stopped ${DOWN_MS / 1000} s, Status stale after ` +
        `${down.staleMs} ms; a Create on the stopped server: ${down.refused.status} in ${down.refused.ms} ms ` +
        `(${down.refused.json?.Err}); after nfsd was back: Mount ${back.mountMs} ms, Status ok after ${back.statusMs} ms, ` +
        `the writer's file on the server again after ${back.writerMs} ms`,
    });
    expect(steps.get("error")).toBeUndefined();
    expect(setup).toMatchObject({ created: { status: 200 }, mounted: { status: 200 }, ticking: true });
    expect(setup.before.health).toBe("ok");
    expect(down.during).toMatchObject({ mounted: true, health: "stale" });
    expect(down.other.ok, JSON.stringify(down.other)).toBe(true);
    expect(down.refused.status).toBe(500);
    expect(down.refused.json.Err).toMatch(/^cannot reach NFS server/);
    expect(down.sampled.failures).toEqual([]);
    expect(back.sampled.failures).toEqual([]);
    expect(Math.max(...down.sampled.gets, ...down.sampled.lists)).toBeLessThan(1000 * SCALE);
    expect(back.mount.status, back.mount.text).toBe(200);
    expect(back.mountMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(back.statusMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(back.writerMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(lost).toEqual([]);
    expect(cleanup.answers.map((a: [number, string]) => a[0])).toEqual([200, 200, 200]);
    expect(cleanup.left).toEqual([]);
    expect(leftover).toEqual([]);
  });
});
