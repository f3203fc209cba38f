/** SANITY.md group F: concurrency against a model, and a seeded storm that keeps every invariant. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { FakeHost } from "../fakes/host.ts";
import { reconcileWorld } from "../fakes/world.ts";
import { create, type Served, serve } from "../support/served.ts";

let s: Served | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

describe("concurrency", () => {
  it("50 parallel Creates of one name give one volume", async () => {
    s = await serve();
    const served = s;
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => served.call("/VolumeDriver.Create", create("x"))),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    expect(served.state.size).toBe(1);
    await served.checkInvariants();
  });

  it("200 random parallel Mount/Unmount over 20 IDs match a model", async () => {
    s = await serve();
    const served = s;
    await served.call("/VolumeDriver.Create", create("v"));
    const model = new Map<string, number>();
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const ops = Array.from({ length: 200 }, () => ({
      mount: random() < 0.6,
      id: `c${Math.floor(random() * 20)}`,
    }));
    // Each ID's operations run in order (as Docker does per container); IDs run in parallel.
    const byId = new Map<string, typeof ops>();
    for (const o of ops) byId.set(o.id, [...(byId.get(o.id) ?? []), o]);
    await Promise.all(
      [...byId.values()].map(async (list) => {
        for (const op of list) {
          const url = op.mount ? "/VolumeDriver.Mount" : "/VolumeDriver.Unmount";
          expect((await served.call(url, { Name: "v", ID: op.id })).status).toBe(200);
          const n = model.get(op.id) ?? 0;
          if (op.mount) model.set(op.id, n + 1);
          else if (n > 1) model.set(op.id, n - 1);
          else model.delete(op.id);
        }
      }),
    );
    expect(served.state.get("v")?.mounts).toEqual(Object.fromEntries(model));
    await served.checkInvariants();
  });

  it("a seeded storm of create/mount/unmount/remove/restart keeps every invariant", async () => {
    const dir = await mkdtemp(join(tmpdir(), "volgate-storm-"));
    const op = fc.oneof(
      fc.record({
        kind: fc.constant("create" as const),
        vol: fc.integer({ min: 0, max: 3 }),
        share: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant("mount" as const),
        vol: fc.integer({ min: 0, max: 3 }),
        id: fc.integer({ min: 0, max: 4 }),
      }),
      fc.record({
        kind: fc.constant("unmount" as const),
        vol: fc.integer({ min: 0, max: 3 }),
        id: fc.integer({ min: 0, max: 4 }),
      }),
      fc.record({ kind: fc.constant("remove" as const), vol: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ kind: fc.constant("restart" as const), crash: fc.boolean() }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
          const host = new FakeHost();
          host.servers.set("srv", new Set(["data", "other"]));
          await rm(join(dir, "state"), { recursive: true, force: true });
          let served = await serve({ dir, host });
          try {
            for (const o of ops) {
              if (o.kind === "restart") {
                if (o.crash) for (const p of host.table.keys()) host.stale.add(p);
                await served.close();
                served = await serve({ dir, host });
                await reconcileWorld(served);
              } else if (o.kind === "create") {
                const share = o.share ? "data" : "other";
                await served.call(
                  "/VolumeDriver.Create",
                  create(`v${o.vol}`, { backend: "fake", server: "srv", share }),
                );
              } else if (o.kind === "remove") {
                await served.call("/VolumeDriver.Remove", { Name: `v${o.vol}` });
              } else {
                const url = o.kind === "mount" ? "/VolumeDriver.Mount" : "/VolumeDriver.Unmount";
                await served.call(url, { Name: `v${o.vol}`, ID: `c${o.id}` });
              }
              await served.checkInvariants();
            }
          } finally {
            await served.close();
          }
        }),
        { seed: 20261123, numRuns: 60 },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
