/** The state store: journal + snapshot, 0600, one writer, nothing applied that is not durable, crash safe. */
import { execFile, spawn } from "node:child_process";
import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readState } from "../../src/state/load.ts";
import type { VolumeRecord } from "../../src/state/records.ts";
import { StateStore } from "../../src/state/store.ts";
import { captureLog } from "../fakes/log.ts";

const run = promisify(execFile);
let dir: string;
let stores: StateStore[];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "volgate-state-"));
  stores = [];
});
afterEach(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  await rm(dir, { recursive: true, force: true });
});

const record = (name: string, extra: Partial<VolumeRecord> = {}): VolumeRecord => ({
  name,
  backend: "fake",
  options: { backend: "fake" },
  secrets: {},
  createdAt: "2026-11-23T12:00:00.000Z",
  subdir: "",
  mounts: {},
  ...extra,
});

async function open(): Promise<{ store: StateStore; logs: Array<Record<string, unknown>> }> {
  const { log, lines } = captureLog();
  const store = await StateStore.load(dir, log);
  stores.push(store);
  return { store, logs: lines };
}

describe("state store", () => {
  it("keeps records, counts and removals across a restart, in 0600 files", async () => {
    const { store } = await open();
    await store.put(record("a"));
    await store.put(record("b"));
    await store.setMounts("a", { x: 2 });
    await store.remove("b");
    await store.close();
    for (const f of await readdir(dir)) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
    const { store: again } = await open();
    expect([...again.values()]).toEqual([record("a", { mounts: { x: 2 } })]);
  });

  it("hands out read-only records: a change goes through the store or not at all", async () => {
    const { store } = await open();
    await store.put(record("a"));
    const got = store.get("a") as { mounts: Record<string, number> };
    expect(() => {
      got.mounts.x = 1;
    }).toThrow();
    expect(store.get("a")?.mounts).toEqual({});
  });

  it("applies a change only once it is durable: a full or read-only disk changes nothing", async () => {
    const { store } = await open();
    await store.put(record("a", { mounts: { x: 1 } }));
    await store.close();
    stores = [];
    // A real small file system, filled up, then made read-only.
    await run("mount", ["-t", "tmpfs", "-o", "size=512k,mode=0700", "tmpfs", dir]);
    try {
      const { store: small } = await open();
      // Big records: every change needs new pages of the small file system.
      const big = { backend: "fake", padding: "x".repeat(64 * 1024) };
      await small.put(record("a", { mounts: { x: 1 }, options: big }));
      await writeFile(join(dir, "filler"), Buffer.alloc(1024 * 1024)).catch(() => {});
      // The journal's last page may still take a few small lines: write until the disk says no.
      let n = 1;
      const full = async () => {
        for (; n < 1000; n++) {
          const failed = await small.setMounts("a", { x: 1, [`f${n}`]: 1 }).then(
            () => undefined,
            (e: Error) => e,
          );
          if (failed) return failed;
        }
        throw new Error("the disk never filled up");
      };
      expect((await full()).message).toMatch(/ENOSPC: the disk is full.*nothing was changed/);
      const before = small.get("a")?.mounts;
      const version = small.version;
      expect(before).not.toHaveProperty(`f${n}`);
      // A retry fails the same way (the failed line was cut off again, so it still does not fit).
      await expect(small.setMounts("a", { x: 1, [`f${n}`]: 1 })).rejects.toThrow(/ENOSPC/);
      await expect(small.put(record("b", { options: big }))).rejects.toThrow(/ENOSPC/);
      expect(small.get("a")?.mounts).toEqual(before);
      expect(small.get("b")).toBeUndefined();
      expect(small.version).toBe(version);
      expect((await readState(dir)).get("a")?.mounts).toEqual(before);
      await rm(join(dir, "filler"));
      await small.close();
      // Read-only: volgate still starts from what is there, and every change fails with the reason.
      await run("mount", ["-o", "remount,ro", dir]);
      const { store: ro } = await open();
      expect([...ro.values()].map((r) => [r.name, r.mounts])).toEqual([["a", before]]);
      await expect(ro.setMounts("a", { x: 3 })).rejects.toThrow(/EROFS: the file system is read-only/);
      await expect(ro.remove("a")).rejects.toThrow(/EROFS/);
      await expect(ro.put(record("c"))).rejects.toThrow(/EROFS/);
      expect([...ro.values()].map((r) => [r.name, r.mounts])).toEqual([["a", before]]);
      await run("mount", ["-o", "remount,rw", dir]);
      await ro.setMounts("a", { x: 4 });
      await ro.close();
      stores = [];
      expect((await readState(dir)).get("a")?.mounts).toEqual({ x: 4 });
    } finally {
      await run("umount", ["-l", dir]);
    }
  });

  it("costs one journal line per change, and compacts into a snapshot once the journal is long", async () => {
    const { store } = await open();
    for (let i = 0; i < 1500; i++) await store.put(record(`v${i}`));
    const snapshot = JSON.parse(await readFile(join(dir, "state.json"), "utf8"));
    expect(snapshot.version).toBe(2);
    expect(snapshot.volumes.length).toBeGreaterThanOrEqual(1000);
    const journalLines = (await readFile(join(dir, "state.journal"), "utf8")).trim().split("\n");
    expect(journalLines.length).toBeLessThan(1000);
    expect((await readState(dir)).size).toBe(1500);
  });

  it("lands every one of many concurrent changes, in order", async () => {
    const { store } = await open();
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(record(`v${i}`))));
    await Promise.all([store.setMounts("v1", { a: 1 }), store.setMounts("v1", { a: 2 }), store.remove("v2")]);
    const onDisk = await readState(dir);
    expect(onDisk.size).toBe(49);
    expect(onDisk.get("v1")?.mounts).toEqual({ a: 2 });
    expect(store.get("v1")?.mounts).toEqual({ a: 2 });
  });

  it("drops a torn journal tail, keeps everything before it, and appends after it", async () => {
    const { store } = await open();
    await store.put(record("a"));
    await store.close();
    await appendFile(join(dir, "state.journal"), '{"t":[{"op":"put","v":{"name":"half');
    const { store: again, logs } = await open();
    expect([...again.values()].map((r) => r.name)).toEqual(["a"]);
    expect(logs.some((l) => /torn or corrupt tail/.test(String(l.msg)))).toBe(true);
    await again.put(record("b"));
    expect([...(await readState(dir)).keys()].sort()).toEqual(["a", "b"]);
  });

  it("quarantines an unreadable snapshot with its journal and secrets, never wiping them", async () => {
    await writeFile(join(dir, "state.json"), "{not json", { mode: 0o600 });
    await writeFile(join(dir, "secrets.json"), "{}", { mode: 0o600 });
    const { store, logs } = await open();
    expect(store.size).toBe(0);
    const files = await readdir(dir);
    expect(files.some((f) => f.startsWith("state.json.corrupt-"))).toBe(true);
    expect(files.some((f) => f.startsWith("secrets.json.corrupt-"))).toBe(true);
    expect(logs.some((l) => /state file unreadable/.test(String(l.msg)))).toBe(true);
  });

  it("a corrupt secrets.json is set aside; the volumes still load", async () => {
    const { store } = await open();
    await store.put(record("a", { secrets: { password: "hunter22" } }));
    await store.put(record("b"));
    await store.close();
    await writeFile(join(dir, "secrets.json"), "{garbage", { mode: 0o600 });
    const { store: again, logs } = await open();
    expect([...again.values()].map((r) => r.name).sort()).toEqual(["a", "b"]);
    expect(again.get("a")?.secrets).toEqual({});
    expect((await readdir(dir)).some((f) => f.startsWith("secrets.json.corrupt-"))).toBe(true);
    expect(logs.some((l) => /secrets file unreadable/.test(String(l.msg)))).toBe(true);
  });

  it("keeps inline secrets out of the journal and snapshot, in secrets.json only", async () => {
    const { store } = await open();
    await store.put(record("a", { secrets: { password: "hunter22" } }));
    for (let i = 0; i < 1100; i++) await store.setMounts("a", { [`id${i % 3}`]: 1 }); // forces a compaction
    for (const f of ["state.json", "state.journal"]) {
      expect(await readFile(join(dir, f), "utf8")).not.toContain("hunter22");
    }
    expect(await readFile(join(dir, "secrets.json"), "utf8")).toContain("hunter22");
    await store.remove("a");
    expect(await readFile(join(dir, "secrets.json"), "utf8")).not.toContain("hunter22");
  });

  it("migrates a format-1 state file", async () => {
    const v1 = { version: 1, volumes: [{ ...record("old"), secrets: undefined }] };
    await writeFile(join(dir, "state.json"), JSON.stringify(v1), { mode: 0o600 });
    const { store } = await open();
    expect(store.get("old")?.createdAt).toBe(record("old").createdAt);
    expect(JSON.parse(await readFile(join(dir, "state.json"), "utf8")).version).toBe(2);
  });

  it("refuses a state file from a newer volgate: set aside, not overwritten", async () => {
    await writeFile(join(dir, "state.json"), JSON.stringify({ version: 9, volumes: [] }), { mode: 0o600 });
    const { logs } = await open();
    expect((await readdir(dir)).some((f) => f.startsWith("state.json.corrupt-"))).toBe(true);
    expect(logs.some((l) => /newer volgate/.test(JSON.stringify(l)))).toBe(true);
  });

  it("stays readable when killed with SIGKILL in the middle of writes", async () => {
    let lastCount = 0;
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/state-writer.ts", dir], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      await new Promise((r) => setTimeout(r, 100 + round * 37));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const { store } = await open();
      expect(store.size).toBeGreaterThan(lastCount);
      lastCount = store.size;
      expect((await readdir(dir)).filter((f) => f.includes("corrupt"))).toEqual([]);
      for (const r of store.values()) {
        if (r.name.startsWith("v") && Number(r.name.slice(1)) % 7 === 0) {
          expect(r.secrets).toEqual({ password: `secret-${r.name.slice(1)}` });
        }
      }
      await store.close();
      stores = [];
    }
  }, 30_000);
});
