/** SANITY.md group G (restart) with the fake host playing the kernel that outlives volgate. */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { findCheckDirs } from "../../src/restore.ts";
import { FakeHost } from "../fakes/host.ts";
import { reconcileWorld } from "../fakes/world.ts";
import { create, type Served, serve } from "../support/served.ts";

let dir: string;
let host: FakeHost;
let s: Served;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "volgate-restart-"));
  host = new FakeHost();
  host.servers.set("srv", new Set(["data", "other"]));
  s = await serve({ dir, host });
});
afterEach(async () => {
  await s.close();
  await rm(dir, { recursive: true, force: true });
});

/** A new volgate on the same state dir and the same (fake) kernel. */
async function restart(): Promise<Served> {
  await s.close();
  s = await serve({ dir, host });
  return s;
}

describe("restart", () => {
  it("Get and List are identical (same CreatedAt) before any remount", async () => {
    await s.call("/VolumeDriver.Create", create("a"));
    await s.call("/VolumeDriver.Create", create("b", { backend: "fake", server: "srv", share: "other" }));
    const before = (await s.call("/VolumeDriver.List", {})).json;
    const getBefore = (await s.call("/VolumeDriver.Get", { Name: "a" })).json.Volume.CreatedAt;
    await restart();
    expect((await s.call("/VolumeDriver.List", {})).json).toEqual(before);
    expect((await s.call("/VolumeDriver.Get", { Name: "a" })).json.Volume.CreatedAt).toBe(getBefore);
  });

  it("adopts live mounts, and Unmount(oldID) works after the restart", async () => {
    await s.call("/VolumeDriver.Create", create("a"));
    await s.call("/VolumeDriver.Mount", { Name: "a", ID: "old" });
    const fakefsCalls = host.callsOf("fakefs").length;
    await restart();
    expect(await reconcileWorld(s)).toEqual({ adopted: 1, remounted: 0, failed: 0, cleaned: 0 });
    expect(host.callsOf("fakefs")).toHaveLength(fakefsCalls); // nothing mounted twice
    expect((await s.call("/VolumeDriver.Unmount", { Name: "a", ID: "old" })).status).toBe(200);
    expect(host.table.size).toBe(0);
    await s.checkInvariants();
  });

  it("cleans stale mounts after a crash and remounts volumes still in use", async () => {
    await s.call("/VolumeDriver.Create", create("a"));
    await s.call("/VolumeDriver.Mount", { Name: "a", ID: "c1" });
    for (const path of host.table.keys()) host.stale.add(path); // the helper died with volgate
    await restart();
    expect(await reconcileWorld(s)).toMatchObject({ remounted: 1, failed: 0 });
    expect([...host.table.keys()].every((p) => !host.stale.has(p))).toBe(true);
    expect(await s.ctx.mounts.probe(s.driver.mountpoint("a"))).toBe("live");
    await s.checkInvariants();
    await s.call("/VolumeDriver.Unmount", { Name: "a", ID: "c1" });
    await s.checkInvariants();
  });

  it("shows a failed remount in Status, and Get still answers", async () => {
    await s.call("/VolumeDriver.Create", create("a"));
    await s.call("/VolumeDriver.Mount", { Name: "a", ID: "c1" });
    host.table.clear();
    host.faults.set("srv", "fail");
    await restart();
    expect(await reconcileWorld(s)).toMatchObject({ remounted: 0, failed: 1 });
    const status = (await s.call("/VolumeDriver.Get", { Name: "a" })).json.Volume.Status;
    expect(status).toMatchObject({
      mounted: true,
      health: "down",
      lastError: expect.stringMatching(/fakefs/),
    });
    host.faults.delete("srv");
    expect((await s.call("/VolumeDriver.Mount", { Name: "a", ID: "c2" })).status).toBe(200); // Mount repairs it
    await s.call("/VolumeDriver.Unmount", { Name: "a", ID: "c1" });
    await s.call("/VolumeDriver.Unmount", { Name: "a", ID: "c2" });
    await s.checkInvariants();
  });

  it("takes down connection mounts no volume uses", async () => {
    const orphan = join(s.root, "conns", "0123456789abcdef");
    await mkdir(orphan, { recursive: true });
    host.table.set(orphan, {
      mountPoint: orphan,
      fsType: "fuse.fakefs",
      source: "srv",
      options: "",
      root: "/",
      dev: "0:7",
    });
    await restart();
    expect(await reconcileWorld(s)).toMatchObject({ cleaned: 1 });
    expect(host.table.has(orphan)).toBe(false);
    expect(await readdir(join(s.root, "conns"))).toEqual([]);
  });

  it("takes down check mounts a crash left in the work dir, listed before listening", async () => {
    const left = join(s.ctx.workDir, "nfs-check-AbC123");
    await mkdir(left, { recursive: true });
    host.table.set(left, {
      mountPoint: left,
      fsType: "nfs4",
      source: "srv:/exports",
      options: "",
      root: "/",
      dev: "0:8",
    });
    await restart();
    const checkDirs = await findCheckDirs(s.ctx.workDir);
    expect(checkDirs).toEqual([left]);
    const report = await reconcileWorld(s, checkDirs);
    expect(report.cleaned).toBe(1);
    expect(host.table.has(left)).toBe(false);
    expect(await readdir(s.ctx.workDir).catch(() => [])).toEqual([]);
  });

  it("quarantines a corrupt state file instead of wiping it", async () => {
    await s.call("/VolumeDriver.Create", create("a"));
    await s.close();
    await writeFile(join(s.stateDir, "state.json"), '{"version":1,"volumes":[{"na');
    s = await serve({ dir, host });
    expect(s.state.size).toBe(0);
    const files = await readdir(s.stateDir);
    const quarantined = files.find((f) => f.startsWith("state.json.corrupt-"));
    expect(quarantined).toBeDefined();
    expect(await readFile(join(s.stateDir, quarantined ?? ""), "utf8")).toContain('"na');
    expect(s.logs.some((l) => l.level === 50 && /moved aside/.test(String(l.msg)))).toBe(true);
  });

  it("refuses state from a newer volgate by quarantining it with a clear log", async () => {
    await s.close();
    await writeFile(join(s.stateDir, "state.json"), '{"version":99,"volumes":[]}');
    s = await serve({ dir, host });
    expect(JSON.stringify(s.logs)).toContain("written by a newer volgate");
  });
});
