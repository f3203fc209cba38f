/** What Get and List show of a volume: the wire shape, and a Status that never does I/O. */
import type { Catalog } from "./catalog/catalog.ts";
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
  /** In a shared catalog: its state, and anything about this volume's place in it. */
  readonly catalog?: string;
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
  catalog: Catalog,
): VolumeStatus {
  const mounts = totalMounts(record);
  const shared = catalogLine(record, catalog);
  const base = {
    backend: record.backend,
    mounted: mounts > 0,
    mounts,
    ...(shared !== undefined && { catalog: shared }),
  };
  const resolved = resolver.tryResolve(record);
  if ("error" in resolved) return { ...base, health: "invalid", lastError: resolved.error };
  const conn = connections.health(resolved.key);
  const lastError = conn.lastError ?? lastErrors.get(record.name);
  const health = conn.health === "unmounted" && lastError !== undefined ? "down" : conn.health;
  return { ...base, target: resolved.target, health, ...(lastError !== undefined && { lastError }) };
}

/** e.g. `etcd://h:2379/volgate/ ok`, or `... unreachable since T (why): this node works from its copy`. */
function catalogLine(record: VolumeRecord, catalog: Catalog): string | undefined {
  const { name } = record;
  const s = catalog.status();
  if (!s) return undefined;
  const state =
    s.state === "ok"
      ? "ok"
      : `${s.state === "connecting" ? "connecting" : "unreachable"} since ${s.since}${s.lastError ? ` (${s.lastError})` : ""}: this node works from its copy`;
  const note = catalog.isGone(name)
    ? "; removed from the catalog by another node, gone here after its last unmount"
    : catalog.conflicted(name)
      ? "; defined here otherwise than in the catalog: kept on this node only (remove it here, or rename it)"
      : "";
  const profile = catalog.missingProfile(record);
  const lacking =
    profile === undefined
      ? ""
      : `; credentials profile "${profile}" is missing on this node: copy it here from the node that created the volume (every node needs it)`;
  return `${s.where} ${state}${note}${lacking}`;
}
