/**
 * A volume's bind: its directory inside its backend connection, bound at its mountpoint
 * (nosuid,nodev, ro where asked) and checked to be exactly that; and each volume's last bind
 * failure, which Status shows until a bind succeeds. The driver calls these under the volume's lock.
 */
import { mkdir } from "node:fs/promises";
import type { Connections } from "./connections.ts";
import { Deadline } from "./deadline.ts";
import { messageOf } from "./errors.ts";
import type { BackendContext } from "./host.ts";
import { bindMount, unmountPath, verifyBind } from "./mountops.ts";
import type { VolumeRecord } from "./state/records.ts";
import { type Resolver, sourceIn } from "./volumes.ts";

export class Binds {
  /** The last mount failure of each volume, shown in Status until a mount succeeds. */
  readonly lastErrors = new Map<string, string>();

  constructor(
    private readonly connections: Connections,
    private readonly resolver: Resolver,
    private readonly ctx: BackendContext,
    private readonly mountpoint: (name: string) => string,
    private readonly mountTimeoutMs: number,
  ) {}

  /** Make the volume's mountpoint live; true when this call had to (re)attach it. */
  async ensure(record: VolumeRecord, signal?: AbortSignal): Promise<boolean> {
    const target = this.mountpoint(record.name);
    const liveness = await this.ctx.mounts.probe(target);
    if (liveness === "live") return false;
    if (liveness === "stale") await unmountPath(this.ctx, target);
    await this.attach(record, Deadline.after(this.mountTimeoutMs, signal));
    return true;
  }

  /** Bind the volume's directory inside its (possibly new) connection at its mountpoint. */
  async attach(record: VolumeRecord, deadline: Deadline): Promise<void> {
    const { backend, spec, key, readOnly } = this.resolver.resolve(record);
    const target = this.mountpoint(record.name);
    try {
      const connDir = await this.connections.acquire(backend, spec, record.name, deadline);
      try {
        await mkdir(target, { recursive: true, mode: 0o755 });
        await bindMount(this.ctx, sourceIn(connDir, record.subdir), target, readOnly);
        // Bind exactly what was checked: the new mount must show a directory of the connection's own file system.
        await verifyBind(this.ctx, target, connDir, record.name);
      } catch (err) {
        await this.connections.release(key, record.name);
        throw err;
      }
      this.lastErrors.delete(record.name);
    } catch (err) {
      this.lastErrors.set(record.name, messageOf(err));
      throw err;
    }
  }

  /** Take the volume's bind down and release its connection; both are tried even if one fails. */
  async detach(record: VolumeRecord): Promise<void> {
    const failure = await unmountPath(this.ctx, this.mountpoint(record.name)).catch((err: unknown) => err);
    const resolved = this.resolver.tryResolve(record);
    if ("key" in resolved) await this.connections.release(resolved.key, record.name);
    if (failure !== undefined) throw failure;
  }
}
