/**
 * SANITY.md group J at the driver: a state write that fails (the store's own failure is real in
 * state.test.ts; here it is injected) is an Err that changes nothing, and the start-up restore
 * never races live requests. Each case is a defect an earlier volgate had.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Deadline } from "../../src/deadline.ts";
import type { Change } from "../../src/state/store.ts";
import { reconcileWorld } from "../fakes/world.ts";
import { create, type Served, serve } from "../support/served.ts";

let s: Served;
beforeEach(async () => {
  s = await serve();
});
afterEach(async () => {
  await s.checkInvariants();
  await s.close();
});

const mount = (id: string, name = "v") => s.call("/VolumeDriver.Mount", { Name: name, ID: id });
const unmount = (id: string, name = "v") => s.call("/VolumeDriver.Unmount", { Name: name, ID: id });
const mounted = () => [...s.host.table.keys()].filter((p) => p.startsWith(s.root));

/** Make every state write fail as a full disk would, until the returned function is called. */
function diskFull(): () => void {
  const real = s.state.update.bind(s.state);
  s.state.update = (_changes: readonly Change[]) =>
    Promise.reject(new Error("cannot save volgate's state (ENOSPC: the disk is full): nothing was changed"));
  return () => {
    s.state.update = real;
  };
}

describe("a failed state write changes nothing", () => {
  it("List shows a volume created after an earlier List", async () => {
    expect((await s.call("/VolumeDriver.List", {})).json).toEqual({ Volumes: [] });
    await s.call("/VolumeDriver.Create", create("v"));
    expect(
      (await s.call("/VolumeDriver.List", {})).json.Volumes.map((v: { Name: string }) => v.Name),
    ).toEqual(["v"]);
  });

  it("Create: an Err, no record in memory, and a retry fails the same way", async () => {
    const fixed = diskFull();
    for (let attempt = 0; attempt < 2; attempt++) {
      const answer = await s.call("/VolumeDriver.Create", create("v"));
      expect(answer.status).toBe(500);
      expect(answer.json.Err).toMatch(/ENOSPC/);
      expect((await s.call("/VolumeDriver.Get", { Name: "v" })).status).toBe(500);
    }
    fixed();
    expect((await s.call("/VolumeDriver.Create", create("v"))).status).toBe(200);
  });

  it("Mount: an Err, no count kept, nothing left mounted", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    const fixed = diskFull();
    const answer = await mount("a");
    expect(answer.status).toBe(500);
    expect(s.state.get("v")?.mounts).toEqual({});
    expect(mounted()).toEqual([]);
    fixed();
    expect((await s.call("/VolumeDriver.Remove", { Name: "v" })).status).toBe(200);
  });

  it("Unmount: an Err, the count and the mount kept together; a retry once fixed releases all", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    await mount("a");
    const fixed = diskFull();
    expect((await unmount("a")).status).toBe(500);
    expect(s.state.get("v")?.mounts).toEqual({ a: 1 });
    expect(mounted()).toHaveLength(2); // the connection and the volume's bind
    await s.checkInvariants();
    fixed();
    expect((await unmount("a")).status).toBe(200);
    expect(mounted()).toEqual([]);
    expect((await s.call("/VolumeDriver.Remove", { Name: "v" })).status).toBe(200);
  });

  it("Remove: an Err, the volume still there", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    const fixed = diskFull();
    expect((await s.call("/VolumeDriver.Remove", { Name: "v" })).status).toBe(500);
    expect((await s.call("/VolumeDriver.Get", { Name: "v" })).status).toBe(200);
    fixed();
  });
});

describe("restore never races live requests", () => {
  it("the orphan sweep leaves alone a connection a Mount is bringing up", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    s.host.slow.set("srv", 300); // the connection's mount takes a while
    const pending = mount("a");
    await new Promise((r) => setTimeout(r, 50));
    await reconcileWorld(s); // its sweep runs while the connection comes up
    const answer = await pending;
    expect(answer.status).toBe(200);
    expect(await s.ctx.mounts.probe(answer.json.Mountpoint)).toBe("live");
    await unmount("a");
  });

  it("does not act on a volume removed and created again since start", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    await mount("a");
    for (const p of s.host.table.keys()) s.host.stale.add(p); // after a crash, the mounts are dead
    const record = s.state.get("v");
    if (!record) throw new Error("missing");
    // The restore pass has its list; before it reaches "v", "v" is removed and created anew.
    let release = () => {};
    const held = s.driver.exclusive("v", () => new Promise<void>((r) => (release = r)));
    const report = reconcileWorld(s);
    await s.state.remove("v");
    await s.state.put({ ...record, createdAt: new Date(Date.now() + 1000).toISOString(), mounts: {} });
    release();
    await held;
    expect((await report).remounted).toBe(0);
    for (const p of [...s.host.table.keys()].reverse()) {
      await s.ctx.runner.run("umount", ["-l", p], { deadline: Deadline.after(1000) });
    }
  });

  it("an aborted re-attach does not count its mount ID", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    await mount("a");
    const target = s.driver.mountpoint("v");
    s.host.stale.add(target); // the volume's bind died; "a" still holds it
    const controller = new AbortController();
    controller.abort();
    await expect(s.driver.mount("v", "b", controller.signal)).rejects.toThrow(/aborted/);
    expect(s.state.get("v")?.mounts).toEqual({ a: 1 });
    await unmount("a");
  });
});

describe("bounded input", () => {
  it("refuses a mount ID over 256 characters and a name over 255, storing nothing", async () => {
    await s.call("/VolumeDriver.Create", create("v"));
    const long = await mount("x".repeat(257));
    expect(long.status).toBe(500);
    expect(long.json.Err).toMatch(/mount ID is longer than 256/);
    expect(s.state.get("v")?.mounts).toEqual({});
    const name = await s.call("/VolumeDriver.Get", { Name: "n".repeat(256) });
    expect(name.json.Err).toMatch(/invalid volume name: longer than 255/);
    expect(name.json.Err.length).toBeLessThan(200);
  });
});
