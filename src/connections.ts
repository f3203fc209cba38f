/**
 * Shared backend mounts: one per connection key under <root>/conns/<id>,
 * refcounted by the volumes mounted through it. A connection is mounted with
 * its first volume; after its last one it stays warm for a grace period (the
 * next container starts in milliseconds instead of a new login), then goes.
 * Everything that changes a connection's mount (acquire, release, the sweeps)
 * runs under the lock of its id, and a volume counts as a user from the start
 * of acquire, so a sweep never takes down a connection a Mount is bringing up.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { Backend, Spec } from "./backends/index.ts";
import { findTrouble, type ServerProbe } from "./connection-health.ts";
import type { Deadline } from "./deadline.ts";
import { messageOf } from "./errors.ts";
import type { BackendContext } from "./host.ts";
import { KeyedLock } from "./lock.ts";
import { unmountPath } from "./mountops.ts";

export type Health = "ok" | "stale" | "down" | "unmounted";

interface Connection {
  readonly id: string;
  readonly dir: string;
  readonly users: Set<string>;
  health: Health;
  lastError?: string;
  /** Asks the server itself, where the mount answering says nothing of it (Backend.probe). */
  server?: ServerProbe;
  /** A health check of this connection is out (a hung server): the next tick skips it. */
  checking?: boolean;
  /** Set while the connection is warm: mounted, with no user. */
  idle?: NodeJS.Timeout;
}

/** A connection's short id: names its directory under conns/ and its backend's files in the work dir. */
const connectionId = (key: string) => createHash("sha256").update(key).digest("hex").slice(0, 16);

export class Connections {
  /** By connection id (the name of its directory under conns/). */
  private readonly conns = new Map<string, Connection>();
  private readonly lock = new KeyedLock();
  /** Connection key -> id: the hash is asked for on every Get (Status), and keys are few. */
  private readonly ids = new Map<string, string>();

  /** `graceMs`: how long a connection stays mounted after its last volume (0: unmount at once). */
  constructor(
    private readonly root: string,
    private readonly ctx: BackendContext,
    private readonly graceMs = 0,
  ) {}

  dirOf(key: string): string {
    return join(this.root, "conns", this.idOf(key));
  }

  private idOf(key: string): string {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = connectionId(key);
      this.ids.set(key, id);
    }
    return id;
  }

  health(key: string): { health: Health; lastError?: string } {
    const c = this.conns.get(this.idOf(key));
    if (!c) return { health: "unmounted" };
    return { health: c.health, ...(c.lastError !== undefined && { lastError: c.lastError }) };
  }

  /** Make sure the connection is live and count `volume` as a user; returns its directory. */
  acquire<S extends Spec>(backend: Backend<S>, spec: S, volume: string, deadline: Deadline): Promise<string> {
    const id = this.idOf(backend.connectionKey(spec));
    const conn = this.connection(id);
    conn.users.add(volume);
    this.knowServer(conn, backend, spec);
    clearTimeout(conn.idle);
    delete conn.idle;
    return this.lock.run(id, async () => {
      const state = await this.ctx.mounts.probe(conn.dir);
      if (state !== "live") {
        try {
          if (state === "stale") await unmountPath(this.ctx, conn.dir);
          await mkdir(conn.dir, { recursive: true, mode: 0o700 });
          await backend.mount(spec, { dir: conn.dir, id }, this.ctx, deadline);
        } catch (err) {
          conn.health = "down";
          conn.lastError = messageOf(err);
          conn.users.delete(volume);
          await this.rollback(id, conn);
          throw err;
        }
      }
      conn.health = "ok";
      delete conn.lastError;
      return conn.dir;
    });
  }

  /** `volume` no longer uses the connection; after the last user it stays warm for the grace period. */
  release(key: string, volume: string): Promise<void> {
    const id = this.idOf(key);
    return this.lock.run(id, async () => {
      const conn = this.conns.get(id);
      if (!conn) return;
      conn.users.delete(volume);
      if (conn.users.size > 0) return;
      if (this.graceMs > 0 && conn.health === "ok") {
        clearTimeout(conn.idle);
        conn.idle = setTimeout(() => void this.dropIdle(key), this.graceMs);
        conn.idle.unref();
        return;
      }
      await this.takeDown(id, conn);
    });
  }

  /** Unmount the connection of `key` now if it is warm (no users): after a Remove, or the grace period. */
  dropIdle(key: string): Promise<void> {
    const id = this.idOf(key);
    return this.lock.run(id, async () => {
      const conn = this.conns.get(id);
      if (conn && conn.users.size === 0) await this.takeDown(id, conn);
    });
  }

  /** At shutdown: warm connections go (those in use stay, for the next start to adopt). */
  async closeIdle(): Promise<void> {
    const idle = [...this.conns].filter(([, c]) => c.users.size === 0);
    await Promise.all(idle.map(([id, conn]) => this.lock.run(id, () => this.takeDown(id, conn))));
  }

  /** At start: a volume found live after a restart still counts as a user. */
  adopt<S extends Spec>(backend: Backend<S>, spec: S, volume: string): void {
    const conn = this.connection(this.idOf(backend.connectionKey(spec)));
    conn.users.add(volume);
    this.knowServer(conn, backend, spec);
    conn.health = "ok";
  }

  /**
   * Probe every connection in use and record its health, so Status (which does no I/O) shows a
   * helper that died or a server that stopped answering. The next Mount repairs a stale one.
   * Probes run side by side, each bounded: one hung connection delays no other.
   */
  async checkHealth(): Promise<void> {
    await Promise.all([...this.conns].map(([id, conn]) => this.checkOne(id, conn)));
  }

  /**
   * Take down connection mounts no volume uses (left by a crash), each under its own lock and
   * checked again there; returns how many were cleaned.
   */
  async sweep(): Promise<number> {
    const conns = join(this.root, "conns");
    const ids = await readdir(conns).catch(() => [] as string[]);
    let cleaned = 0;
    for (const id of ids) {
      if ((this.conns.get(id)?.users.size ?? 0) > 0) continue;
      await this.lock.run(id, async () => {
        if ((this.conns.get(id)?.users.size ?? 0) > 0) return;
        try {
          await unmountPath(this.ctx, join(conns, id));
          await rmdir(join(conns, id));
          if ((this.conns.get(id)?.users.size ?? 0) === 0) this.conns.delete(id);
          cleaned++;
        } catch (err) {
          this.ctx.log.warn({ dir: join(conns, id), err: messageOf(err) }, "cannot clean a leftover mount");
        }
      });
    }
    return cleaned;
  }

  private knowServer<S extends Spec>(conn: Connection, backend: Backend<S>, spec: S): void {
    const { probe } = backend;
    if (probe) conn.server = (deadline) => probe(spec, this.ctx, deadline);
  }

  private async checkOne(id: string, conn: Connection): Promise<void> {
    if (conn.checking) return;
    conn.checking = true;
    try {
      await this.check(id, conn);
    } finally {
      conn.checking = false;
    }
  }

  private async check(id: string, conn: Connection): Promise<void> {
    const { liveness, trouble } = await findTrouble(this.ctx.mounts, conn.dir, conn.server);
    if (liveness !== "live" && conn.idle !== undefined) {
      // A warm connection that died is not worth keeping: the next Mount makes a new one.
      await this.lock.run(id, async () => {
        if (conn.users.size === 0) await this.takeDown(id, conn);
      });
      return;
    }
    if (trouble === undefined) {
      conn.health = "ok";
      delete conn.lastError;
    } else if ((conn.health === "ok" || conn.health === "stale") && conn.lastError !== trouble) {
      // A new trouble (a mount dying behind a silent server, say) replaces the old one.
      conn.health = "stale";
      conn.lastError = trouble;
      this.ctx.log.warn({ dir: conn.dir, liveness, err: trouble }, "connection is not answering");
    }
  }

  /** Unmount and forget a connection with no users (a Mount joining meanwhile keeps the entry). */
  private async takeDown(id: string, conn: Connection): Promise<void> {
    clearTimeout(conn.idle);
    delete conn.idle;
    await unmountPath(this.ctx, conn.dir);
    await rmdir(conn.dir).catch(() => {});
    if (conn.users.size === 0 && this.conns.get(id) === conn) this.conns.delete(id);
  }

  private connection(id: string): Connection {
    let conn = this.conns.get(id);
    if (!conn) {
      conn = { id, dir: join(this.root, "conns", id), users: new Set(), health: "unmounted" };
      this.conns.set(id, conn);
    }
    return conn;
  }

  /** A failed mount leaves nothing behind: no mount, no directory, no entry without users. */
  private async rollback(id: string, conn: Connection): Promise<void> {
    if ((await this.ctx.mounts.find(conn.dir)) !== undefined) await unmountPath(this.ctx, conn.dir);
    if (conn.users.size === 0) {
      await rmdir(conn.dir).catch(() => {});
      this.conns.delete(id);
    }
  }
}
