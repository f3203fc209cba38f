/**
 * Fault: kill -9 of the daemon in the middle of a 1,000-operation storm through real sshfs (eight
 * clients, 24 volumes on two sshds, one with a key and one with a password; Create, Mount, Unmount
 * and Remove mixed, IDs repeated as Docker repeats them), then a restart, and the rest of the
 * storm. After the restart and at the end: the state reads back, every volume that got a 200 for
 * Create and none for Remove is listed, every mount count is what the answers said (a request the
 * kill left unanswered may have happened or not, nothing else), no sshfs helper or mount is left
 * without a counted mount, no secret file; a volume mounted before the storm lives through it.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../support/client.ts";
import { tierCanRun } from "../support/prereq.ts";
import { SHIPPED_NODE_FLAGS, startVolgate, type Volgate } from "../support/volgate.ts";
import { report } from "./lib/figures.ts";
import { prng } from "./lib/fuzz.ts";
import { cleanUp, helpersUnder, whatWasLost } from "./lib/lost.ts";
import { type SshPeer, sshPeer } from "./lib/peers.ts";
import { merged, sample } from "./lib/sampler.ts";
import { applied, nextOp, settle, type Volume } from "./lib/storm-model.ts";

const canRun = tierCanRun("faults (storm)", ["sshd", "sshfs"], existsSync("/dev/fuse") ? [] : ["/dev/fuse"]);

const OPERATIONS = 1000;
const KILL_AFTER = 500;
const CLIENTS = 8;
const VOLUMES_EACH = 3;
const SEED = Number(process.env.VOLGATE_STORM_SEED ?? 7);

describe.runIf(canRun)("fault: kill -9 during a storm", () => {
  let v: Volgate;
  let peers: SshPeer[];

  beforeAll(async () => {
    v = await startVolgate({ env: { VOLGATE_HEALTH_INTERVAL: "1" }, nodeFlags: SHIPPED_NODE_FLAGS });
    peers = [await sshPeer(v, "storm-key"), await sshPeer(v, "storm-pw", "password")];
    const anchor = await call(v.socket, "/VolumeDriver.Create", {
      Name: "st-anchor",
      Opts: await peers[0]?.options("st-anchor"),
    });
    expect(anchor.json).toEqual({});
    const mounted = await call(v.socket, "/VolumeDriver.Mount", { Name: "st-anchor", ID: "anchor" });
    await writeFile(join(mounted.json.Mountpoint, "anchor.txt"), "lives through the storm\n");
  });

  afterAll(async () => {
    if (v?.running()) await cleanUp(v);
    await v?.stop();
    for (const p of peers ?? []) await p.stop();
  });

  it("loses nothing the storm was answered, and leaves no helper or secret behind", async () => {
    const volumes: Volume[][] = [];
    const options = new Map<string, Record<string, string>>();
    for (let c = 0; c < CLIENTS; c++) {
      volumes.push([]);
      for (let k = 0; k < VOLUMES_EACH; k++) {
        const name = `st-${c}-${k}`;
        // One sshfs connection per client and server (the keepalive interval is part of its key): a
        // client's last unmount takes its helper down, its next mount starts one.
        const own = { ServerAliveInterval: String(10 + c) };
        options.set(name, { ...(await peers[(c + k) % 2]?.options(name)), ...own });
        volumes[c]?.push({ name, known: { exists: false, counts: {} } });
      }
    }
    const all = volumes.flat();
    const known = () => ["st-anchor", ...all.filter((x) => x.known.exists).map((x) => x.name)];
    const answers = new Map<string, number>();
    let issued = 0;
    let answered = 0;
    let inFlight = 0;
    let unanswered = 0;
    let down: Promise<void> | undefined;
    let killed: Promise<void> | undefined;
    let before = sample(v.socket, ["st-anchor"]);
    const checks: Record<string, string[]> = {};
    const figures = {
      recoveredMs: 0,
      listenMs: 0,
      reconcile: "",
      settledApplied: 0,
      settledNot: 0,
      helpersAtKill: 0,
      helpersAfter: 0,
    };

    /** Kill -9 with requests in flight, wait for them to fail, start again, check everything. */
    const killAndRestart = async () => {
      let reopen = () => {};
      down = new Promise<void>((r) => {
        reopen = r;
      });
      const sampledBefore = await before.stop();
      const killedAt = performance.now();
      await v.kill("SIGKILL");
      while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
      figures.helpersAtKill = (await helpersUnder(v.root)).size;
      const from = v.logs().length;
      figures.listenMs = await v.restart();
      const reconciled = await v.waitForLog(
        (l) => l.msg === "reconciled mounts after start" && v.logs().indexOf(l) >= from,
        60_000,
      );
      figures.recoveredMs = performance.now() - killedAt;
      figures.reconcile = JSON.stringify({
        adopted: reconciled.adopted,
        remounted: reconciled.remounted,
        cleaned: reconciled.cleaned,
        failed: reconciled.failed,
      });
      const pending = all.filter((x) => x.unanswered !== undefined).map((x) => [x, x.unanswered] as const);
      checks.afterRestart = await check();
      figures.helpersAfter = (await helpersUnder(v.root)).size;
      figures.settledApplied = pending.filter(([x, alt]) => x.known === alt).length;
      figures.settledNot = pending.length - figures.settledApplied;
      before = sample(v.socket, ["st-anchor"]);
      before.stop = (
        (stop) => async () =>
          merged(sampledBefore, await stop())
      )(before.stop);
      down = undefined;
      reopen();
    };
    const check = async () => {
      const listed = new Set<string>(
        ((await call(v.socket, "/VolumeDriver.List", {})).json?.Volumes ?? []).map(
          (x: { Name: string }) => x.Name,
        ),
      );
      return [...settle(all, await v.state(), listed), ...(await whatWasLost(v, known()))];
    };

    const client = async (c: number) => {
      const rnd = prng(SEED * 100 + c);
      const mine = volumes[c] ?? [];
      while (issued < OPERATIONS) {
        if (down) await down;
        const vol = mine[Math.floor(rnd() * mine.length)] as Volume;
        const { op, id } = nextOp(vol.known, rnd);
        issued++;
        const body =
          op === "Create"
            ? { Name: vol.name, Opts: options.get(vol.name) }
            : op === "Remove"
              ? { Name: vol.name }
              : { Name: vol.name, ID: id };
        inFlight++;
        const answer = await call(v.socket, `/VolumeDriver.${op}`, body, {
          signal: AbortSignal.timeout(60_000),
        }).catch(() => undefined);
        inFlight--;
        if (answer === undefined) {
          // Killed under it: it may have happened or not.
          vol.unanswered = applied(vol.known, op, id);
          unanswered++;
          continue;
        }
        const err = String(answer.json?.Err)
          .replace(/\d+/g, "N")
          .replace(/st-N-N/g, "V")
          .split(":")[0];
        const key = answer.status === 200 ? `${op} 200` : `${op} ${err}`;
        answers.set(key, (answers.get(key) ?? 0) + 1);
        if (answer.status === 200) vol.known = applied(vol.known, op, id);
        if (++answered === KILL_AFTER) killed = killAndRestart();
      }
    };
    const started = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    await killed;
    const seconds = (performance.now() - started) / 1000;
    const during = await before.stop();
    checks.atEnd = await check();
    const anchor = (await call(v.socket, "/VolumeDriver.Get", { Name: "st-anchor" })).json?.Volume?.Status;
    const anchorText = await readFile(join(v.root, "volumes", "st-anchor", "anchor.txt"), "utf8").catch(
      String,
    );
    const lost = [...(checks.afterRestart ?? ["never killed"]), ...(checks.atEnd ?? [])];
    const histogram = [...answers].sort().map(([k, n]) => `${k}: ${n}`);
    report({
      scenario: "kill-9-storm",
      getP99: during.getP99,
      listP99: during.listP99,
      others: anchorText === "lives through the storm\n" ? "ok (mounted through the kill)" : "anchor lost",
      status: `${anchor?.health} (the anchor after the restart)`,
      recoveredMs: figures.recoveredMs,
      lost,
      notes:
        `${issued} operations in ${seconds.toFixed(1)} s by ${CLIENTS} clients, killed after ${KILL_AFTER} answers; ` +
        `${unanswered} unanswered (${figures.settledApplied} had happened, ${figures.settledNot} had not); ` +
        `sshfs helpers ${figures.helpersAtKill} at the kill, ${figures.helpersAfter} after the reconcile; ` +
        `restart listening in ${figures.listenMs} ms, reconcile ${figures.reconcile}; ${histogram.join(", ")}`,
    });
    expect(issued).toBeGreaterThanOrEqual(OPERATIONS);
    expect(checks.afterRestart).toEqual([]);
    expect(checks.atEnd).toEqual([]);
    expect(all.some((x) => Object.keys(x.known.counts).length > 0)).toBe(true);
    expect(anchorText).toBe("lives through the storm\n");
    expect(anchor).toMatchObject({ mounted: true, health: "ok" });
    expect(during.failures).toEqual([]);
    expect(v.output()).not.toContain(peers[1]?.sshd.password);
    expect(await cleanUp(v)).toEqual([]);
  });
});
