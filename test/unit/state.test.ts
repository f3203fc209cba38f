/** The state file: atomic, 0600, coalesced writes, and readable after kill -9 mid-write. */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.ts";
import { StateStore } from "../../src/state.ts";

const quiet = () => createLogger("silent", "json", new Writable({ write: (_c, _e, done) => done() }));
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "volgate-state-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const record = (name: string) => ({
  name,
  backend: "fake",
  options: { backend: "fake" },
  secrets: {},
  createdAt: "2026-11-23T12:00:00.000Z",
  subdir: "",
  mounts: {},
});

describe("state store", () => {
  it("writes a versioned 0600 file and reads it back", async () => {
    const store = await StateStore.load(dir, quiet());
    store.volumes.set("a", record("a"));
    await store.save();
    expect((await stat(join(dir, "state.json"))).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(join(dir, "state.json"), "utf8")).version).toBe(1);
    const again = await StateStore.load(dir, quiet());
    expect(again.volumes.get("a")).toEqual(record("a"));
  });

  it("shares concurrent saves and always lands the latest state", async () => {
    const store = await StateStore.load(dir, quiet());
    const saves: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      store.volumes.set(`v${i}`, record(`v${i}`));
      saves.push(store.save());
    }
    await Promise.all(saves);
    const onDisk = JSON.parse(await readFile(join(dir, "state.json"), "utf8"));
    expect(onDisk.volumes).toHaveLength(50);
  });

  it("stays readable when killed with SIGKILL in the middle of writes", async () => {
    for (let round = 0; round < 5; round++) {
      const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/state-writer.ts", dir], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      await new Promise((r) => setTimeout(r, 100 + round * 37));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
      const log = quiet();
      const store = await StateStore.load(dir, log);
      expect(store.volumes.size).toBeGreaterThan(0);
      expect((await readdir(dir)).filter((f) => f.includes("corrupt"))).toEqual([]);
    }
  }, 30_000);
});
