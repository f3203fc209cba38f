/**
 * "Nothing was lost" after a fault, as the daemon's own files and the machine show it: the state
 * reads back, every volume the client (Docker) knows is in it and in List, every counted mount is
 * live, no helper or mount is left without a counted mount behind it, and no secret work file.
 * Each finding is one short line; an empty list means nothing was lost.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { createRegistry } from "../../../src/backends/index.ts";
import type { MountEntry } from "../../../src/mountinfo.ts";
import { secretFilesAmong } from "../../../src/restore.ts";
import { call } from "../../support/client.ts";
import { mountEntries, type Process, processes } from "../../support/procs.ts";
import type { StateFile, Volgate } from "../../support/volgate.ts";

const HELPERS = new Set(["sshfs", "s3fs"]);

const counted = (v: StateFile["volumes"][number]) => Object.values(v.mounts).reduce((a, b) => a + b, 0);

/** Helper processes (sshfs, s3fs) among `list` serving a directory under `root`, by that directory. */
export function helpersIn(list: readonly Process[], root: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const p of list) {
    const dir = p.argv.find((a) => a.startsWith(`${root}/`));
    if (HELPERS.has(p.argv[0]?.split("/").pop() ?? "") && dir !== undefined) out.set(dir, p.pid);
  }
  return out;
}

export const helpersUnder = async (root: string) => helpersIn(await processes(), root);

/** What the daemon and its machine show after a fault: gathered here, or reported by a guest. */
export interface View {
  /** The daemon's mount root. */
  readonly root: string;
  /** Its state as read back from disk, or why that failed. */
  readonly state: StateFile | Error;
  /** The names List answered. */
  readonly listed: ReadonlySet<string>;
  readonly mounts: readonly MountEntry[];
  readonly processes: readonly Process[];
  /** The names in its work dir. */
  readonly workFiles: readonly string[];
}

/** What was lost, given the volumes the client knows (created, answered 200, and not removed). */
export function lostIn(view: View, known: readonly string[]): string[] {
  const lost: string[] = [];
  const state = view.state instanceof Error ? { volumes: [] } : view.state;
  if (view.state instanceof Error) lost.push(`state unreadable (${view.state.message})`);
  const inState = new Map(state.volumes.map((r) => [r.name, r]));
  for (const name of known) {
    if (!inState.has(name)) lost.push(`${name} not in the state`);
    if (!view.listed.has(name)) lost.push(`${name} not listed`);
  }
  const at = new Map(view.mounts.map((e) => [e.mountPoint, e]));
  const volumes = join(view.root, "volumes");
  // The file systems the counted volumes are bound from: a connection must serve one of them.
  const used = new Set<string>();
  for (const r of state.volumes) {
    const bind = at.get(join(volumes, r.name));
    if (counted(r) > 0 && bind === undefined) lost.push(`${r.name} counted mounted, not mounted`);
    if (counted(r) === 0 && bind !== undefined) lost.push(`${r.name} mounted, not counted`);
    if (counted(r) > 0 && bind !== undefined) used.add(bind.dev);
  }
  for (const e of view.mounts) {
    if (!e.mountPoint.startsWith(`${view.root}/`)) continue;
    if (e.mountPoint.startsWith(`${volumes}/`) && !inState.has(e.mountPoint.slice(volumes.length + 1)))
      lost.push(`mount of an unknown volume at ${e.mountPoint}`);
    if (e.mountPoint.startsWith(`${view.root}/conns/`) && !used.has(e.dev))
      lost.push(`connection ${e.mountPoint.split("/").pop()} mounted for no counted volume`);
  }
  for (const [dir, pid] of helpersIn(view.processes, view.root)) {
    const mount = at.get(dir);
    if (mount === undefined || !used.has(mount.dev))
      lost.push(`helper ${pid} on ${dir} without a counted mount`);
  }
  for (const file of secretFilesAmong(view.workFiles, createRegistry().values()))
    lost.push(`secret file ${file} left`);
  return lost;
}

/** What was lost, as this machine and the daemon `v` show it. */
export async function whatWasLost(v: Volgate, known: readonly string[]): Promise<string[]> {
  const list = await call(v.socket, "/VolumeDriver.List", {});
  return lostIn(
    {
      root: v.root,
      state: await v.state().catch((err: unknown) => new Error(String(err))),
      listed: new Set<string>((list.json?.Volumes ?? []).map((x: { Name: string }) => x.Name)),
      mounts: await mountEntries(),
      processes: await processes(),
      workFiles: await readdir(join(v.stateDir, "work")).catch(() => []),
    },
    known,
  );
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
