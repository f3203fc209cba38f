/**
 * The volume lifecycle: create, remove, mount, unmount, get, list, path.
 * Counts mounts per (volume, mount ID) because Docker repeats IDs; the backend
 * is unmounted only when a volume's total reaches zero. Every change goes through the
 * state store, which applies it only once it is durable: a failed write is an Err that
 * changed nothing. Get and List answer from memory and never fail for a known volume.
 */
import { mkdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { Options, Registry } from "./backends/index.ts";
import { Binds } from "./binds.ts";
import { type Catalog, localCatalog } from "./catalog/catalog.ts";
import type { Connections } from "./connections.ts";
import { Deadline } from "./deadline.ts";
import { busy, conflict, invalid, notFound } from "./errors.ts";
import type { BackendContext } from "./host.ts";
import { KeyedLock } from "./lock.ts";
import { unmountPath } from "./mountops.ts";
import { sameStrings, totalMounts, type VolumeRecord } from "./state/records.ts";
import type { StateStore } from "./state/store.ts";
import { infoOf, statusOf, type VolumeInfo } from "./status.ts";
import { parseCreate, Resolver } from "./volumes.ts";

export interface DriverSettings {
  readonly root: string;
  readonly mountTimeoutMs: number;
  readonly preflightTimeoutMs: number;
  readonly allowInlineSecrets: boolean;
}

type Counts = Readonly<Record<string, number>>;

/** `counts` with one more (delta 1) or one less (delta -1) mount under `id`. */
function counted(counts: Counts, id: string, delta: 1 | -1): Counts {
  const next = { ...counts, [id]: (counts[id] ?? 0) + delta };
  if ((next[id] ?? 0) <= 0) delete next[id];
  return next;
}

export class Driver {
  readonly resolver: Resolver;
  /** Binds volumes at their mountpoints (restore re-attaches through it too). */
  readonly binds: Binds;
  private readonly lock = new KeyedLock();
  private listCache: { version: number; json: string } | undefined;
  private catalog: Catalog = localCatalog;

  constructor(
    private readonly state: StateStore,
    private readonly connections: Connections,
    private readonly backends: Registry,
    private readonly ctx: BackendContext,
    private readonly settings: DriverSettings,
  ) {
    this.resolver = new Resolver(backends);
    this.binds = new Binds(
      connections,
      this.resolver,
      ctx,
      (name) => this.mountpoint(name),
      settings.mountTimeoutMs,
    );
  }

  mountpoint(name: string): string {
    return join(this.settings.root, "volumes", name);
  }

  /** Run `work` while no other operation touches volume `name`. */
  exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.lock.run(name, work);
  }

  /** Where definitions live from now on (a shared catalog is loaded after the socket listens). */
  useCatalog(catalog: Catalog): void {
    this.catalog = catalog;
  }

  async create(name: string, opts: Options): Promise<void> {
    const shared = this.catalog.status()?.where;
    const { backend, spec, options, secrets } = parseCreate(this.backends, name, opts, {
      ...this.settings,
      ...(shared !== undefined && { sharedCatalog: shared }),
    });
    await this.lock.run(name, async () => {
      const existing = this.state.get(name);
      if (existing) {
        if (sameStrings(existing.options, options) && sameStrings(existing.secrets, secrets)) return;
        throw conflict(
          `volume ${name} already exists with other options: remove it first or pick another name`,
        );
      }
      this.catalog.ready(); // an unreachable catalog says so at once, before a slow preflight
      const deadline = Deadline.after(this.settings.preflightTimeoutMs);
      const subdir = await backend.preflight(spec, this.ctx, deadline);
      const createdAt = new Date().toISOString();
      // In a shared catalog another node may have created it first: its definition stands.
      const standing = await this.catalog.create({ name, backend: backend.name, options, createdAt, subdir });
      await mkdir(this.mountpoint(name), { recursive: true, mode: 0o755 });
      await this.state.put({ ...standing, secrets, mounts: {} }).catch(async (err: unknown) => {
        await rmdir(this.mountpoint(name)).catch(() => {});
        throw err;
      });
    });
  }

  async remove(name: string): Promise<void> {
    await this.lock.run(name, async () => {
      const record = this.state.get(name);
      if (!record) return;
      const count = totalMounts(record);
      if (count > 0)
        throw busy(`volume ${name} is in use (${count} mount(s)): stop the containers using it first`);
      const replacement = await this.catalog.remove(name);
      await unmountPath(this.ctx, this.mountpoint(name));
      await this.state.update([{ remove: name }, ...(replacement ? [{ define: replacement }] : [])]);
      this.binds.lastErrors.delete(name);
      const resolved = this.resolver.tryResolve(record);
      if ("key" in resolved) await this.connections.dropIdle(resolved.key);
      await rmdir(this.mountpoint(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") this.ctx.log.warn({ volume: name, err: err.message }, "mountpoint left");
      });
    });
  }

  async mount(name: string, id: string, signal?: AbortSignal): Promise<string> {
    return this.lock.run(name, async () => {
      const record = this.record(name);
      const first = totalMounts(record) === 0;
      // The first mount on this node marks the volume in use in a shared catalog, so no other node removes it.
      if (first) await this.catalog.inUse(name, true);
      let attached = false;
      try {
        attached = await this.binds.ensure(record, signal);
        // Docker never sends Unmount for a Mount it gave up on: do not keep the reference.
        if (signal?.aborted) throw invalid(`mount of ${name} was aborted by Docker`);
        await this.state.setMounts(name, counted(record.mounts, id, 1));
      } catch (err) {
        if (first) {
          if (attached) await this.binds.detach(record);
          await this.catalog.inUse(name, false);
        }
        throw err;
      }
      return this.mountpoint(name);
    });
  }

  async unmount(name: string, id: string): Promise<void> {
    await this.lock.run(name, async () => {
      const record = this.record(name);
      if (record.mounts[id] === undefined) return;
      const counts = counted(record.mounts, id, -1);
      await this.state.setMounts(name, counts);
      if (totalMounts({ mounts: counts }) > 0) return;
      try {
        await this.binds.detach(record);
      } finally {
        await this.catalog.inUse(name, false);
        // Removed from the shared catalog (by another node) while mounted here: now it goes here too.
        if (this.catalog.isGone(name)) await this.state.remove(name);
      }
    });
  }

  path(name: string): string {
    this.record(name);
    return this.mountpoint(name);
  }

  get(name: string): VolumeInfo {
    const record = this.record(name);
    const info = infoOf(record, this.mountpoint(name));
    return {
      ...info,
      Status: statusOf(record, this.resolver, this.connections, this.binds.lastErrors, this.catalog),
    };
  }

  /** The List answer, serialized once per change of the state: `docker volume ls` on 10,000 volumes stays cheap. */
  listJson(): string {
    const version = this.state.version;
    if (this.listCache?.version !== version) {
      const volumes: VolumeInfo[] = [];
      for (const record of this.state.values()) volumes.push(infoOf(record, this.mountpoint(record.name)));
      this.listCache = { version, json: JSON.stringify({ Volumes: volumes }) };
    }
    return this.listCache.json;
  }

  find(name: string): VolumeRecord | undefined {
    return this.state.get(name);
  }

  records(): IterableIterator<VolumeRecord> {
    return this.state.values();
  }

  private record(name: string): VolumeRecord {
    const record = this.state.get(name);
    if (!record) throw notFound(`no such volume: ${name}`);
    return record;
  }
}
