/**
 * The volume lifecycle: create, remove, mount, unmount, get, list, path.
 * Counts mounts per (volume, mount ID) because Docker repeats IDs; the backend
 * is unmounted only when a volume's total reaches zero. Get and List answer
 * from memory and never fail for a known volume.
 */
import { mkdir, realpath, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { Options, Registry } from "./backends/index.ts";
import type { Connections } from "./connections.ts";
import { Deadline } from "./deadline.ts";
import { busy, conflict, invalid, messageOf, notFound } from "./errors.ts";
import type { BackendContext } from "./host.ts";
import { KeyedLock } from "./lock.ts";
import { bindMount, unmountPath } from "./mountops.ts";
import { type StateStore, totalMounts, type VolumeRecord } from "./state.ts";
import { parseCreate, Resolver, sourceIn } from "./volumes.ts";

export interface DriverSettings {
  readonly root: string;
  readonly mountTimeoutMs: number;
  readonly preflightTimeoutMs: number;
  readonly allowInlineSecrets: boolean;
}

export interface VolumeStatus {
  readonly backend: string;
  readonly target?: string;
  readonly mounted: boolean;
  readonly mounts: number;
  readonly health: string;
  readonly lastError?: string;
}

export interface VolumeInfo {
  readonly Name: string;
  readonly Mountpoint: string;
  readonly CreatedAt: string;
  readonly Status?: VolumeStatus;
}

function sameOptions(a: Options, b: Options): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

export class Driver {
  readonly resolver: Resolver;
  private readonly lock = new KeyedLock();
  /** The last mount failure of each volume, shown in Status until a mount succeeds. */
  private readonly lastErrors = new Map<string, string>();
  private listCache: string | undefined;

  constructor(
    private readonly state: StateStore,
    private readonly connections: Connections,
    private readonly backends: Registry,
    private readonly ctx: BackendContext,
    private readonly settings: DriverSettings,
  ) {
    this.resolver = new Resolver(backends);
  }

  mountpoint(name: string): string {
    return join(this.settings.root, "volumes", name);
  }

  /** Run `work` while no other operation touches volume `name`. */
  exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    return this.lock.run(name, work);
  }

  async create(name: string, opts: Options): Promise<void> {
    const { backend, spec, options, secrets } = parseCreate(this.backends, name, opts, this.settings);
    await this.lock.run(name, async () => {
      const existing = this.state.volumes.get(name);
      if (existing) {
        if (sameOptions(existing.options, options) && sameOptions(existing.secrets, secrets)) return;
        throw conflict(
          `volume ${name} already exists with other options: remove it first or pick another name`,
        );
      }
      const deadline = Deadline.after(this.settings.preflightTimeoutMs);
      const subdir = await backend.preflight(spec, this.ctx, deadline);
      await mkdir(this.mountpoint(name), { recursive: true, mode: 0o755 });
      const createdAt = new Date().toISOString();
      this.state.volumes.set(name, {
        name,
        backend: backend.name,
        options,
        secrets,
        createdAt,
        subdir,
        mounts: {},
      });
      await this.state.save();
    });
  }

  async remove(name: string): Promise<void> {
    await this.lock.run(name, async () => {
      const record = this.state.volumes.get(name);
      if (!record) return;
      const count = totalMounts(record);
      if (count > 0)
        throw busy(`volume ${name} is in use (${count} mount(s)): stop the containers using it first`);
      await unmountPath(this.ctx, this.mountpoint(name));
      await rmdir(this.mountpoint(name)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
      this.state.volumes.delete(name);
      this.lastErrors.delete(name);
      this.listCache = undefined;
      await this.state.save();
    });
  }

  async mount(name: string, id: string, signal?: AbortSignal): Promise<string> {
    return this.lock.run(name, async () => {
      const record = this.record(name);
      const target = this.mountpoint(name);
      const liveness = await this.ctx.mounts.probe(target);
      if (liveness !== "live") {
        if (liveness === "stale") await unmountPath(this.ctx, target);
        await this.attach(record, Deadline.after(this.settings.mountTimeoutMs, signal));
        // Docker never sends Unmount for a Mount it gave up on: do not keep the reference.
        if (signal?.aborted && totalMounts(record) === 0) {
          await this.detach(record);
          throw invalid(`mount of ${name} was aborted by Docker`);
        }
      }
      record.mounts[id] = (record.mounts[id] ?? 0) + 1;
      await this.state.save();
      return target;
    });
  }

  async unmount(name: string, id: string): Promise<void> {
    await this.lock.run(name, async () => {
      const record = this.record(name);
      const count = record.mounts[id];
      if (count === undefined) return;
      if (count > 1) record.mounts[id] = count - 1;
      else delete record.mounts[id];
      await this.state.save();
      if (totalMounts(record) === 0) await this.detach(record);
    });
  }

  path(name: string): string {
    this.record(name);
    return this.mountpoint(name);
  }

  get(name: string): VolumeInfo {
    const record = this.record(name);
    return { ...this.info(record), Status: this.status(record) };
  }

  /** The List answer, serialized once per change of the volume set: `docker volume ls` on 10,000 volumes stays cheap. */
  listJson(): string {
    if (this.listCache === undefined) {
      const volumes: VolumeInfo[] = [];
      for (const record of this.state.volumes.values()) volumes.push(this.info(record));
      this.listCache = JSON.stringify({ Volumes: volumes });
    }
    return this.listCache;
  }

  /** Bind the volume's directory inside its (possibly new) connection at its mountpoint. */
  async attach(record: VolumeRecord, deadline: Deadline): Promise<void> {
    const { backend, spec, key, readOnly } = this.resolver.resolve(record);
    let connDir: string;
    try {
      connDir = await this.connections.acquire(backend, spec, record.name, deadline);
    } catch (err) {
      this.lastErrors.set(record.name, messageOf(err));
      throw err;
    }
    try {
      const source = sourceIn(connDir, record.subdir);
      // A symlink on the remote side must not lead the bind outside the connection.
      const [realSource, realConn] = await Promise.all([realpath(source), realpath(connDir)]);
      if (realSource !== realConn && !realSource.startsWith(`${realConn}/`)) {
        throw invalid(
          `the directory of volume ${record.name} is a symlink leading outside its share: refusing to mount it`,
        );
      }
      await mkdir(this.mountpoint(record.name), { recursive: true, mode: 0o755 });
      await bindMount(this.ctx, source, this.mountpoint(record.name), readOnly);
      this.lastErrors.delete(record.name);
    } catch (err) {
      this.lastErrors.set(record.name, messageOf(err));
      await this.connections.release(key, record.name);
      throw err;
    }
  }

  async detach(record: VolumeRecord): Promise<void> {
    await unmountPath(this.ctx, this.mountpoint(record.name));
    const resolved = this.resolver.tryResolve(record);
    if ("key" in resolved) await this.connections.release(resolved.key, record.name);
  }

  private record(name: string): VolumeRecord {
    const record = this.state.volumes.get(name);
    if (!record) throw notFound(`no such volume: ${name}`);
    return record;
  }

  private info(record: VolumeRecord): VolumeInfo {
    return { Name: record.name, Mountpoint: this.mountpoint(record.name), CreatedAt: record.createdAt };
  }

  private status(record: VolumeRecord): VolumeStatus {
    const mounts = totalMounts(record);
    const resolved = this.resolver.tryResolve(record);
    if ("error" in resolved) {
      return {
        backend: record.backend,
        mounted: mounts > 0,
        mounts,
        health: "invalid",
        lastError: resolved.error,
      };
    }
    const conn = this.connections.health(resolved.key);
    const lastError = conn.lastError ?? this.lastErrors.get(record.name);
    const health = conn.health === "unmounted" && lastError !== undefined ? "down" : conn.health;
    return {
      backend: record.backend,
      target: resolved.target,
      mounted: mounts > 0,
      mounts,
      health,
      ...(lastError !== undefined && { lastError }),
    };
  }
}
