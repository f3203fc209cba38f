/**
 * Issue 8 item 4 on a real etcd (one member) and real daemons: node1 reaches etcd directly, node2
 * through a relay the test can cut. With etcd unreachable, known volumes keep working from the
 * node's copy (inspect, ls, path, a real sshfs mount and unmount), Create and Remove fail at once
 * saying why, Status says since when; after a reconnect the copy resyncs from a full read; a daemon
 * started while etcd is down listens at once, with 10,000 volumes in its copy.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogNode, driver, seedCatalog, sshVolume, until } from "../support/catalog.ts";
import { removeDirSafely } from "../support/dockerd.ts";
import { startEtcd, type TestEtcd } from "../support/etcd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { startSshd, type TestSshd } from "../support/sshd.ts";
import { type TcpRelay, tcpRelay } from "../support/tcp-relay.ts";
import type { Volgate } from "../support/volgate.ts";

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push("root (FUSE mounts)");
if (!existsSync("/dev/fuse")) missing.push("/dev/fuse");
const canRun = tierCanRun("integration (catalog)", ["etcd", "etcdctl", "sshd", "sshfs"], missing);

const SINCE = /unreachable since (\d{4}-\d\d-\d\dT[\d:.]+Z)/;

describe.skipIf(!canRun)("a shared catalog while etcd is unreachable", () => {
  let etcd: TestEtcd;
  let sshd: TestSshd;
  let relay: TcpRelay;
  let remote: string;
  let node1: Volgate;
  let node2: Volgate;
  let one: ReturnType<typeof driver>;
  let two: ReturnType<typeof driver>;
  let url2: string;
  const measured: Record<string, number> = {};

  beforeAll(async () => {
    [etcd, sshd] = await Promise.all([startEtcd(), startSshd()]);
    remote = join(sshd.home, `catalog-outage-${process.pid}`);
    await mkdir(remote, { recursive: true });
    await chown(remote, sshd.uid, sshd.gid);
    relay = await tcpRelay(Number(new URL(etcd.endpoints[0] ?? "").port));
    url2 = `etcd://127.0.0.1:${relay.port}/volgate/`;
    [node1, node2] = await Promise.all([
      catalogNode(etcd, sshd, "node1"),
      catalogNode(etcd, sshd, "node2", { url: url2 }),
    ]);
    one = driver(node1);
    two = driver(node2);
    for (const d of [node1, node2]) await d.waitForLog((l) => l.msg === "volume catalog in sync");
  });
  afterAll(async () => {
    for (const d of [node2, node1]) await d?.stop();
    await relay?.cut();
    await Promise.all([etcd?.stop(), sshd?.stop()]);
    if (remote) await removeDirSafely(remote);
    console.log(`catalog outage timings (ms): ${JSON.stringify(measured)}`);
  });

  it("after a reconnect node2's copy resyncs from a full read: what changed meanwhile, deletions too", async () => {
    for (const name of ["kept", "deleted"])
      expect((await one.create(name, sshVolume(sshd, remote))).status).toBe(200);
    await until(async () => (await two.names()).join() === "deleted,kept", 1000, "both on node2");
    const cutAt = Date.now();
    await relay.cut();
    measured.cutNoticed = await until(
      async () => SINCE.test(await two.catalog("kept")),
      10_000,
      "cut noticed",
    );
    const since = Date.parse(SINCE.exec(await two.catalog("kept"))?.[1] ?? "");
    expect(since).toBeGreaterThanOrEqual(cutAt - 5);
    expect((await one.call("Remove", { Name: "deleted" })).status).toBe(200);
    expect((await one.create("added", sshVolume(sshd, remote))).status).toBe(200);
    expect(await two.names()).toEqual(["deleted", "kept"]); // its copy, as it was
    await relay.heal();
    measured.resynced = await until(
      async () => (await two.names()).join() === "added,kept",
      10_000,
      "resync",
    );
    // The copy is brought in line first, then the watch and the markers: then it says ok.
    await until(async () => (await two.catalog("added")) === `${url2} ok`, 1000, "ok after resync");
  });

  it("a node cut off past its lease loses its markers; a volume removed meanwhile stays there until unmounted", async () => {
    expect((await one.create("held", sshVolume(sshd, remote))).status).toBe(200);
    await until(async () => (await two.names()).includes("held"), 1000, "held on node2");
    const mounted = await two.call("Mount", { Name: "held", ID: "c" });
    expect(mounted.status, mounted.text).toBe(200);
    expect((await one.call("Remove", { Name: "held" })).json.Err).toMatch(/in use on node node2/);
    await relay.cut();
    // node2's lease (15 s) runs out without it: etcd drops its marker, and node1 may remove.
    measured.leaseExpired = await until(
      async () =>
        (await etcd.etcdctl(["get", "--prefix", "--keys-only", "/volgate/inuse/"])).stdout.trim() === "",
      25_000,
      "node2's marker gone with its lease",
    );
    expect((await one.call("Remove", { Name: "held" })).status).toBe(200);
    await relay.heal();
    await until(async () => (await two.catalog("held")).includes(" ok;"), 10_000, "node2 in sync again");
    expect(await two.catalog("held")).toMatch(
      /removed from the catalog by another node, gone here after its last unmount/,
    );
    await writeFile(join(mounted.json.Mountpoint, "still.txt"), "still mounted\n"); // the mount goes on
    expect(await readFile(join(remote, "still.txt"), "utf8")).toBe("still mounted\n");
    expect((await two.call("Unmount", { Name: "held", ID: "c" })).status).toBe(200);
    expect(await two.names()).not.toContain("held");
  }, 60_000);

  it("with etcd down, known volumes work from the copy; Create and Remove fail at once, saying why", async () => {
    const known = "kept";
    const member = etcd.members[0];
    await member?.kill();
    const seen = await until(
      async () => SINCE.test(await one.catalog(known)) && SINCE.test(await two.catalog(known)),
      10_000,
      "down noticed",
    );
    measured.downNoticed = seen;
    for (const d of [one, two]) {
      expect(await d.catalog(known)).toMatch(/unreachable since .*: this node works from its copy/);
      expect(await d.names()).toEqual(["added", "kept"]);
      expect((await d.call("Path", { Name: known })).status).toBe(200);
    }
    const mounted = await two.call("Mount", { Name: known, ID: "while-down" });
    expect(mounted.status, mounted.text).toBe(200);
    await writeFile(join(mounted.json.Mountpoint, "while-down.txt"), "written while etcd was down\n");
    expect(await readFile(join(remote, "while-down.txt"), "utf8")).toBe("written while etcd was down\n");
    expect((await two.call("Unmount", { Name: known, ID: "while-down" })).status).toBe(200);
    for (const [d, answer] of [
      [one, () => one.create("new", sshVolume(sshd, remote))],
      [two, () => two.call("Remove", { Name: known })],
    ] as const) {
      const started = performance.now();
      const refused = await answer();
      expect(performance.now() - started).toBeLessThan(1000); // at once, not at a deadline
      expect(refused.status).toBe(500);
      expect(refused.json.Err).toMatch(
        /the volume catalog etcd:\/\/127\.0\.0\.1:\d+\/volgate\/ is unreachable \(since .*\): creating and removing volumes need it; existing volumes keep working/,
      );
      expect(await d.names()).toEqual(["added", "kept"]); // never a definition on one node only
    }
    await member?.start();
    measured.backInSync = await until(async () => (await one.catalog(known)).endsWith(" ok"), 10_000, "back");
    // The 1 s promise is between nodes that follow the catalog: node2 reconnects on its own schedule.
    await until(async () => (await two.catalog(known)).endsWith(" ok"), 10_000, "node2 back");
    expect((await one.create("new", sshVolume(sshd, remote))).status).toBe(200);
    await until(async () => (await two.names()).includes("new"), 1000, "new on node2");
  });

  it("a daemon started while etcd is down listens at once and serves its copy of 10,000 volumes", async () => {
    measured.seed10k = await seedCatalog(etcd, 10_000, (i) => `seeded-${i}`);
    const synced = performance.now();
    await until(async () => (await two.names()).length === 10_003, 20_000, "10,000 on node2");
    measured.sync10k = Math.round(performance.now() - synced);
    await etcd.members[0]?.kill();
    await node2.kill();
    measured.restart10k = await node2.restart();
    const listening = node2
      .logs()
      .filter((l) => l.msg === "listening")
      .at(-1);
    measured.listening10kSelf = listening?.ms;
    expect(listening?.volumes).toBe(10_003);
    console.log(
      `started with etcd down and 10,000 volumes in the copy: listening after ${measured.restart10k} ms (${listening?.ms} ms by its own clock)`,
    );
    const got = await two.call("Get", { Name: "seeded-9999" });
    expect(got.status).toBe(200);
    expect(got.json.Volume.CreatedAt).toBe(new Date(1_700_000_009_999).toISOString());
    expect(got.json.Volume.Status.catalog).toMatch(/(connecting|unreachable) since/);
    expect(await two.names()).toHaveLength(10_003);
    await etcd.members[0]?.start();
    await until(async () => (await two.catalog("seeded-1")).endsWith(" ok"), 15_000, "in sync again");
  });
});
