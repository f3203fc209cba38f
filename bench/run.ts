/**
 * `npm run bench`: latency of Get, List, Path and Capabilities over the real
 * socket at 1,000 and 10,000 volumes, time from start to listening, and RSS.
 * Runs the daemon bundle (dist/bundle/volgate.mjs, what ships) on a pre-written state file; no volume
 * is mounted, so no traffic leaves the machine.
 * Runs the built daemon (dist/main.js) on a pre-written state file; no volume
 * is mounted, so no traffic leaves the machine. Then the catalog case (bench/catalog.ts): the
 * same daemon with a shared catalog on a real etcd on 127.0.0.1.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { catalogBench } from "./catalog.ts";
import { createTrend, describeTrend } from "./creates.ts";
import { getLoad, type LoadResult } from "./load.ts";
import { type RawClient, rawClient } from "./raw-client.ts";

/** The flags volgate is launched with in production (plugin/config.json, volgate.service). */
const NODE_FLAGS = (
  process.env.VOLGATE_NODE_FLAGS ??
  "--max-semi-space-size=1 --optimize-for-size --no-maglev --no-sparkplug --single-threaded"
)
  .split(" ")
  .filter(Boolean);

const TARGETS = { getP99Ms: 1, list10kMs: 25, listen10kMs: 300, rssMb: 80 };

function volume(i: number) {
  const name = `bench-volume-${i}`;
  const options = {
    backend: "sshfs",
    host: "127.0.0.1",
    port: "2222",
    user: "app",
    path: `/srv/data/${i}`,
    credentials: "bench",
  };
  return {
    name,
    backend: "sshfs",
    options,
    createdAt: new Date(1_700_000_000_000 + i).toISOString(),
    subdir: `srv/data/${i}`,
    mounts: {},
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function timeCalls(client: RawClient, count: number, path: string, body: (i: number) => unknown) {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const request = body(i);
    const started = performance.now();
    const answer = await client.call(path, request);
    samples.push(performance.now() - started);
    if (answer.status !== 200) throw new Error(`${path}: ${answer.body}`);
  }
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

async function startDaemon(
  dir: string,
): Promise<{ child: ChildProcess; listenMs: number; reportedMs: number }> {
  const socket = join(dir, "volgate.sock");
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    VOLGATE_SOCKET: socket,
    VOLGATE_ROOT: join(dir, "root"),
    VOLGATE_STATE_DIR: join(dir, "state"),
    VOLGATE_SECRETS_DIR: join(dir, "secrets"),
    VOLGATE_LOG_FORMAT: "json",
  };
  const started = performance.now();
  const child = spawn(process.execPath, [...NODE_FLAGS, "dist/bundle/volgate.mjs"], {
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  const reportedMs = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`volgate exited with ${code}: ${out}`)));
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const line = out.split("\n").find((l) => l.includes('"msg":"listening"'));
      if (line) resolve(JSON.parse(line).ms);
    });
  });
  return { child, listenMs: performance.now() - started, reportedMs };
}

/**
 * RSS, and of it the private (anonymous) memory: the rest is file pages, mostly Node's own code
 * mapped from its binary (Node 24's is larger than 20's: ~8 MB more of it is touched), shared and
 * reclaimable.
 */
async function memoryMb(pid: number): Promise<{ rss: number; private: number }> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, "m").exec(rollup)?.[1]);
  return { rss: kb("Rss") / 1024, private: kb("Anonymous") / 1024 };
}

async function run(count: number) {
  const dir = await mkdtemp(join(tmpdir(), "volgate-bench-"));
  try {
    await mkdir(join(dir, "state"), { recursive: true });
    const volumes = Array.from({ length: count }, (_, i) => volume(i));
    await writeFile(join(dir, "state", "state.json"), JSON.stringify({ version: 1, volumes }), {
      mode: 0o600,
    });
    const { child, listenMs, reportedMs } = await startDaemon(dir);
    const client = await rawClient(join(dir, "volgate.sock"));
    try {
      const name = (i: number) => ({ Name: `bench-volume-${(i * 7919) % count}` });
      // A daemon runs for weeks: measure it warm (JIT-compiled), not its first few hundred requests.
      for (const path of ["/VolumeDriver.Get", "/VolumeDriver.Path", "/VolumeDriver.Capabilities"]) {
        await timeCalls(client, 2000, path, name);
      }
      const get = await timeCalls(client, 2000, "/VolumeDriver.Get", name);
      const path = await timeCalls(client, 2000, "/VolumeDriver.Path", name);
      const caps = await timeCalls(client, 2000, "/VolumeDriver.Capabilities", () => undefined);
      const list = await timeCalls(client, 50, "/VolumeDriver.List", () => ({}));
      const { rss, private: anon } = await memoryMb(child.pid ?? 0);
      return { count, listenMs, reportedMs, get, path, caps, list, rss, anon };
    } finally {
      client.close();
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number) => n.toFixed(2).padStart(8);
console.log(
  "volumes  listen(ms) [self]   Get p50/p99     Path p50/p99    Caps p50/p99    List p50/p99      RSS(MB) [private]",
);
for (const count of [1000, 10_000]) {
  const r = await run(count);
  console.log(
    `${String(count).padStart(7)} ${fmt(r.listenMs)} [${r.reportedMs}] ${fmt(r.get.p50)}/${fmt(r.get.p99)} ${fmt(r.path.p50)}/${fmt(r.path.p99)} ${fmt(r.caps.p50)}/${fmt(r.caps.p99)} ${fmt(r.list.p50)}/${fmt(r.list.p99)} ${fmt(r.rss)} [${r.anon.toFixed(1)}]`,
  );
  if (count === 10_000) {
    const verdict = (ok: boolean) => (ok ? "ok" : "MISSED");
    console.log(
      `targets: Get p99 < ${TARGETS.getP99Ms} ms: ${verdict(r.get.p99 < TARGETS.getP99Ms)}; List(10k) p50 < ${TARGETS.list10kMs} ms: ${verdict(r.list.p50 < TARGETS.list10kMs)}; listening < ${TARGETS.listen10kMs} ms: ${verdict(r.listenMs < TARGETS.listen10kMs)}; RSS < ${TARGETS.rssMb} MB: ${verdict(r.rss < TARGETS.rssMb)}`,
    );
  }
}

/** The null plugin (bench/null-plugin.ts) on its own socket, ready to answer. */
async function startNull(dir: string, count: number): Promise<{ child: ChildProcess; socket: string }> {
  const socket = join(dir, "null.sock");
  const child = spawn(process.execPath, ["bench/null-plugin.ts", socket, String(count)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`null plugin exited with ${code}`)));
    child.stdout?.once("data", () => resolve());
  });
  return { child, socket };
}

const stop = async (child: ChildProcess) => {
  child.kill("SIGTERM");
  if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
};

/**
 * Get under load at 10,000 volumes, volgate and the null plugin in turn, five rounds each
 * (interleaved, so both meet the same machine), medians; and start to listening, five starts (the same daemons).
 */
async function versusNull(count: number) {
  const dir = await mkdtemp(join(tmpdir(), "volgate-bench-"));
  const rounds: Array<{ volgate: LoadResult; floor: LoadResult }> = [];
  const starts: number[] = [];
  try {
    await mkdir(join(dir, "state"), { recursive: true });
    const volumes = Array.from({ length: count }, (_, i) => volume(i));
    await writeFile(join(dir, "state", "state.json"), JSON.stringify({ version: 1, volumes }), {
      mode: 0o600,
    });
    for (let round = 0; round < 5; round++) {
      const daemon = await startDaemon(dir);
      starts.push(daemon.listenMs);
      await getLoad(join(dir, "volgate.sock"), count, 16, 1000); // warm (JIT)
      const volgate = await getLoad(join(dir, "volgate.sock"), count);
      await stop(daemon.child);
      const floor = await startNull(dir, count);
      await getLoad(floor.socket, count, 16, 1000);
      rounds.push({ volgate, floor: await getLoad(floor.socket, count) });
      await stop(floor.child);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const mid = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
  const rate = mid(rounds.map((r) => r.volgate.rate));
  const floorRate = mid(rounds.map((r) => r.floor.rate));
  const p99 = mid(rounds.map((r) => r.volgate.p99));
  console.log(
    `\nGet, 16 in flight, ${count} volumes (medians of 5 interleaved rounds):\n` +
      `  volgate     ${rate.toFixed(0).padStart(7)}/s  p50 ${mid(rounds.map((r) => r.volgate.p50)).toFixed(3)} ms  p99 ${p99.toFixed(3)} ms\n` +
      `  null plugin ${floorRate.toFixed(0).padStart(7)}/s  p50 ${mid(rounds.map((r) => r.floor.p50)).toFixed(3)} ms  p99 ${mid(rounds.map((r) => r.floor.p99)).toFixed(3)} ms\n` +
      `  volgate / null: ${(rate / floorRate).toFixed(2)} (target >= 0.9)`,
  );
  console.log(
    `start to listening with ${count} volumes, 5 starts: ${starts.map((ms) => ms.toFixed(0)).join(" ")} ms, median ${mid(starts).toFixed(0)} (target < 250)`,
  );
}

await versusNull(10_000);
console.log(`\n${describeTrend(10_000, await createTrend(10_000))}`);
await catalogBench();
