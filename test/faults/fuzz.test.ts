/**
 * Fault: 100,000 fuzzed requests at the socket (lib/fuzz.ts) on 16 connections, while two real
 * sshfs volumes exist (one mounted, a file in it) and a third one makes its round. The daemon must
 * not crash; every answer must be well-formed (JSON with a string Err, or the endpoint's success
 * shape); RSS stays bounded; the real volumes are exactly as before.
 */
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../support/client.ts";
import { tierCanRun } from "../support/prereq.ts";
import { SHIPPED_NODE_FLAGS, startVolgate, type Volgate } from "../support/volgate.ts";
import { report } from "./lib/figures.ts";
import { type FuzzRequest, generator } from "./lib/fuzz.ts";
import { type RawAnswer, rawConnection } from "./lib/http.ts";
import { cleanUp, whatWasLost } from "./lib/lost.ts";
import { exercise, type SshPeer, sshPeer } from "./lib/peers.ts";
import { rssMb, watchRss } from "./lib/rss.ts";
import { sample } from "./lib/sampler.ts";
import { wellFormed } from "./lib/wire.ts";

const canRun = tierCanRun("faults (fuzz)", ["sshd", "sshfs"], existsSync("/dev/fuse") ? [] : ["/dev/fuse"]);

const REQUESTS = Number(process.env.VOLGATE_FUZZ_REQUESTS ?? 100_000);
const CONNECTIONS = 16;
const SEED = Number(process.env.VOLGATE_FUZZ_SEED ?? 20_261_201);
/**
 * RSS, with the daemon run as the plugin runs it (SHIPPED_NODE_FLAGS): it reads at most 256 KiB of
 * a body and 16 connections send one request at a time, so a few MiB are in flight; the rest is
 * V8 growing its heap under garbage (measured: 75 MB at start, 100-110 after each quarter, peaks
 * of 130-145). Bounds: a peak under start + 96 MB, and no growth with the number of requests (the
 * last quarter within 32 MB of the first; a leak of a few hundred bytes a request would pass it).
 */
const RSS_HEADROOM_MB = 96;
const RSS_GROWTH_MB = 32;

describe.runIf(canRun)("fault: fuzzed requests", () => {
  let v: Volgate;
  let peer: SshPeer;
  const kept = ["fuzz-kept-mounted", "fuzz-kept-idle"];

  beforeAll(async () => {
    v = await startVolgate({ env: { VOLGATE_HEALTH_INTERVAL: "1" }, nodeFlags: SHIPPED_NODE_FLAGS });
    peer = await sshPeer(v, "fuzz");
    for (const name of kept) {
      const created = await call(v.socket, "/VolumeDriver.Create", {
        Name: name,
        Opts: await peer.options(name),
      });
      expect(created.json).toEqual({});
    }
    const mounted = await call(v.socket, "/VolumeDriver.Mount", { Name: kept[0], ID: "kept" });
    await writeFile(join(mounted.json.Mountpoint, "kept.txt"), "kept through the fuzz\n");
  });

  afterAll(async () => {
    if (v?.running()) await cleanUp(v);
    await v?.stop();
    await peer?.stop();
  });

  it("answers every request well-formed, stays up and bounded, and changes no real volume", async () => {
    const pid = v.pid();
    const before = await Promise.all(kept.map((n) => call(v.socket, "/VolumeDriver.Get", { Name: n })));
    const stateBefore = (await v.state()).volumes;
    const rssStart = await rssMb(pid);
    const rss = watchRss(pid);
    const sampler = sample(v.socket, kept);

    const next = generator(SEED, kept);
    const statuses = new Map<number | string, number>();
    const bad: string[] = [];
    let sent = 0;
    let slowest = { ms: 0, what: "" };
    /** RSS after each quarter of the requests: a leak grows with them, a heap that settled does not. */
    const rssAt: number[] = [];
    const check = (req: FuzzRequest, answer: RawAnswer | Error) => {
      const key = answer instanceof Error ? "none" : answer.status;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      const problem = wellFormed(req, answer);
      if (problem !== undefined)
        bad.push(`${req.kind} ${req.head.split("\r\n")[0]?.slice(0, 80)}: ${problem}`);
    };
    const worker = async () => {
      let conn = rawConnection(v.socket);
      while (sent < REQUESTS) {
        const n = ++sent;
        const req = next();
        // A request that breaks HTTP framing goes on a connection of its own.
        const own = req.kind === "not-http" || req.kind === "broken-chunked" ? rawConnection(v.socket) : conn;
        const t = performance.now();
        // Longer than the daemon's 10 s request timeout: a request it waits out gets its 408.
        const answer = await own.send(req.head, req.body, req.method, 15_000);
        const ms = performance.now() - t;
        // An incomplete request is waited out on purpose (a 408 after 10 s): not a slow answer.
        const waitedOut = !(answer instanceof Error) && answer.status === 408;
        if (ms > slowest.ms && !waitedOut)
          slowest = { ms, what: `${req.kind} ${req.head.split("\r\n")[0]?.slice(0, 60)}` };
        check(req, answer);
        if (n % (REQUESTS / 4) === 0) rssAt.push(await rssMb(pid));
        if (own !== conn) own.close();
        if (n % 5000 === 0) {
          conn.close();
          conn = rawConnection(v.socket);
        }
      }
      conn.close();
    };
    const started = performance.now();
    const other = (async () => {
      await new Promise((r) => setTimeout(r, 2000));
      return exercise(v, peer, "fuzz-other");
    })().catch((err: unknown) => `failed: ${String(err)}`);
    await Promise.all(Array.from({ length: CONNECTIONS }, worker));
    const seconds = (performance.now() - started) / 1000;
    const during = await sampler.stop();
    const others = await other;
    const rssPeak = rss.stop();
    const rssEnd = await rssMb(pid);

    expect(v.pid(), "the daemon was restarted or crashed").toBe(pid);
    expect(v.running()).toBe(true);
    const after = await Promise.all(kept.map((n) => call(v.socket, "/VolumeDriver.Get", { Name: n })));
    const stateAfter = (await v.state()).volumes;
    const mountpoint = join(v.root, "volumes", kept[0] ?? "");
    const lost = await whatWasLost(v, kept);
    const histogram = [...statuses].sort((a, b) => b[1] - a[1]).map(([s, n]) => `${s}: ${n}`);
    report({
      scenario: "fuzz-100k",
      getP99: during.getP99,
      listP99: during.listP99,
      others,
      status: after[0]?.json?.Volume?.Status?.health ?? "?",
      recoveredMs: undefined,
      lost,
      notes:
        `${REQUESTS} requests (seed ${SEED}) in ${seconds.toFixed(1)} s, ${Math.round(REQUESTS / seconds)} req/s; ` +
        `statuses ${histogram.join(", ")}; RSS ${rssStart} MB at start, ${rssAt.join("/")} after each quarter, ` +
        `peak ${rssPeak}, end ${rssEnd}; ` +
        `slowest answer ${Math.round(slowest.ms)} ms (${slowest.what}); malformed answers ${bad.length}`,
    });
    expect(bad.slice(0, 20)).toEqual([]);
    expect(during.failures).toEqual([]);
    // No request may hold the daemon: the fuzz found one that blocked it 19 s (shown(), quadratic).
    expect(slowest.ms).toBeLessThan(2000);
    expect(rssPeak).toBeLessThan(rssStart + RSS_HEADROOM_MB);
    expect(rssAt.at(-1) ?? 0).toBeLessThan((rssAt[0] ?? 0) + RSS_GROWTH_MB);
    expect(after.map((a) => a.json)).toEqual(before.map((b) => b.json));
    expect(stateAfter).toEqual(stateBefore);
    expect(await readFile(join(mountpoint, "kept.txt"), "utf8")).toBe("kept through the fuzz\n");
    expect(lost).toEqual([]);
    expect(others).toMatch(/^ok/);
    expect(await cleanUp(v)).toEqual([]);
  });
});
