/**
 * After a start: Docker never re-sends Mount, so volumes still counted as mounted are checked
 * and remounted in the background, stale (ENOTCONN) mounts are cleaned, live ones (kernel NFS,
 * surviving sshfs helpers) adopted, and connection mounts no volume uses are taken down. Each
 * volume is restored under its own lock and read again there: a volume removed (or removed and
 * created anew) since start is not the one this pass set out to restore, and is left alone.
 * Before listening, what a crash left in the work dir is found (check mounts, taken down by this
 * pass) or removed at once (files holding a secret).
 */
import { readdir, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { Backend } from "./backends/index.ts";
import type { Connections } from "./connections.ts";
import { Deadline } from "./deadline.ts";
import type { Driver } from "./driver.ts";
import { messageOf } from "./errors.ts";
import type { BackendContext } from "./host.ts";
import { unmountPath } from "./mountops.ts";
import { totalMounts, type VolumeRecord } from "./state/records.ts";

export interface RestoreDeps {
  readonly driver: Driver;
  readonly connections: Connections;
  readonly ctx: BackendContext;
  readonly mountTimeoutMs: number;
  /** Aborts remounts in flight (volgate is stopping). */
  readonly signal?: AbortSignal;
}

export interface RestoreReport {
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

async function recover(deps: RestoreDeps, record: VolumeRecord, report: RestoreReport): Promise<void> {
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
    deps.connections.adopt(resolved.backend, resolved.spec, record.name);
    report.adopted++;
    return;
  }
  if (liveness === "stale") {
    await unmountPath(ctx, target);
    report.cleaned++;
  }
  try {
    await driver.binds.attach(record, Deadline.after(deps.mountTimeoutMs, deps.signal));
    report.remounted++;
  } catch (err) {
    report.failed++;
    ctx.log.error({ volume: record.name, err: messageOf(err) }, "remount after restart failed");
  }
}

/** Unmount and remove directories a crash left mounted; one that resists is logged, not fatal. */
async function takeDown(ctx: BackendContext, dirs: readonly string[], report: RestoreReport) {
  for (const dir of dirs) {
    try {
      await unmountPath(ctx, dir);
      await rmdir(dir);
      report.cleaned++;
    } catch (err) {
      ctx.log.warn({ dir, err: messageOf(err) }, "cannot clean a leftover mount");
    }
  }
}

/**
 * Check mounts a backend made at create (e.g. `nfs-check-*` in the work dir) and never took
 * down because volgate died. Listed before listening, so a Create that starts now is never touched.
 */
export async function findCheckDirs(workDir: string): Promise<string[]> {
  const entries = await readdir(workDir).catch(() => [] as string[]);
  return entries.filter((e) => e.includes("-check-")).map((e) => join(workDir, e));
}

/**
 * Work files a backend declares secret (s3fs's passwd files) that a crash mid-mount left behind:
 * removed before listening, when no mount of this start has written one yet. Returns their names.
 */
export async function removeSecretFiles(workDir: string, backends: Iterable<Backend>): Promise<string[]> {
  const secret = secretFilesAmong(await readdir(workDir).catch(() => []), backends);
  await Promise.all(secret.map((e) => rm(join(workDir, e), { force: true })));
  return secret;
}

/** The names among `entries` (of the work dir) that some backend declares secret (Backend.secretWorkFiles). */
export function secretFilesAmong(entries: readonly string[], backends: Iterable<Backend>): string[] {
  const patterns = [...backends].flatMap((b) => (b.secretWorkFiles ? [b.secretWorkFiles] : []));
  return entries.filter((e) => patterns.some((p) => p.test(e)));
}

export async function restore(deps: RestoreDeps, checkDirs: readonly string[] = []): Promise<RestoreReport> {
  const report = { adopted: 0, remounted: 0, failed: 0, cleaned: 0 };
  // One read of the mount table for all: with 10,000 volumes, one per volume would be 10,000 reads.
  const mounted = new Set((await deps.ctx.mounts.entries()).map((e) => e.mountPoint));
  const volumes = [...deps.driver.records()]
    .filter((r) => totalMounts(r) > 0 || mounted.has(deps.driver.mountpoint(r.name)))
    .map((r) => [r.name, r.createdAt] as const);
  await inPool(volumes, ([name, createdAt]) =>
    deps.driver.exclusive(name, async () => {
      const record = deps.driver.find(name);
      if (record?.createdAt === createdAt) await recover(deps, record, report);
    }),
  );
  report.cleaned += await deps.connections.sweep();
  await takeDown(deps.ctx, checkDirs, report);
  return report;
}
