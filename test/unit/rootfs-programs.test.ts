/**
 * Every program the daemon runs is in the plugin rootfs: the rootfs keeps only what
 * rootfs-build/programs.txt lists, so a program missing there works on a developer's host and
 * fails only inside the managed plugin (a missing `stat` made every mount "stale" there).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = join(import.meta.dirname, "../../src");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith(".ts") ? [path] : [];
  });
}

describe("plugin rootfs", () => {
  it("lists every program the runner starts", () => {
    const listed = new Set(
      readFileSync(join(import.meta.dirname, "../../rootfs-build/programs.txt"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("/"))
        .map((l) => basename(l.split(/\s+/)[0] ?? "")),
    );
    const run = new Set(
      sources(SRC).flatMap((f) =>
        [...readFileSync(f, "utf8").matchAll(/\.(?:run|start)\(\s*"([a-z0-9._-]+)"/g)].map((m) => m[1] ?? ""),
      ),
    );
    expect(run.size).toBeGreaterThan(3);
    expect([...run].filter((p) => !listed.has(p))).toEqual([]);
  });
});
