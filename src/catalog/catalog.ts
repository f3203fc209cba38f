/**
 * Where volume definitions live. `local`: the state file of this node (the embedded default; the
 * store is the catalog, so there is nothing more to do). A shared catalog (etcd) holds them for every
 * node: Create and Remove are transactions on it, and each node keeps a copy fed by a watch, from
 * which Get, List and Path answer without waiting on it.
 */
import { VolgateError } from "../errors.ts";
import type { VolumeRecord } from "../state/records.ts";
import { within } from "../time.ts";
import type { Definition } from "./definition.ts";

export interface CatalogStatus {
  /** For messages: `etcd://h1:2379,h2:2379/volgate/`. */
  readonly where: string;
  readonly state: "ok" | "connecting" | "unreachable";
  /** When it became unreachable (or when connecting began). */
  readonly since?: string;
  readonly lastError?: string;
}

export interface Catalog {
  /** Undefined for the local catalog: nothing to show. */
  status(): CatalogStatus | undefined;
  /** Throws why Create and Remove cannot use the catalog now (before any slow check is made). */
  ready(): void;
  /**
   * Create-if-absent: resolves with the definition that now stands (ours, or an equal one another
   * node created first); throws a conflict naming the volume if another definition stands.
   */
  create(def: Definition): Promise<Definition>;
  /**
   * Delete the definition (never data); refused while another node holds mounts of it. Resolves
   * with the catalog's own definition of that name when the volume removed here was another one
   * (defined here only, in conflict): it takes the removed one's place on this node.
   */
  remove(name: string): Promise<Definition | undefined>;
  /** This node now holds mounts of `name` (true) or no longer does (false). */
  inUse(name: string, using: boolean): Promise<void>;
  /** Removed from the shared catalog while mounted here: drop it once its last mount is gone. */
  isGone(name: string): boolean;
  /** Defined here otherwise than in the shared catalog (kept here only, never published). */
  conflicted(name: string): boolean;
  /** The credentials profile `record` names, when this node lacks it (from the last check, no I/O). */
  missingProfile(record: VolumeRecord): string | undefined;
  close(): Promise<void>;
}

export const localCatalog: Catalog = {
  status: () => undefined,
  ready: () => {},
  create: async (def) => def,
  remove: async () => undefined,
  inUse: async () => {},
  isGone: () => false,
  conflicted: () => false,
  missingProfile: () => undefined,
  close: async () => {},
};

/**
 * How long a Create or Remove made before this node's first sync waits for it (a node that just
 * started, with swarm's tasks arriving), rather than failing at once: dockerd gives Create 2 min.
 */
export const FIRST_SYNC_WAIT_MS = 5000;

/**
 * A shared catalog before its client is loaded (or when it cannot be): everything known keeps
 * working; Create and Remove wait a little for `loaded` (the catalog that replaces this one) and
 * go to it, or say why they cannot. Markers are put once the real one syncs.
 */
export function pendingCatalog(where: string, why?: string, loaded?: Promise<Catalog>): Catalog {
  // Read once at start (the credentials profile): fixing it takes a restart.
  const lastError = why === undefined ? undefined : `${why}; fix that, then restart volgate`;
  const status: CatalogStatus = {
    where,
    state: lastError === undefined ? "connecting" : "unreachable",
    since: new Date().toISOString(),
    ...(lastError !== undefined && { lastError }),
  };
  const refusal = () =>
    new VolgateError(
      "backend",
      `the volume catalog ${where} is ${lastError === undefined ? "not connected yet" : `unusable: ${lastError}`}: creating and removing volumes need it; existing volumes keep working`,
    );
  const real = async (): Promise<Catalog> => {
    const catalog = loaded && (await within(loaded, FIRST_SYNC_WAIT_MS));
    if (catalog === undefined || catalog === "late") throw refusal();
    return catalog;
  };
  return {
    ...localCatalog,
    status: () => status,
    ready: () => {
      if (lastError !== undefined) throw refusal();
    },
    create: async (def) => (await real()).create(def),
    remove: async (name) => (await real()).remove(name),
  };
}
