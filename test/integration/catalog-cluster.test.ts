/**
 * The shared catalog on a 3-member etcd cluster over TLS (client certificates) with password auth
 * limited to volgate's prefix, all of it from a credentials profile (VOLGATE_CATALOG_CREDENTIALS),
 * and real daemons with real sshfs volumes. One member down (each in turn): everything works and
 * Status stays ok; quorum lost: the read-only behaviour of issue 8 item 4; quorum back: writable.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogNode, catalogUrl, driver, sshVolume, until } from "../support/catalog.ts";
import { removeDirSafely } from "../support/dockerd.ts";
import { startEtcd, type TestEtcd } from "../support/etcd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { startSshd, type TestSshd } from "../support/sshd.ts";
import type { Volgate } from "../support/volgate.ts";

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push("root (FUSE mounts)");
if (!existsSync("/dev/fuse")) missing.push("/dev/fuse");
const canRun = tierCanRun("integration (catalog)", ["etcd", "etcdctl", "sshd", "sshfs", "openssl"], missing);

describe.skipIf(!canRun)("a shared catalog on a 3-member etcd over TLS with auth", () => {
  let etcd: TestEtcd;
  let sshd: TestSshd;
  let remote: string;
  let url: string;
  const daemons: Volgate[] = [];
  let one: ReturnType<typeof driver>;
  let two: ReturnType<typeof driver>;
  const measured: Record<string, number> = {};
  const states = async () => `${await one.catalog("base")} | ${await two.catalog("base")}`;
  const ok = async () => (await states()) === `${url} ok | ${url} ok`;

  /** A linearizable read through these members answers: the cluster has a leader. */
  const answers = async (hosts: readonly string[]) => {
    const client = new Etcd3(etcd.clientOptions({ hosts, deadlineMs: 500 }));
    try {
      return await client.get("/volgate/volumes/base").then(
        () => true,
        () => false,
      );
    } finally {
      client.close();
    }
  };

  beforeAll(async () => {
    [etcd, sshd] = await Promise.all([startEtcd({ members: 3, tls: true, auth: true }), startSshd()]);
    remote = join(sshd.home, `catalog-cluster-${process.pid}`);
    await mkdir(remote, { recursive: true });
    await chown(remote, sshd.uid, sshd.gid);
    url = catalogUrl(etcd);
    daemons.push(
      ...(await Promise.all([catalogNode(etcd, sshd, "node1"), catalogNode(etcd, sshd, "node2")])),
    );
    [one, two] = daemons.map(driver) as [typeof one, typeof two];
    for (const d of daemons) await d.waitForLog((l) => l.msg === "volume catalog in sync");
    expect((await one.create("base", sshVolume(sshd, remote))).status).toBe(200);
    await until(async () => (await two.names()).includes("base"), 1000, "base on node2");
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await Promise.all([etcd?.stop(), sshd?.stop()]);
    if (remote) await removeDirSafely(remote);
    console.log(`catalog cluster timings (ms): ${JSON.stringify(measured)}`);
  });

  it("keeps to its prefix over TLS, as a user limited to it, and no secret enters etcd", async () => {
    expect(url).toMatch(/^etcds:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/volgate\/$/);
    const all = await etcd.etcdctl(["get", "", "--from-key", "--keys-only"]);
    expect(all.code, all.stderr).toBe(0);
    const keys = all.stdout.split("\n").filter(Boolean);
    expect(keys).toContain("/volgate/volumes/base");
    expect(keys.filter((k) => !k.startsWith("/volgate/"))).toEqual([]);
    const values = (await etcd.etcdctl(["get", "", "--from-key"])).stdout;
    for (const secret of [sshd.password, etcd.auth?.volgate.password ?? "", etcd.auth?.root.password ?? ""]) {
      expect(secret.length).toBeGreaterThan(8);
      expect(values).not.toContain(secret);
    }
    // The same user, pointed at a prefix its role does not cover: etcd refuses, and volgate says so.
    const outside = await catalogNode(etcd, sshd, "node3", {
      url: catalogUrl(etcd, etcd.endpoints, "/other/"),
    });
    daemons.push(outside);
    const refused = await driver(outside).create("v", sshVolume(sshd, remote));
    expect(refused.status).toBe(500);
    expect(refused.json.Err).toMatch(/the volume catalog etcds:\/\/.*\/other\/ is .*permission denied/);
    // A node whose catalog credentials profile is not there says which and what to do.
    const lacking = await catalogNode(etcd, sshd, "node4", {
      env: { VOLGATE_CATALOG_CREDENTIALS: "absent" },
    });
    daemons.push(lacking);
    await lacking.waitForLog((l) => l.msg === "cannot use the volume catalog");
    const why = await driver(lacking).create("v", sshVolume(sshd, remote));
    expect(why.json.Err).toMatch(
      /the volume catalog etcds:.* is unusable: credentials profile "absent" not found: create the directory .*; fix that, then restart volgate/,
    );
  });

  it("with any one member down (once the others have a leader), creates, mounts and removes work, and Status is ok", async () => {
    for (const member of etcd.members) {
      const killed = performance.now();
      await member.kill();
      // Killing the leader leaves nothing writable until the others elect one (~1.5 s here).
      const living = etcd.members.filter((m) => m !== member).map((m) => m.endpoint);
      await until(() => answers(living), 10_000, "a leader among the living");
      // ...and each daemon's copy follows again (its watch may have been on that member).
      expect((await one.create(`settle-${member.name}`, sshVolume(sshd, remote))).status).toBe(200);
      await until(async () => (await two.names()).includes(`settle-${member.name}`), 5000, "settled");
      expect((await two.call("Remove", { Name: `settle-${member.name}` })).status).toBe(200);
      await until(async () => !(await one.names()).includes(`settle-${member.name}`), 5000, "settled");
      measured[`${member.name}.down.settled`] = Math.round(performance.now() - killed);
      for (let i = 0; i < 5; i++) {
        const name = `${member.name}-${i}`;
        const created = await one.create(name, sshVolume(sshd, remote));
        expect(created.status, created.text).toBe(200);
        await until(async () => (await two.names()).includes(name), 1000, `${name} on node2`);
        expect(await states(), `${member.name} down`).toBe(`${url} ok | ${url} ok`);
        const mounted = await two.call("Mount", { Name: name, ID: "c" });
        expect(mounted.status, mounted.text).toBe(200);
        const refused = await one.call("Remove", { Name: name });
        expect(refused.json.Err).toMatch(/in use on node node2/);
        expect((await two.call("Unmount", { Name: name, ID: "c" })).status).toBe(200);
        expect((await one.call("Remove", { Name: name })).status).toBe(200);
        await until(async () => !(await two.names()).includes(name), 1000, `${name} gone from node2`);
      }
      const started = performance.now();
      await member.start();
      measured[`${member.name}.restart`] = Math.round(performance.now() - started);
      expect(await states(), `${member.name} back`).toBe(`${url} ok | ${url} ok`);
    }
  });

  it("without a quorum: known volumes work, Create and Remove fail at once, saying why; then it heals", async () => {
    const killed = await etcd.loseQuorum();
    measured.quorumLossNoticed = await until(
      async () =>
        /unreachable since/.test(await one.catalog("base")) &&
        /unreachable since/.test(await two.catalog("base")),
      20_000,
      "quorum loss noticed",
    );
    expect(await two.catalog("base")).toMatch(/unreachable since .*: this node works from its copy/);
    for (const d of [one, two]) {
      expect(await d.names()).toEqual(["base"]);
      expect((await d.call("Path", { Name: "base" })).status).toBe(200);
    }
    const mounted = await two.call("Mount", { Name: "base", ID: "q" });
    expect(mounted.status, mounted.text).toBe(200);
    await writeFile(join(mounted.json.Mountpoint, "no-quorum.txt"), "still writable\n");
    expect(await readFile(join(remote, "no-quorum.txt"), "utf8")).toBe("still writable\n");
    expect((await two.call("Unmount", { Name: "base", ID: "q" })).status).toBe(200);
    for (const refused of [
      await one.create("nq", sshVolume(sshd, remote)),
      await two.call("Remove", { Name: "base" }),
    ]) {
      expect(refused.status).toBe(500);
      expect(refused.json.Err).toMatch(
        /the volume catalog etcds:.* is unreachable .*existing volumes keep working/,
      );
    }
    await Promise.all(killed.map((m) => m.start()));
    measured.quorumBackInSync = await until(ok, 20_000, "in sync after the quorum came back", states);
    expect((await two.create("nq", sshVolume(sshd, remote))).status).toBe(200);
    await until(async () => (await one.names()).includes("nq"), 1000, "nq on node1");
  });
});
