/**
 * Fault: the state dir on a small tmpfs of its own (VOLGATE_STATE_DIR; the work dir is in it too)
 * filled up while the daemon runs, then made read-only while it is stopped and started on it.
 * Every change (Create, Mount, Unmount, Remove) must fail with the reason, Get and List keep
 * answering, nothing changes (on disk, in List and Status, on the machine); once the disk is
 * fixed, changes work again at once.
 */
import { existsSync } from "node:fs";
import { mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Answer, call } from "../support/client.ts";
import { mountsUnder, run } from "../support/dockerd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { eventually } from "../support/procs.ts";
import { SHIPPED_NODE_FLAGS, startVolgate, type Volgate } from "../support/volgate.ts";
import { report } from "./lib/figures.ts";
import { cleanUp, helpersUnder, whatWasLost } from "./lib/lost.ts";
import { type SshPeer, sshPeer } from "./lib/peers.ts";
import { type Sampled, sample } from "./lib/sampler.ts";

const extra = [
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
  ...(process.getuid?.() === 0 ? [] : ["root"]),
];
const canRun = tierCanRun("faults (state disk)", ["sshd", "sshfs", "mount"], extra);

/** Spare volumes whose removal fills the journal's last page: their lines are the shortest there are. */
const SPARES = ["z1", "z2", "z3", "z4"];

const ask = (v: Volgate, path: string, body: object): Promise<Answer> =>
  call(v.socket, path, body, { signal: AbortSignal.timeout(30_000) });

/** Fill the file system at `dir` until it takes no byte more. */
async function fill(dir: string): Promise<void> {
  const file = await open(join(dir, "filler"), "w");
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const block = Buffer.alloc(size, 0x66);
      for (;;) {
        const done = await file.write(block).then(
          () => false,
          () => true,
        );
        if (done) break;
      }
    }
  } finally {
    await file.close().catch(() => {});
  }
}

describe.runIf(canRun)("fault: the state dir full, then read-only", () => {
  let v: Volgate;
  let peer: SshPeer;
  let disk = "";

  beforeAll(async () => {
    disk = await mkdtemp(join(tmpdir(), "volgate-faults-state-"));
    const mounted = await run("mount", ["-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", disk]);
    expect(mounted.code, mounted.stderr).toBe(0);
    v = await startVolgate({
      stateDir: disk,
      env: { VOLGATE_HEALTH_INTERVAL: "1" },
      nodeFlags: SHIPPED_NODE_FLAGS,
    });
    peer = await sshPeer(v, "disk");
    for (const name of ["sd-mounted", "sd-idle", ...SPARES]) {
      expect(
        (await ask(v, "/VolumeDriver.Create", { Name: name, Opts: await peer.options(name) })).json,
      ).toEqual({});
    }
    const mount = await ask(v, "/VolumeDriver.Mount", { Name: "sd-mounted", ID: "m1" });
    await writeFile(join(mount.json.Mountpoint, "kept.txt"), "kept\n");
  });

  afterAll(async () => {
    await run("mount", ["-o", "remount,rw", disk]);
    if (v?.running()) await cleanUp(v);
    await v?.stop();
    await peer?.stop();
    if (disk !== "") {
      await run("umount", ["-l", disk]);
      await rm(disk, { recursive: true, force: true });
    }
  });

  /**
   * The state is one for all volumes, so no other volume can change either: what must keep working
   * is the data path of a volume that is mounted (written here, read back on the server).
   */
  async function dataPath(name: string): Promise<string> {
    const mountpoint = join(v.root, "volumes", name);
    if (!(await mountsUnder(mountpoint)).includes(mountpoint)) return "none mounted; changes refused";
    const text = `written while the state dir could not be ${new Date().toISOString()}\n`;
    await writeFile(join(mountpoint, "during.txt"), text);
    const onServer = await readFile(join(peer.remote, name, "during.txt"), "utf8");
    return onServer === text
      ? "mounted one ok (write/read); changes refused"
      : `mounted one broken: ${onServer}`;
  }

  /** Create, Mount, Unmount, Remove: each must fail with `reason`, and change nothing. */
  async function everyChangeFails(reason: RegExp, known: readonly string[]) {
    const before = { state: await v.state(), list: (await ask(v, "/VolumeDriver.List", {})).json };
    const sampler = sample(v.socket, known);
    const opts = await peer.options("sd-new");
    const answers = {
      create: await ask(v, "/VolumeDriver.Create", { Name: "sd-new", Opts: opts }),
      mount: await ask(v, "/VolumeDriver.Mount", { Name: "sd-idle", ID: "m2" }),
      unmount: await ask(v, "/VolumeDriver.Unmount", { Name: "sd-mounted", ID: "m1" }),
      remove: await ask(v, "/VolumeDriver.Remove", { Name: "sd-idle" }),
    };
    const others = await dataPath("sd-mounted");
    const during = await sampler.stop();
    for (const [what, answer] of Object.entries(answers)) {
      expect(answer.status, `${what}: ${answer.text}`).toBe(500);
      expect(answer.json.Err, what).toMatch(reason);
    }
    expect(await v.state()).toEqual(before.state);
    expect((await ask(v, "/VolumeDriver.List", {})).json).toEqual(before.list);
    const status = (await ask(v, "/VolumeDriver.Get", { Name: "sd-mounted" })).json.Volume.Status;
    expect(status).toMatchObject({ mounted: true, mounts: 1 });
    expect(during.failures).toEqual([]);
    return { during, others, err: String(answers.mount.json.Err), status };
  }

  /** Milliseconds until a Mount of sd-idle works again after the disk was fixed; unmounted again. */
  async function changesWorkAgain(): Promise<number> {
    const fixed = performance.now();
    const mount = await ask(v, "/VolumeDriver.Mount", { Name: "sd-idle", ID: "again" });
    const ms = performance.now() - fixed;
    expect(mount.status, mount.text).toBe(200);
    expect((await ask(v, "/VolumeDriver.Unmount", { Name: "sd-idle", ID: "again" })).json).toEqual({});
    return ms;
  }

  const figures = (
    scenario: string,
    f: { during: Sampled; others: string; err: string; status: { health: string } },
    ms: number,
    lost: string[],
    notes: string,
  ) =>
    report({
      scenario,
      getP99: f.during.getP99,
      listP99: f.during.listP99,
      others: f.others,
      status: `${f.status.health}; every change: ${f.err.replace(disk, "<dir>")}`,
      recoveredMs: ms,
      lost,
      notes,
    });

  it("full: every change fails with the reason and changes nothing; changes work once space is freed", async () => {
    await fill(disk);
    // The journal's last page may still take some lines: Mount and Unmount with a spare ID until one
    // fails, then remove spare volumes (the shortest line there is) until that fails too; after
    // that no change fits.
    let fitted = 0;
    let extraMounted = false;
    for (let i = 0; i < 200; i++) {
      const path = extraMounted ? "/VolumeDriver.Unmount" : "/VolumeDriver.Mount";
      const answer = await ask(v, path, { Name: "sd-mounted", ID: "w" });
      if (answer.status !== 200) break;
      extraMounted = !extraMounted;
      fitted++;
    }
    let removed = 0;
    let refused: Answer | undefined;
    for (const spare of SPARES) {
      const answer = await ask(v, "/VolumeDriver.Remove", { Name: spare });
      if (answer.status !== 200) {
        refused = answer;
        break;
      }
      removed++;
    }
    expect(refused?.json?.Err, "the journal's last page never filled up").toMatch(/ENOSPC/);
    const known = ["sd-mounted", "sd-idle", ...SPARES.slice(removed)];
    const result = await everyChangeFails(/ENOSPC: the disk is full/, known);
    await rm(join(disk, "filler"));
    const ms = await changesWorkAgain();
    if (extraMounted)
      expect((await ask(v, "/VolumeDriver.Unmount", { Name: "sd-mounted", ID: "w" })).json).toEqual({});
    const lost = await whatWasLost(v, known);
    figures(
      "state-dir-full",
      result,
      ms,
      lost,
      `${fitted} mount count changes and ${removed} removals still fitted the journal's last page`,
    );
    expect(lost).toEqual([]);
  });

  it("read-only: the daemon starts on it, every change fails with the reason; changes work once writable", async () => {
    const known = (await v.state()).volumes.map((r) => r.name);
    await v.kill("SIGTERM");
    // As after a reboot: nothing mounted any more (a helper's log open in the work dir would also
    // keep the file system from going read-only), the state says sd-mounted is mounted.
    for (const mp of await mountsUnder(v.root)) await run("umount", ["-l", mp]);
    expect(await eventually(async () => (await helpersUnder(v.root)).size === 0, 10_000)).toBe(true);
    const remounted = await run("mount", ["-o", "remount,ro", disk]);
    expect(remounted.code, remounted.stderr).toBe(0);
    const startMs = await v.restart();
    await v.waitForLog((l) => l.msg === "reconciled mounts after start", 30_000);
    const result = await everyChangeFails(/EROFS: the file system is read-only/, known);
    await run("mount", ["-o", "remount,rw", disk]);
    const ms = await changesWorkAgain();
    // The next Mount of the volume the reboot took down brings it back.
    const again = await ask(v, "/VolumeDriver.Mount", { Name: "sd-mounted", ID: "m3" });
    expect(again.status, again.text).toBe(200);
    const lost = await whatWasLost(v, known);
    figures(
      "state-dir-read-only",
      result,
      ms,
      lost,
      `started on the read-only dir in ${startMs} ms; Status of the volume the reboot took down: ` +
        JSON.stringify(result.status),
    );
    expect(lost).toEqual([]);
    expect(await cleanUp(v)).toEqual([]);
  });
});
