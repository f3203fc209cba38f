/**
 * SANITY.md group K on a real etcd (one member) and real daemons: node1 and node2 share a catalog,
 * volumes are real sshfs volumes on a private sshd, mounted for real. What one node creates the
 * other lists, inspects and mounts within a second; Create is create-if-absent; Remove is refused
 * while the other node mounts and deletes the definition only; a node lacking a profile says so;
 * a node switched from local to the catalog publishes its volumes.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogNode, catalogUrl, driver, sshVolume, until, writeSshProfile } from "../support/catalog.ts";
import { removeDirSafely } from "../support/dockerd.ts";
import { startEtcd, type TestEtcd } from "../support/etcd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { startSshd, type TestSshd } from "../support/sshd.ts";
import { startVolgate, type Volgate } from "../support/volgate.ts";

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push("root (FUSE mounts)");
if (!existsSync("/dev/fuse")) missing.push("/dev/fuse");
const CATALOG_TOOLS = ["etcd", "etcdctl", "sshd", "sshfs", "openssl"];
const canRun = tierCanRun("integration (catalog)", CATALOG_TOOLS, missing);

describe.skipIf(!canRun)("a shared catalog on a real etcd", () => {
  let etcd: TestEtcd;
  let sshd: TestSshd;
  let remote: string;
  let url: string;
  const daemons: Volgate[] = [];
  let one: ReturnType<typeof driver>;
  let two: ReturnType<typeof driver>;
  let node2: Volgate;
  const measured: Record<string, number> = {};
  const keys = async (prefix = "/volgate/") =>
    (await etcd.etcdctl(["get", "--prefix", "--keys-only", prefix])).stdout.split("\n").filter(Boolean);

  beforeAll(async () => {
    [etcd, sshd] = await Promise.all([startEtcd(), startSshd()]);
    remote = join(sshd.home, `catalog-${process.pid}`);
    await mkdir(remote, { recursive: true });
    await chown(remote, sshd.uid, sshd.gid);
    url = catalogUrl(etcd);
    const [node1, second] = await Promise.all([
      catalogNode(etcd, sshd, "node1"),
      catalogNode(etcd, sshd, "node2"),
    ]);
    node2 = second;
    daemons.push(node1, node2);
    one = driver(node1);
    two = driver(node2);
    for (const d of daemons) await d.waitForLog((l) => l.msg === "volume catalog in sync");
  });
  afterAll(async () => {
    for (const d of daemons.reverse()) await d.stop(); // the switched node runs on the local one's dirs
    await Promise.all([etcd?.stop(), sshd?.stop()]);
    if (remote) await removeDirSafely(remote);
    console.log(`catalog (one member) timings (ms): ${JSON.stringify(measured)}`);
  });

  it("a volume created on node1 is listed, inspected and mounted on node2 within a second", async () => {
    expect(await two.names()).toEqual([]); // a List before the Create must not hide it
    const created = await one.create("v1", sshVolume(sshd, remote));
    expect(created.status, created.text).toBe(200);
    measured.seenOnNode2 = await until(async () => (await two.names()).includes("v1"), 1000, "v1 on node2");
    const [a, b] = await Promise.all([one.call("Get", { Name: "v1" }), two.call("Get", { Name: "v1" })]);
    expect(b.json.Volume.CreatedAt).toBe(a.json.Volume.CreatedAt);
    expect(b.json.Volume.Status.catalog).toBe(`${url} ok`);
    const mounted = await two.call("Mount", { Name: "v1", ID: "c1" });
    expect(mounted.status, mounted.text).toBe(200);
    await writeFile(join(mounted.json.Mountpoint, "from-node2.txt"), "node2\n");
    expect(await readFile(join(remote, "from-node2.txt"), "utf8")).toBe("node2\n");
    expect((await two.call("Unmount", { Name: "v1", ID: "c1" })).status).toBe(200);
  });

  it("Create is create-if-absent: the same definition succeeds anywhere, another is a conflict", async () => {
    expect((await two.create("v1", sshVolume(sshd, remote))).status).toBe(200);
    const other = await two.create("v1", sshVolume(sshd, `${remote}/elsewhere`));
    expect(other.status).toBe(500);
    expect(other.json.Err).toMatch(/volume v1 already exists .*other options/);
    // Both at once, before either node saw the other's: the catalog's transaction picks one.
    const [x, y] = await Promise.all([
      one.create("race", sshVolume(sshd, remote)),
      two.create("race", { ...sshVolume(sshd, remote), ro: "true" }),
    ]);
    expect([x.status, y.status].sort()).toEqual([200, 500]);
    expect((x.status === 500 ? x : y).json.Err).toMatch(/volume race already exists .*other options/);
    const winner = x.status === 200 ? "false" : "true";
    for (const d of [one, two]) await until(async () => (await d.names()).includes("race"), 1000, "race");
    const stored = await etcd.etcdctl(["get", "--print-value-only", "/volgate/volumes/race"]);
    expect(JSON.parse(stored.stdout).options.ro ?? "false").toBe(winner);
    for (const d of [one, two]) expect((await d.call("Remove", { Name: "race" })).status).toBe(200);
  });

  it("Remove is refused while node2 mounts, naming node2; then it deletes the definition only", async () => {
    expect((await two.call("Mount", { Name: "v1", ID: "c2" })).status).toBe(200);
    expect(await keys("/volgate/inuse/")).toEqual(["/volgate/inuse/v1/node2"]);
    const refused = await one.call("Remove", { Name: "v1" });
    expect(refused.status).toBe(500);
    expect(refused.json.Err).toMatch(
      /volume v1 is in use on node node2: stop the containers using it there first/,
    );
    expect(await one.names()).toContain("v1");
    expect((await two.call("Unmount", { Name: "v1", ID: "c2" })).status).toBe(200);
    expect((await one.call("Remove", { Name: "v1" })).status).toBe(200);
    measured.removedOnNode2 = await until(async () => !(await two.names()).includes("v1"), 1000, "v1 gone");
    expect(await keys()).toEqual([]); // definition, guard and markers
    expect(await readFile(join(remote, "from-node2.txt"), "utf8")).toBe("node2\n"); // the data stays
  });

  it("a node lacking the credentials profile a definition names says so in Status and in Mount's Err", async () => {
    await writeSshProfile(sshd, daemons[0]?.secretsDir ?? "", "only-node1");
    expect((await one.create("v3", sshVolume(sshd, remote, "only-node1"))).status).toBe(200);
    await until(async () => /profile "only-node1" is missing/.test(await two.catalog("v3")), 1000, "Status");
    expect(await two.catalog("v3")).toMatch(
      /ok; credentials profile "only-node1" is missing on this node: copy it here from the node that created the volume/,
    );
    expect(await one.catalog("v3")).toBe(`${url} ok`);
    const failed = await two.call("Mount", { Name: "v3", ID: "c3" });
    expect(failed.status).toBe(500);
    expect(failed.json.Err).toMatch(/credentials profile "only-node1" not found/);
    await writeSshProfile(sshd, node2.secretsDir, "only-node1");
    measured.profileNoticed = await until(
      async () => (await two.catalog("v3")) === `${url} ok`,
      7000,
      "profile",
    );
    expect((await two.call("Mount", { Name: "v3", ID: "c3" })).status).toBe(200);
    expect((await two.call("Unmount", { Name: "v3", ID: "c3" })).status).toBe(200);
    expect((await one.call("Remove", { Name: "v3" })).status).toBe(200);
  });

  it("a node switched from local to the catalog publishes its volumes; a conflict stays local", async () => {
    expect((await one.create("clash", sshVolume(sshd, remote))).status).toBe(200);
    const local = await startVolgate({
      prepare: ({ secretsDir }) => writeSshProfile(sshd, secretsDir).then(() => {}),
    });
    daemons.push(local);
    expect((await driver(local).create("mine", sshVolume(sshd, remote))).status).toBe(200);
    expect((await driver(local).create("clash", { ...sshVolume(sshd, remote), ro: "true" })).status).toBe(
      200,
    );
    await local.kill();
    const switched = await startVolgate({
      env: {
        VOLGATE_STATE_DIR: local.stateDir,
        VOLGATE_ROOT: local.root,
        VOLGATE_SECRETS_DIR: local.secretsDir,
        VOLGATE_CATALOG: url,
        VOLGATE_NODE_NAME: "node3",
      },
    });
    daemons.push(switched);
    const three = driver(switched);
    await switched.waitForLog((l) => l.msg === "volume catalog in sync");
    measured.publishedSeenOnNode1 = await until(
      async () => (await one.names()).includes("mine"),
      3000,
      "mine",
    );
    expect(await keys("/volgate/volumes/")).toEqual(["/volgate/volumes/clash", "/volgate/volumes/mine"]);
    const clash = await etcd.etcdctl(["get", "--print-value-only", "/volgate/volumes/clash"]);
    expect(JSON.parse(clash.stdout).options.ro).toBeUndefined(); // never overwritten
    expect(await three.catalog("clash")).toMatch(/ok; defined here otherwise than in the catalog/);
    expect(switched.logs().some((l) => /conflicts with the catalog/.test(l.msg))).toBe(true);
    // Removing the local one touches the catalog's not, which shows here from then on.
    expect((await three.call("Remove", { Name: "clash" })).status).toBe(200);
    expect(await keys("/volgate/volumes/")).toContain("/volgate/volumes/clash");
    expect(await three.names()).toEqual(["clash", "mine"]);
    expect(await three.catalog("clash")).toBe(`${url} ok`);
    for (const name of ["clash", "mine"]) expect((await one.call("Remove", { Name: name })).status).toBe(200);
  });
});
