/**
 * SANITY.md group K against an in-process etcd: two (or three) nodes, each a whole volgate on its
 * own fake host, sharing volume definitions. Every outage edge the catalog has to live through.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeEtcd } from "../fakes/etcd.ts";
import { FAKE_CATALOG } from "../fakes/world.ts";
import { create, type Served, serve } from "../support/served.ts";

let etcd: FakeEtcd;
let nodes: Served[];
let dirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "volgate-catalog-"));
  dirs.push(dir);
  return dir;
}

async function node(name: string, dir?: string): Promise<Served> {
  const s = await serve({ catalog: { etcd, node: name }, ...(dir && { dir }) });
  nodes.push(s);
  return s;
}

/** Until `check` holds (the copy follows a watch), at most 1 s: the promise of visibility. */
async function within1s(check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 1000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("not within 1 s");
    await new Promise((r) => setTimeout(r, 5));
  }
}

const inSync = (s: Served) => within1s(async () => s.catalog?.status().state === "ok");
const names = async (s: Served) =>
  ((await s.call("/VolumeDriver.List", {})).json.Volumes as Array<{ Name: string }>)
    .map((v) => v.Name)
    .sort();

let a: Served;
let b: Served;
beforeEach(async () => {
  etcd = new FakeEtcd();
  nodes = [];
  a = await node("node1");
  b = await node("node2");
  await Promise.all([inSync(a), inSync(b)]);
});
afterEach(async () => {
  etcd.heal();
  for (const s of nodes) await s.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

describe("a shared catalog", () => {
  it("a volume created on one node is listed, inspected and mounted on the other within a second", async () => {
    expect((await a.call("/VolumeDriver.Create", create("v"))).status).toBe(200);
    await within1s(async () => (await names(b)).includes("v"));
    const got = await b.call("/VolumeDriver.Get", { Name: "v" });
    expect(got.json.Volume.CreatedAt).toBe(
      (await a.call("/VolumeDriver.Get", { Name: "v" })).json.Volume.CreatedAt,
    );
    expect(got.json.Volume.Status.catalog).toBe(`${FAKE_CATALOG} ok`);
    expect((await b.call("/VolumeDriver.Mount", { Name: "v", ID: "x" })).status).toBe(200);
    expect((await b.call("/VolumeDriver.Unmount", { Name: "v", ID: "x" })).status).toBe(200);
  });

  it("Create is create-if-absent: the same definition again succeeds, another is a conflict", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    // Swarm calls Create on every node; node2 may not have seen the watch yet.
    expect((await b.call("/VolumeDriver.Create", create("v"))).status).toBe(200);
    const other = await b.call("/VolumeDriver.Create", create("w"));
    expect(other.status).toBe(200);
    const clash = await a.call(
      "/VolumeDriver.Create",
      create("w", { backend: "fake", server: "srv", share: "other" }),
    );
    await within1s(async () => (await names(a)).includes("w"));
    const again = await a.call(
      "/VolumeDriver.Create",
      create("w", { backend: "fake", server: "srv", share: "other" }),
    );
    expect(clash.status).toBe(500);
    expect(again.json.Err).toMatch(/volume w already exists .*other options/);
    expect(etcd.values("/volgate/volumes/").map(([k]) => k)).toEqual([
      "/volgate/volumes/v",
      "/volgate/volumes/w",
    ]);
  });

  it("Remove is refused while another node mounts it, naming the node; then it goes everywhere", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    await within1s(async () => (await names(b)).includes("v"));
    await b.call("/VolumeDriver.Mount", { Name: "v", ID: "x" });
    const refused = await a.call("/VolumeDriver.Remove", { Name: "v" });
    expect(refused.status).toBe(500);
    expect(refused.json.Err).toMatch(/in use on node node2/);
    await b.call("/VolumeDriver.Unmount", { Name: "v", ID: "x" });
    expect((await a.call("/VolumeDriver.Remove", { Name: "v" })).status).toBe(200);
    await within1s(async () => !(await names(b)).includes("v"));
    expect(etcd.values("/volgate/")).toEqual([]);
  });

  it("a marker put between Remove's read and its delete makes Remove try again and refuse", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    await within1s(async () => (await names(b)).includes("v"));
    // node3's client answers its first read of the markers as it was, and lets node2 mount meanwhile.
    const inner = etcd.client("node3");
    let raced = false;
    const racing = await serve({
      catalog: {
        etcd,
        node: "node3",
        wrap: {
          ...inner,
          list: async (prefix) => {
            const before = await inner.list(prefix);
            if (!raced && prefix === "/volgate/inuse/v/") {
              raced = true;
              expect((await b.call("/VolumeDriver.Mount", { Name: "v", ID: "x" })).status).toBe(200);
            }
            return before;
          },
        },
      },
    });
    nodes.push(racing);
    await inSync(racing);
    const refused = await racing.call("/VolumeDriver.Remove", { Name: "v" });
    expect(raced).toBe(true);
    expect(refused.json.Err).toMatch(/in use on node node2/);
    expect(etcd.values("/volgate/volumes/").map(([k]) => k)).toEqual(["/volgate/volumes/v"]);
    await b.call("/VolumeDriver.Unmount", { Name: "v", ID: "x" });
  });

  it("with etcd unreachable, known volumes keep working and Create/Remove fail clearly", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    await within1s(async () => (await names(b)).includes("v"));
    etcd.cut("down");
    await within1s(async () => b.catalog?.status().state === "unreachable");
    expect((await b.call("/VolumeDriver.Get", { Name: "v" })).status).toBe(200);
    expect(await names(b)).toEqual(["v"]);
    expect((await b.call("/VolumeDriver.Path", { Name: "v" })).status).toBe(200);
    expect((await b.call("/VolumeDriver.Mount", { Name: "v", ID: "x" })).status).toBe(200);
    expect((await b.call("/VolumeDriver.Unmount", { Name: "v", ID: "x" })).status).toBe(200);
    const status = (await b.call("/VolumeDriver.Get", { Name: "v" })).json.Volume.Status;
    expect(status.catalog).toMatch(/unreachable since \d{4}-.*connection refused.*works from its copy/);
    for (const [path, body] of [
      ["/VolumeDriver.Create", create("n")],
      ["/VolumeDriver.Remove", { Name: "v" }],
    ] as const) {
      const answer = await b.call(path, body);
      expect(answer.status).toBe(500);
      expect(answer.json.Err).toMatch(
        new RegExp(`catalog ${FAKE_CATALOG} is unreachable .*existing volumes keep working`),
      );
    }
    expect(await names(b)).toEqual(["v"]); // never a definition that exists only on one node
  });

  it("the member a node's watch was on going away is no outage: Status stays ok, Create works at once", async () => {
    etcd.dropWatches("node2");
    expect(b.catalog?.status().state).toBe("ok");
    expect((await b.call("/VolumeDriver.Create", create("v"))).status).toBe(200);
    expect((await a.call("/VolumeDriver.Create", create("w"))).status).toBe(200);
    await within1s(async () => (await names(b)).join() === "v,w"); // the watch is back
    expect(b.catalog?.status().state).toBe("ok");
  });

  it("a call caught in a leader election is tried once more, and succeeds", async () => {
    etcd.failNext(1, "node1");
    expect((await a.call("/VolumeDriver.Create", create("v"))).status).toBe(200);
    expect(etcd.values("/volgate/volumes/").map(([k]) => k)).toEqual(["/volgate/volumes/v"]);
  });

  it("an in-use marker that could not be put is put by the resync it starts: Remove elsewhere stays refused", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    await within1s(async () => (await names(b)).includes("v"));
    etcd.failNext(1, "node2");
    expect((await b.call("/VolumeDriver.Mount", { Name: "v", ID: "x" })).status).toBe(200);
    await within1s(async () => etcd.values("/volgate/inuse/").length === 1);
    const refused = await a.call("/VolumeDriver.Remove", { Name: "v" });
    expect(refused.json.Err).toMatch(/in use on node node2/);
    etcd.failNext(1, "node2");
    expect((await b.call("/VolumeDriver.Unmount", { Name: "v", ID: "x" })).status).toBe(200);
    await within1s(async () => etcd.values("/volgate/inuse/").length === 0); // nor is a stale one left
    expect((await a.call("/VolumeDriver.Remove", { Name: "v" })).status).toBe(200);
  });

  it("a silent server (accepts, never answers) is noticed and survived the same way", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    etcd.cut("silent", "node1");
    const answer = await a.call("/VolumeDriver.Create", create("n"));
    expect(answer.json.Err).toMatch(/unreachable/);
    expect((await a.call("/VolumeDriver.Get", { Name: "v" })).status).toBe(200);
    etcd.heal("node1");
    await inSync(a);
  }, 10_000);

  it("after a reconnect the copy resyncs from a full read, deletions made meanwhile included", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    await a.call("/VolumeDriver.Create", create("gone"));
    await within1s(async () => (await names(b)).length === 2);
    etcd.cut("down", "node2");
    await a.call("/VolumeDriver.Remove", { Name: "gone" });
    await a.call("/VolumeDriver.Create", create("new"));
    expect(await names(b)).toEqual(["gone", "v"]);
    etcd.heal("node2");
    await within1s(async () => (await names(b)).join() === "new,v");
    // ...within its retry delay, which is what 1 s does not cover: allow it more time.
  });

  it("a restart with etcd down answers at once from the persisted copy", async () => {
    const dir = await tempDir();
    const c = await node("node3", dir);
    await inSync(c);
    await a.call("/VolumeDriver.Create", create("v"));
    await within1s(async () => (await names(c)).includes("v"));
    etcd.cut("down");
    await c.close();
    nodes = nodes.filter((n) => n !== c);
    const again = await node("node3", dir);
    expect(await names(again)).toEqual(["v"]);
    expect(again.catalog?.status().state).not.toBe("ok");
    etcd.heal();
    await inSync(again);
  });

  it("keeps every secret out of the catalog: inline secrets are refused, profiles travel by name", async () => {
    await a.close();
    nodes = nodes.filter((n) => n !== a);
    a = await serve({ catalog: { etcd, node: "node1" }, allowInlineSecrets: true });
    nodes.push(a);
    await inSync(a);
    const inline = await a.call(
      "/VolumeDriver.Create",
      create("s", { backend: "fake", server: "srv", password: "hunter22-secret" }),
    );
    expect(inline.status).toBe(500);
    expect(inline.json.Err).toMatch(
      /inline secrets \(password\) cannot be used with the shared catalog .*credentials/,
    );
    expect(JSON.stringify(etcd.values())).not.toContain("hunter22");
  });

  it("trusts no name from the catalog: a key that is no volume name never becomes a mountpoint", async () => {
    const value = JSON.stringify({
      backend: "fake",
      options: { backend: "fake", server: "srv" },
      createdAt: new Date().toISOString(),
      subdir: "",
    });
    const bad = ["../../escape", "a/b", ".hidden", "-dash"];
    await etcd.client("intruder").txn(
      [],
      bad.map((n) => ({ put: `/volgate/volumes/${n}`, value })),
    );
    await a.call("/VolumeDriver.Create", create("ok"));
    await within1s(async () => (await names(b)).includes("ok")); // the watch delivered both
    const fresh = await node("node3");
    await inSync(fresh); // and the full read
    for (const s of [a, b, fresh]) expect(await names(s)).toEqual(["ok"]);
    expect(fresh.logs.filter((l) => /malformed volume definition/.test(String(l.msg)))).toHaveLength(
      bad.length,
    );
  });

  it("a Create made before the node's first sync waits for it instead of failing", async () => {
    const inner = etcd.client("node3");
    const slow: typeof inner = {
      ...inner,
      list: async (p) => new Promise((r) => setTimeout(r, 200)).then(() => inner.list(p)),
    };
    const late = await serve({ catalog: { etcd, node: "node3", wrap: slow } });
    nodes.push(late);
    expect(late.catalog?.status().state).toBe("connecting");
    const created = await late.call("/VolumeDriver.Create", create("early"));
    expect(created.status, created.text).toBe(200);
    await within1s(async () => (await names(a)).includes("early"));
  });

  it("follows changes in their order: a delete right after a put is not lost", async () => {
    const value = JSON.stringify({
      backend: "fake",
      options: { backend: "fake", server: "srv" },
      createdAt: new Date().toISOString(),
      subdir: "",
    });
    const other = etcd.client("other");
    await Promise.all([
      other.txn([], [{ put: "/volgate/volumes/brief", value }]),
      other.txn([], [{ delete: "/volgate/volumes/brief" }]),
      other.txn([], [{ put: "/volgate/volumes/stays", value }]),
    ]);
    await within1s(async () => (await names(b)).includes("stays"));
    await new Promise((r) => setTimeout(r, 50));
    expect(await names(b)).toEqual(["stays"]);
  });

  it("a node given its members otherwise publishes nothing again: what was removed meanwhile stays removed", async () => {
    const dir = await tempDir();
    const c = await node("node3", dir);
    await inSync(c);
    await a.call("/VolumeDriver.Create", create("v"));
    await within1s(async () => (await names(c)).includes("v"));
    await c.close();
    nodes = nodes.filter((n) => n !== c);
    expect((await a.call("/VolumeDriver.Remove", { Name: "v" })).status).toBe(200);
    const again = await serve({
      dir,
      catalog: { etcd, node: "node3", where: "etcd://other:2379,fake:2379/volgate/" },
    });
    nodes.push(again);
    await inSync(again);
    expect(await names(again)).toEqual([]);
    expect(etcd.values("/volgate/volumes/")).toEqual([]);
  });

  it("a lost lease (etcd expired it) puts this node's markers back", async () => {
    await a.call("/VolumeDriver.Create", create("v"));
    await a.call("/VolumeDriver.Mount", { Name: "v", ID: "x" });
    expect(etcd.values("/volgate/inuse/").map(([k]) => k)).toEqual(["/volgate/inuse/v/node1"]);
    etcd.expireLease("node1");
    await within1s(async () => etcd.values("/volgate/inuse/").length === 1);
    await a.call("/VolumeDriver.Unmount", { Name: "v", ID: "x" });
    expect(etcd.values("/volgate/inuse/")).toEqual([]);
  });
});

describe("switching a node from local to a shared catalog", () => {
  it("publishes its volumes create-if-absent; a conflict is reported and left as it is", async () => {
    const dir = await tempDir();
    const local = await serve({ dir });
    await local.call("/VolumeDriver.Create", create("mine"));
    await local.call("/VolumeDriver.Create", create("w", { backend: "fake", server: "srv", share: "other" }));
    await a.call("/VolumeDriver.Create", create("w")); // the catalog already has another "w"
    await local.close();
    const switched = await node("node3", dir);
    await inSync(switched);
    expect(
      etcd
        .values("/volgate/volumes/")
        .map(([k]) => k)
        .sort(),
    ).toEqual(["/volgate/volumes/mine", "/volgate/volumes/w"]);
    expect(JSON.parse(etcd.values("/volgate/volumes/w")[0]?.[1] ?? "{}").options.share).toBeUndefined();
    const w = (await switched.call("/VolumeDriver.Get", { Name: "w" })).json.Volume;
    expect(w.Status.catalog).toMatch(/defined here otherwise than in the catalog/);
    expect(switched.logs.some((l) => /conflicts with the catalog/.test(String(l.msg)))).toBe(true);
    await within1s(async () => (await names(b)).includes("mine"));
    expect(await readFile(join(switched.stateDir, "state.journal"), "utf8")).toContain(
      `${etcd.cluster}/volgate/`,
    );
    // Removing the conflicting one here leaves the catalog's, which takes its place here at once.
    expect((await switched.call("/VolumeDriver.Remove", { Name: "w" })).status).toBe(200);
    expect(etcd.values("/volgate/volumes/w")).toHaveLength(1);
    const catalogs = (await switched.call("/VolumeDriver.Get", { Name: "w" })).json.Volume;
    expect(catalogs?.Status.catalog).toBe(`${FAKE_CATALOG} ok`);
    expect(switched.state.get("w")?.options.share).toBeUndefined();
  });
});
