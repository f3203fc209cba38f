/**
 * The catalog case of `npm run bench`: two daemons (node1, node2) sharing a real etcd (one member,
 * 127.0.0.1) with 1,000 and then 10,000 definitions seeded straight into etcd (what other nodes'
 * Creates would have put; the copy's sync of them is timed). Then, over the real sockets: Create
 * (a real s3fs preflight, HeadBucket on an s3rver on 127.0.0.1: the cheapest real backend check,
 * then the create-if-absent transaction), Get and List, Remove (guard, markers, delete), how long a
 * create on node1 takes to show on node2, Get during an etcd outage, and the start-up of a node
 * with 10,000 volumes in its copy while etcd is down. Nothing is mounted.
 */

import { catalogUrl, seedCatalog, until } from "../test/support/catalog.ts";
import { startEtcd, type TestEtcd } from "../test/support/etcd.ts";
import { startS3, type TestS3, writeS3Profile } from "../test/support/s3.ts";
import { startVolgate, type Volgate } from "../test/support/volgate.ts";
import { type RawClient, rawClient } from "./raw-client.ts";

const BUCKET = "bench-catalog";
const OPS = 200;

function percentiles(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
  return { p50: at(50), p99: at(99) };
}

async function timed(client: RawClient, count: number, path: string, body: (i: number) => unknown) {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const answer = await client.call(path, body(i));
    samples.push(performance.now() - started);
    if (answer.status !== 200) throw new Error(`${path}: ${answer.body}`);
  }
  return percentiles(samples);
}

function node(etcd: TestEtcd, s3: TestS3, name: string): Promise<Volgate> {
  return startVolgate({
    env: { VOLGATE_CATALOG: catalogUrl(etcd), VOLGATE_NODE_NAME: name },
    prepare: ({ secretsDir }) =>
      writeS3Profile(secretsDir, "s3", {
        access_key_id: s3.accessKeyId,
        secret_access_key: s3.secretAccessKey,
      }).then(() => {}),
  });
}

const listed = async (client: RawClient) =>
  (JSON.parse((await client.call("/VolumeDriver.List", {})).body) as { Volumes: unknown[] }).Volumes.length;

/** Create OPS volumes on node1 (timing each, and each one's arrival on node2), then remove them. */
async function createAndRemove(one: RawClient, two: RawClient, s3: TestS3, tag: string) {
  const opts = { backend: "s3fs", bucket: BUCKET, endpoint: s3.endpoint, credentials: "s3" };
  const creates: number[] = [];
  const seen: number[] = [];
  for (let i = 0; i < OPS; i++) {
    const name = `bench-${tag}-${i}`;
    const started = performance.now();
    const answer = await one.call("/VolumeDriver.Create", { Name: name, Opts: opts });
    const answered = performance.now();
    if (answer.status !== 200) throw new Error(`Create: ${answer.body}`);
    creates.push(answered - started);
    while ((await two.call("/VolumeDriver.Get", { Name: name })).status !== 200);
    seen.push(performance.now() - answered);
  }
  const remove = await timed(one, OPS, "/VolumeDriver.Remove", (i) => ({ Name: `bench-${tag}-${i}` }));
  return { create: percentiles(creates), seen: percentiles(seen), remove };
}

const fmt = (n: number) => n.toFixed(2).padStart(7);
const pair = (p: { p50: number; p99: number }) => `${fmt(p.p50)}/${fmt(p.p99)}`;

interface Round {
  readonly etcd: TestEtcd;
  readonly daemons: Volgate[];
  readonly clients: RawClient[];
}

/** A fresh etcd seeded with `count` definitions, then two daemons started on it: until both copies hold them. */
async function round(s3: TestS3, count: number): Promise<Round & { syncMs: number }> {
  const etcd = await startEtcd();
  const r: Round = { etcd, daemons: [], clients: [] };
  try {
    await seedCatalog(etcd, count, (i) => `seeded-${i}`);
    const started = performance.now();
    r.daemons.push(...(await Promise.all([node(etcd, s3, "node1"), node(etcd, s3, "node2")])));
    r.clients.push(...(await Promise.all(r.daemons.map((d) => rawClient(d.socket)))));
    for (const c of r.clients) await until(async () => (await listed(c)) === count, 60_000, "in sync");
    return { ...r, syncMs: performance.now() - started };
  } catch (err) {
    await close(r);
    throw err;
  }
}

async function close(r: Round): Promise<void> {
  for (const c of r.clients) c.close();
  for (const d of r.daemons) await d.stop();
  await r.etcd.stop();
}

/** etcd goes down under node1: how long until its Status says so, Get meanwhile, and a restart. */
async function outage(r: Round, count: number): Promise<string> {
  const [one] = r.clients;
  const [node1] = r.daemons;
  if (one === undefined || node1 === undefined) throw new Error("no node1");
  await r.etcd.members[0]?.kill();
  const down = performance.now();
  const body = async () => (await one.call("/VolumeDriver.Get", { Name: "seeded-1" })).body;
  await until(async () => /unreachable/.test(await body()), 20_000, "outage noticed");
  const noticed = performance.now() - down;
  const get = await timed(one, 2000, "/VolumeDriver.Get", (i) => ({ Name: `seeded-${(i * 7919) % count}` }));
  one.close();
  r.clients.shift();
  await node1.kill();
  const restart = await node1.restart();
  const self = node1
    .logs()
    .filter((l) => l.msg === "listening")
    .at(-1)?.ms;
  return `etcd down at ${count} volumes: noticed in ${Math.round(noticed)} ms; Get p50/p99 ${pair(get)}; node1 restarted meanwhile: listening after ${restart} ms (${self} ms by its own clock; target < 300)`;
}

export async function catalogBench(): Promise<void> {
  const s3 = await startS3([BUCKET]);
  try {
    console.log(
      "\ncatalog: etcd (one member, 127.0.0.1) seeded with the definitions, two daemons; ms, p50/p99",
    );
    console.log(
      "volumes  start->in sync  Create          Get             List            Remove          create on node1 -> seen on node2",
    );
    for (const count of [1000, 10_000]) {
      const r = await round(s3, count);
      try {
        const [one, two] = r.clients;
        if (one === undefined || two === undefined) throw new Error("no clients");
        const name = (i: number) => ({ Name: `seeded-${(i * 7919) % count}` });
        await timed(one, 2000, "/VolumeDriver.Get", name); // warm
        const get = await timed(one, 2000, "/VolumeDriver.Get", name);
        const list = await timed(one, 20, "/VolumeDriver.List", () => ({}));
        const { create, seen, remove } = await createAndRemove(one, two, s3, String(count));
        console.log(
          `${String(count).padStart(7)} ${fmt(r.syncMs).padStart(15)}  ${pair(create)} ${pair(get)} ${pair(list)} ${pair(remove)} ${pair(seen)}`,
        );
        if (count === 10_000) console.log(await outage(r, count));
      } finally {
        await close(r);
      }
    }
    console.log(
      `Create = s3fs preflight (HeadBucket) + the create-if-absent transaction + the state write; ${OPS} creates and removes a row`,
    );
  } finally {
    await s3.stop();
  }
}
