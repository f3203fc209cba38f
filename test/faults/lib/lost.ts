/**
 * "Nothing was lost" after a fault, as the daemon's own files and the machine show it: the state
 * reads back, every volume the client (Docker) knows is in it and in List, every counted mount is
 * live, no helper or mount is left without a counted mount behind it, and no secret work file.
 * Each finding is one short line; an empty list means nothing was lost.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { createRegistry } from "../../../src/backends/index.ts";
import { call } from "../../support/client.ts";
import { mountEntries, processes } from "../../support/procs.ts";
import type { StateFile, Volgate } from "../../support/volgate.ts";

const HELPERS = new Set(["sshfs", "s3fs"]);

const counted = (v: StateFile["volumes"][number]) => Object.values(v.mounts).reduce((a, b) => a + b, 0);

/** Work files that hold a secret (every backend's secretWorkFiles) left in `workDir`. */
export async function secretFilesIn(workDir: string): Promise<string[]> {
  const patterns = [...createRegistry().values()].flatMap((b) =>
    b.secretWorkFiles ? [b.secretWorkFiles] : [],
  );
  const entries = await readdir(workDir).catch(() => [] as string[]);
  return entries.filter((e) => patterns.some((p) => p.test(e)));
}

/** Helper processes (sshfs, s3fs) serving a directory under `root`, by that directory. */
export async function helpersUnder(root: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const p of await processes()) {
    const dir = p.argv.find((a) => a.startsWith(`${root}/`));
    if (HELPERS.has(p.argv[0]?.split("/").pop() ?? "") && dir !== undefined) out.set(dir, p.pid);
  }
  return out;
}

/** What was lost, given the volumes the client knows (created, answered 200, and not removed). */
export async function whatWasLost(v: Volgate, known: readonly string[]): Promise<string[]> {
  const lost: string[] = [];
  let state: StateFile = { volumes: [] };
  try {
    state = await v.state();
  } catch (err) {
    lost.push(`state unreadable (${String(err)})`);
  }
  const inState = new Map(state.volumes.map((r) => [r.name, r]));
  const list = await call(v.socket, "/VolumeDriver.List", {});
  const listed = new Set<string>((list.json?.Volumes ?? []).map((x: { Name: string }) => x.Name));
  for (const name of known) {
    if (!inState.has(name)) lost.push(`${name} not in the state`);
    if (!listed.has(name)) lost.push(`${name} not listed`);
  }

  const entries = await mountEntries();
  const at = new Map(entries.map((e) => [e.mountPoint, e]));
  const volumes = join(v.root, "volumes");
  // The file systems the counted volumes are bound from: a connection must serve one of them.
  const used = new Set<string>();
  for (const r of state.volumes) {
    const bind = at.get(join(volumes, r.name));
    if (counted(r) > 0 && bind === undefined) lost.push(`${r.name} counted mounted, not mounted`);
    if (counted(r) === 0 && bind !== undefined) lost.push(`${r.name} mounted, not counted`);
    if (counted(r) > 0 && bind !== undefined) used.add(bind.dev);
  }
  for (const e of entries) {
    if (!e.mountPoint.startsWith(`${v.root}/`)) continue;
    if (e.mountPoint.startsWith(`${volumes}/`) && !inState.has(e.mountPoint.slice(volumes.length + 1)))
      lost.push(`mount of an unknown volume at ${e.mountPoint}`);
    if (e.mountPoint.startsWith(`${v.root}/conns/`) && !used.has(e.dev))
      lost.push(`connection ${e.mountPoint.split("/").pop()} mounted for no counted volume`);
  }
  for (const [dir, pid] of await helpersUnder(v.root)) {
    const mount = at.get(dir);
    if (mount === undefined || !used.has(mount.dev))
      lost.push(`helper ${pid} on ${dir} without a counted mount`);
  }
  for (const file of await secretFilesIn(join(v.stateDir, "work"))) lost.push(`secret file ${file} left`);
  return lost;
}

/**
 * Unmount every counted mount and remove every volume, as Docker would once its containers are
 * gone; then nothing of volgate's may be left under its root: returns what is (mounts, helpers).
 */
export async function cleanUp(v: Volgate): Promise<string[]> {
  const problems: string[] = [];
  const ask = async (path: string, body: object) => {
    const answer = await call(v.socket, path, body, { signal: AbortSignal.timeout(30_000) });
    if (answer.status !== 200) problems.push(`${path} ${JSON.stringify(body)}: ${answer.text}`);
  };
  for (const r of (await v.state()).volumes) {
    for (const [id, count] of Object.entries(r.mounts)) {
      for (let i = 0; i < count; i++) await ask("/VolumeDriver.Unmount", { Name: r.name, ID: id });
    }
    await ask("/VolumeDriver.Remove", { Name: r.name });
  }
  for (const e of await mountEntries())
    if (e.mountPoint.startsWith(`${v.root}/`)) problems.push(`still mounted: ${e.mountPoint}`);
  for (const [dir, pid] of await helpersUnder(v.root)) problems.push(`helper ${pid} still serves ${dir}`);
  return problems;
}
