/** What Get and List show of a volume: the wire shape, and a Status that never does I/O. */
import type { Connections } from "./connections.ts";
import { totalMounts, type VolumeRecord } from "./state/records.ts";
import type { Resolver } from "./volumes.ts";

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

export function infoOf(record: VolumeRecord, mountpoint: string): VolumeInfo {
  return { Name: record.name, Mountpoint: mountpoint, CreatedAt: record.createdAt };
}

/** Health from memory only: the connection's last probe, or the volume's last mount failure. */
export function statusOf(
  record: VolumeRecord,
  resolver: Resolver,
  connections: Connections,
  lastErrors: ReadonlyMap<string, string>,
): VolumeStatus {
  const mounts = totalMounts(record);
  const base = { backend: record.backend, mounted: mounts > 0, mounts };
  const resolved = resolver.tryResolve(record);
  if ("error" in resolved) return { ...base, health: "invalid", lastError: resolved.error };
  const conn = connections.health(resolved.key);
  const lastError = conn.lastError ?? lastErrors.get(record.name);
  const health = conn.health === "unmounted" && lastError !== undefined ? "down" : conn.health;
  return { ...base, target: resolved.target, health, ...(lastError !== undefined && { lastError }) };
}
