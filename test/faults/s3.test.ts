/**
 * Fault: the S3 server (s3rver) of a mounted s3fs volume stopped for 15 s while a process writes
 * into the volume every second; meanwhile a volume on another S3 server makes its round. Then the
 * server comes back (same port, same objects): the next Mount works, Status is ok, the writes land
 * again, and nothing was lost.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../support/client.ts";
import { tierCanRun } from "../support/prereq.ts";
import { SHIPPED_NODE_FLAGS, startVolgate, type Volgate } from "../support/volgate.ts";
import { report } from "./lib/figures.ts";
import { cleanUp, whatWasLost } from "./lib/lost.ts";
import { exercise, type S3Peer, s3Peer } from "./lib/peers.ts";
import { merged, sample } from "./lib/sampler.ts";

const canRun = tierCanRun("faults (s3)", ["s3fs"], existsSync("/dev/fuse") ? [] : ["/dev/fuse"]);

const DOWN_MS = 15_000;
/**
 * s3fs retries each request (5 times by default) and serves again at the first request after the
 * server is back; the health probe runs every second with a 2 s limit. 15 s leaves room for s3fs's
 * retry backoff and a busy machine.
 */
const RECOVERY_BOUND_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(canRun)("fault: the S3 server of a mounted volume stopped", () => {
  let v: Volgate;
  let faulty: S3Peer;
  let healthy: S3Peer;
  let writer: ChildProcess | undefined;

  const status = async (name: string) =>
    (await call(v.socket, "/VolumeDriver.Get", { Name: name })).json?.Volume?.Status ?? {};
  const ask = (path: string, body: object) =>
    call(v.socket, path, body, { signal: AbortSignal.timeout(30_000) });

  beforeAll(async () => {
    v = await startVolgate({ env: { VOLGATE_HEALTH_INTERVAL: "1" }, nodeFlags: SHIPPED_NODE_FLAGS });
    [faulty, healthy] = [await s3Peer(v, "s3-faulty"), await s3Peer(v, "s3-healthy")];
  });

  afterAll(async () => {
    writer?.kill("SIGKILL");
    await faulty?.s3.up().catch(() => {});
    if (v?.running()) await cleanUp(v);
    await v?.stop();
    await faulty?.stop();
    await healthy?.stop();
  });

  it("keeps the other volume working, and recovers when the server is back", async () => {
    expect(
      (await ask("/VolumeDriver.Create", { Name: "s3-used", Opts: await faulty.options("used") })).json,
    ).toEqual({});
    const mounted = await ask("/VolumeDriver.Mount", { Name: "s3-used", ID: "m1" });
    expect(mounted.status, mounted.text).toBe(200);
    // A process of its own: a write that waits on a dead server must not hold one of our threads.
    const tick = join(mounted.json.Mountpoint, "tick");
    writer = spawn("sh", ["-c", `while :; do date +%s > '${tick}'; sleep 1; done`], { stdio: "ignore" });
    const ticked = async () => Number((await faulty.read("used", "tick").catch(() => "0")).trim());
    for (let i = 0; i < 100 && (await ticked()) === 0; i++) await sleep(100);
    expect(await ticked()).toBeGreaterThan(0);

    const sampler = sample(v.socket, ["s3-used"]);
    const downAt = performance.now();
    await faulty.s3.down();
    let during: Record<string, unknown> = {};
    const seen = new Set<string>();
    const others = await exercise(v, healthy, "s3-other").catch((err: unknown) => `failed: ${String(err)}`);
    while (performance.now() - downAt < DOWN_MS) {
      during = await status("s3-used");
      seen.add(`${during.health}: ${during.lastError ?? ""}`);
      await sleep(500);
    }
    const sampledDown = await sampler.stop();

    await faulty.s3.up();
    const backAt = performance.now();
    const since = () => Math.round(performance.now() - backAt);
    const after = sample(v.socket, ["s3-used"]);
    const mount = await ask("/VolumeDriver.Mount", { Name: "s3-used", ID: "m2" });
    const mountMs = since();
    let statusMs = Number.NaN;
    while (since() < 2 * RECOVERY_BOUND_MS && Number.isNaN(statusMs)) {
      if ((await status("s3-used")).health === "ok") statusMs = since();
      else await sleep(100);
    }
    const backEpoch = Math.floor(Date.now() / 1000) - Math.ceil(since() / 1000);
    let writerMs = Number.NaN;
    while (since() < 2 * RECOVERY_BOUND_MS && Number.isNaN(writerMs)) {
      if ((await ticked()) > backEpoch) writerMs = since();
      else await sleep(200);
    }
    const sampled = merged(sampledDown, await after.stop());
    writer.kill("SIGKILL");
    const lost = await whatWasLost(v, ["s3-used"]);
    report({
      scenario: "s3-server-stopped",
      getP99: sampledDown.getP99,
      listP99: sampledDown.listP99,
      others,
      status: [...seen].filter((x) => !x.startsWith("ok")).join(" / ") || "ok",
      recoveredMs: Math.max(mountMs, writerMs),
      lost,
      notes:
        `stopped ${DOWN_MS / 1000} s; after it came back: Mount ${mountMs} ms, Status ok after ${statusMs} ms, the ` +
        `writer's file reached S3 again after ${writerMs} ms; Get/List max ` +
        `${Math.round(Math.max(sampled.getMax, sampled.listMax))} ms`,
    });
    expect(others).toMatch(/^ok/);
    expect(sampled.failures).toEqual([]);
    expect(Math.max(sampled.getMax, sampled.listMax)).toBeLessThan(1000);
    expect(during).toMatchObject({ mounted: true });
    expect(during.health, "Status must show the server is gone").not.toBe("ok");
    expect(mount.status, mount.text).toBe(200);
    expect(mountMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(statusMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(writerMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(lost).toEqual([]);
    expect(await cleanUp(v)).toEqual([]);
  });
});
