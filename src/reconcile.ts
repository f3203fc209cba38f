/**
 * After a start: Docker never re-sends Mount, so volumes still counted as
 * mounted are checked and remounted in the background, stale (ENOTCONN) mounts
 * are cleaned, live ones (kernel NFS, surviving sshfs helpers) adopted, and
 * connection mounts no volume uses are taken down.
 */
import { readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { Connections } from "./connections.ts";
import { Deadline } from "./deadline.ts";
import type { Driver } from "./driver.ts";
import { messageOf } from "./errors.ts";
import type { BackendContext } from "./host.ts";
import { unmountPath } from "./mountops.ts";
import { type StateStore, totalMounts, type VolumeRecord } from "./state.ts";

export interface ReconcileDeps {
  readonly driver: Driver;
  readonly state: StateStore;
  readonly connections: Connections;
  readonly ctx: BackendContext;
  readonly root: string;
  readonly mountTimeoutMs: number;
}

export interface ReconcileReport {
  adopted: number;
  remounted: number;
  failed: number;
  cleaned: number;
}

const PARALLEL = 4;

async function inPool<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
}

async function recover(deps: ReconcileDeps, record: VolumeRecord, report: ReconcileReport): Promise<void> {
  const { driver, ctx } = deps;
  const target = driver.mountpoint(record.name);
  const liveness = await ctx.mounts.probe(target);
  if (totalMounts(record) === 0) {
    if (liveness !== "absent") {
      await unmountPath(ctx, target);
      report.cleaned++;
    }
    return;
  }
  const resolved = driver.resolver.tryResolve(record);
  if (liveness === "live" && "key" in resolved) {
    deps.connections.adopt(resolved.key, record.name);
    report.adopted++;
    return;
  }
  if (liveness === "stale") {
    await unmountPath(ctx, target);
    report.cleaned++;
  }
  try {
    await driver.attach(record, Deadline.after(deps.mountTimeoutMs));
    report.remounted++;
  } catch (err) {
    report.failed++;
    ctx.log.error({ volume: record.name, err: messageOf(err) }, "remount after restart failed");
  }
}

/** Unmount and remove directories a crash left mounted; one that resists is logged, not fatal. */
async function takeDown(deps: ReconcileDeps, dirs: readonly string[], report: ReconcileReport) {
  for (const dir of dirs) {
    try {
      await unmountPath(deps.ctx, dir);
      await rmdir(dir);
      report.cleaned++;
    } catch (err) {
      deps.ctx.log.warn({ dir, err: messageOf(err) }, "cannot clean a leftover mount");
    }
  }
}

/** Connection mounts left by a crash that no volume in use needs. */
async function orphanConnections(deps: ReconcileDeps): Promise<string[]> {
  const conns = join(deps.root, "conns");
  const entries = await readdir(conns).catch(() => [] as string[]);
  return entries.map((e) => join(conns, e)).filter((dir) => !deps.connections.isKnown(dir));
}

/**
 * Check mounts a backend made at create (e.g. `nfs-check-*` in the work dir) and never took
 * down because volgate died. Listed before listening, so a Create that starts now is never touched.
 */
export async function findCheckDirs(workDir: string): Promise<string[]> {
  const entries = await readdir(workDir).catch(() => [] as string[]);
  return entries.filter((e) => e.includes("-check-")).map((e) => join(workDir, e));
}

export async function reconcile(
  deps: ReconcileDeps,
  checkDirs: readonly string[] = [],
): Promise<ReconcileReport> {
  const report = { adopted: 0, remounted: 0, failed: 0, cleaned: 0 };
  const records = [...deps.state.volumes.values()];
  await inPool(records, (r) => deps.driver.exclusive(r.name, () => recover(deps, r, report)));
  await takeDown(deps, [...(await orphanConnections(deps)), ...checkDirs], report);
  return report;
}
