/**
 * Shared backend mounts: one per connection key under <root>/conns/<id>,
 * refcounted by the volumes mounted through it. A connection is mounted with
 * its first volume and unmounted with its last.
 */
import { createHash } from "node:crypto";
import { mkdir, rmdir } from "node:fs/promises";
import { join } from "node:path";
import type { Backend, Spec } from "./backends/index.ts";
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
}

/** A connection's short id: names its directory under conns/ and its backend's files in the work dir. */
const connectionId = (key: string) => createHash("sha256").update(key).digest("hex").slice(0, 16);

export class Connections {
  private readonly conns = new Map<string, Connection>();
  private readonly lock = new KeyedLock();

  constructor(
    private readonly root: string,
    private readonly ctx: BackendContext,
  ) {}

  dirOf(key: string): string {
    return join(this.root, "conns", connectionId(key));
  }

  health(key: string): { health: Health; lastError?: string } {
    const c = this.conns.get(key);
    if (!c) return { health: "unmounted" };
    return { health: c.health, ...(c.lastError !== undefined && { lastError: c.lastError }) };
  }

  /** Make sure the connection is live and count `volume` as a user; returns its directory. */
  acquire<S extends Spec>(backend: Backend<S>, spec: S, volume: string, deadline: Deadline): Promise<string> {
    const key = backend.connectionKey(spec);
    return this.lock.run(key, async () => {
      const conn = this.connection(key);
      const state = await this.ctx.mounts.probe(conn.dir);
      if (state !== "live") {
        if (state === "stale") await unmountPath(this.ctx, conn.dir);
        await mkdir(conn.dir, { recursive: true, mode: 0o700 });
        try {
          await backend.mount(spec, { dir: conn.dir, id: conn.id }, this.ctx, deadline);
        } catch (err) {
          conn.health = "down";
          conn.lastError = messageOf(err);
          await this.rollback(key, conn);
          throw err;
        }
      }
      conn.health = "ok";
      delete conn.lastError;
      conn.users.add(volume);
      return conn.dir;
    });
  }

  /** `volume` no longer uses the connection; the last user unmounts it. */
  release(key: string, volume: string): Promise<void> {
    return this.lock.run(key, async () => {
      const conn = this.conns.get(key);
      if (!conn) return;
      conn.users.delete(volume);
      if (conn.users.size > 0) return;
      await unmountPath(this.ctx, conn.dir);
      await rmdir(conn.dir).catch(() => {});
      this.conns.delete(key);
    });
  }

  /** At start: a volume found live after a restart still counts as a user. */
  adopt(key: string, volume: string): void {
    const conn = this.connection(key);
    conn.users.add(volume);
    conn.health = "ok";
  }

  /**
   * Probe every connection in use and record its health, so Status (which does no I/O) shows a
   * helper that died or a server that stopped answering. The next Mount repairs a stale one.
   */
  async checkHealth(): Promise<void> {
    for (const conn of this.conns.values()) {
      if (conn.users.size === 0) continue;
      const liveness = await this.ctx.mounts.probe(conn.dir);
      if (liveness === "live") {
        conn.health = "ok";
        delete conn.lastError;
      } else if (conn.health === "ok") {
        conn.health = "stale";
        conn.lastError = `the backend mount stopped answering (${liveness}); the next Mount of a volume on it remounts it`;
        this.ctx.log.warn({ dir: conn.dir, liveness }, "connection is not answering");
      }
    }
  }

  /** Whether a volume uses the connection at `dir`; any other directory under conns/ is a crash's leftover. */
  isKnown(dir: string): boolean {
    for (const c of this.conns.values()) if (c.dir === dir && c.users.size > 0) return true;
    return false;
  }

  private connection(key: string): Connection {
    let conn = this.conns.get(key);
    if (!conn) {
      conn = { id: connectionId(key), dir: this.dirOf(key), users: new Set(), health: "unmounted" };
      this.conns.set(key, conn);
    }
    return conn;
  }

  /** A failed mount leaves nothing behind: no mount, no directory, no entry without users. */
  private async rollback(key: string, conn: Connection): Promise<void> {
    if ((await this.ctx.mounts.probe(conn.dir)) !== "absent") await unmountPath(this.ctx, conn.dir);
    if (conn.users.size === 0) {
      await rmdir(conn.dir).catch(() => {});
      this.conns.delete(key);
    }
  }
}
