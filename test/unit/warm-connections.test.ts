/** Warm connections (issue 9 item 4): a connection outlives its last volume for a grace period. */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { create, type Served, serve } from "../support/served.ts";

let s: Served;
afterEach(async () => {
  await s.close();
});

const mount = (id: string, name = "v") => s.call("/VolumeDriver.Mount", { Name: name, ID: id });
const unmount = (id: string, name = "v") => s.call("/VolumeDriver.Unmount", { Name: name, ID: id });
const connMounts = () => [...s.host.table.keys()].filter((p) => p.startsWith(join(s.root, "conns")));

describe("warm connections", () => {
  it("keep the connection after the last unmount, reuse it, and unmount it after the grace period", async () => {
    s = await serve({ connectionGraceMs: 300 });
    await s.call("/VolumeDriver.Create", create("v"));
    await mount("a");
    await unmount("a");
    expect(s.host.table.has(s.driver.mountpoint("v"))).toBe(false); // the volume's bind is gone
    expect(connMounts()).toHaveLength(1); // its connection stays warm
    await mount("b");
    expect(s.host.callsOf("fakefs")).toHaveLength(1); // no second login
    await unmount("b");
    await new Promise((r) => setTimeout(r, 450));
    expect(connMounts()).toEqual([]);
  });

  it("0 restores the old behaviour: the last unmount takes the connection down", async () => {
    s = await serve({ connectionGraceMs: 0 });
    await s.call("/VolumeDriver.Create", create("v"));
    await mount("a");
    await unmount("a");
    expect(connMounts()).toEqual([]);
  });

  it("Remove takes a warm connection down at once", async () => {
    s = await serve({ connectionGraceMs: 60_000 });
    await s.call("/VolumeDriver.Create", create("v"));
    await mount("a");
    await unmount("a");
    expect(connMounts()).toHaveLength(1);
    expect((await s.call("/VolumeDriver.Remove", { Name: "v" })).status).toBe(200);
    expect(connMounts()).toEqual([]);
  });

  it("a warm connection that died is dropped by the health check; the next Mount makes a new one", async () => {
    s = await serve({ connectionGraceMs: 60_000 });
    await s.call("/VolumeDriver.Create", create("v"));
    await mount("a");
    await unmount("a");
    const [conn] = connMounts();
    if (!conn) throw new Error("no warm connection");
    s.host.stale.add(conn);
    await s.connections.checkHealth();
    expect(connMounts()).toEqual([]);
    expect((await mount("b")).status).toBe(200);
    expect(s.host.callsOf("fakefs")).toHaveLength(2);
    await unmount("b");
    await s.connections.closeIdle();
    expect(connMounts()).toEqual([]);
  });

  it("shutdown unmounts warm connections and leaves those in use", async () => {
    s = await serve({ connectionGraceMs: 60_000 });
    await s.call("/VolumeDriver.Create", create("v"));
    s.host.servers.set("srv2", new Set(["data"]));
    await s.call("/VolumeDriver.Create", create("w", { backend: "fake", server: "srv2" }));
    await mount("a");
    await mount("a", "w");
    await unmount("a", "w");
    expect(connMounts()).toHaveLength(2);
    await s.connections.closeIdle();
    expect(connMounts()).toHaveLength(1);
    await unmount("a");
  });
});
