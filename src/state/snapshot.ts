/**
 * The snapshot (state.json): every record and meta value at one journal generation. Format 2 is
 * a snapshot followed by a journal; format 1 (a whole-file state, no journal) is read and migrated.
 * A file that cannot be read, or one a newer volgate wrote, is never guessed at.
 */
import { isStoredRecord, type StoredRecord } from "./records.ts";

export const STATE_FILE = "state.json";
export const SECRETS_FILE = "secrets.json";
const FORMAT = 2;

export interface Snapshot {
  readonly generation: number;
  readonly volumes: readonly StoredRecord[];
  readonly meta: Readonly<Record<string, string | number>>;
  /** Read from an older format: rewrite it in this one before appending anything. */
  readonly migrated: boolean;
}

export const EMPTY: Snapshot = { generation: 0, volumes: [], meta: {}, migrated: false };

/** Turn whatever format is on disk into the current one; throws on anything unreadable. */
export function parseSnapshot(text: string): Snapshot {
  const data = JSON.parse(text) as {
    version?: unknown;
    volumes?: unknown;
    generation?: unknown;
    meta?: unknown;
  };
  if (typeof data !== "object" || data === null) throw new Error("not a JSON object");
  if (typeof data.version === "number" && data.version > FORMAT) {
    throw new Error(`written by a newer volgate (format ${data.version}); upgrade volgate`);
  }
  if (data.version !== 1 && data.version !== FORMAT)
    throw new Error(`unknown state format ${String(data.version)}`);
  if (!Array.isArray(data.volumes) || !data.volumes.every(isStoredRecord))
    throw new Error("malformed volume records");
  if (data.version === 1) return { generation: 0, volumes: data.volumes, meta: {}, migrated: true };
  if (typeof data.generation !== "number" || typeof data.meta !== "object" || data.meta === null) {
    throw new Error("malformed snapshot header");
  }
  return {
    generation: data.generation,
    volumes: data.volumes,
    meta: data.meta as Snapshot["meta"],
    migrated: false,
  };
}

export function formatSnapshot(s: Omit<Snapshot, "migrated">): string {
  return JSON.stringify({ version: FORMAT, generation: s.generation, meta: s.meta, volumes: s.volumes });
}

/** secrets.json: volume name -> its inline secret options. */
export function parseSecrets(text: string): Map<string, Readonly<Record<string, string>>> {
  const data = JSON.parse(text) as unknown;
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new Error("not a JSON object");
  const out = new Map<string, Readonly<Record<string, string>>>();
  for (const [name, value] of Object.entries(data)) {
    if (
      typeof value !== "object" ||
      value === null ||
      !Object.values(value).every((v) => typeof v === "string")
    ) {
      throw new Error(`malformed secrets of ${name}`);
    }
    out.set(name, value as Record<string, string>);
  }
  return out;
}
