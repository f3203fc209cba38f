/**
 * The node's copy of a shared catalog, kept in the state store (so Get, List and Path answer from
 * memory and survive restarts with the revision they were read at): bringing it in line with a
 * full read or with watched changes, publishing what this node had before it used the catalog,
 * and what stays this node's own: volumes in conflict with the catalog's, and volumes the catalog
 * lost while they were mounted here (gone once unmounted).
 */
import type { Logger } from "../logger.ts";
import { totalMounts, type VolumeRecord } from "../state/records.ts";
import type { Change } from "../state/store.ts";
import { createIfAbsent, type Definition, decode, definitionOf, keys, sameVolume } from "./definition.ts";
import type { Entry, KV, WatchEvent } from "./kv.ts";

/** What the copy needs of the state store. */
export interface Copy {
  values(): Iterable<VolumeRecord>;
  get(name: string): VolumeRecord | undefined;
  meta(key: string): string | number | undefined;
  update(changes: readonly Change[]): Promise<void>;
}

const META_CATALOG = "catalog";
const META_REVISION = "catalog.revision";
const META_CONFLICTS = "catalog.conflicts";

const equal = (a: Definition, b: Definition) =>
  sameVolume(a, b) && a.createdAt === b.createdAt && a.subdir === b.subdir;

export class CatalogCopy {
  private readonly gone = new Set<string>();
  private conflicts: Set<string>;
  private readonly k: ReturnType<typeof keys>;

  constructor(
    private readonly copy: Copy,
    private readonly kv: KV,
    private readonly options: { readonly where: string; readonly prefix: string; readonly log: Logger },
  ) {
    this.k = keys(options.prefix);
    this.conflicts = new Set(JSON.parse(String(copy.meta(META_CONFLICTS) ?? "[]")) as string[]);
  }

  isGone(name: string): boolean {
    return this.gone.has(name);
  }

  /** A definition is in the catalog again (created anew): not gone any more. */
  revived(name: string): void {
    this.gone.delete(name);
  }

  conflicted(name: string): boolean {
    return this.conflicts.has(name);
  }

  /** The conflicting volume is being removed here: forget the conflict (the caller removes the volume). */
  async resolveConflict(name: string): Promise<void> {
    const conflicts = new Set(this.conflicts);
    conflicts.delete(name);
    await this.copy.update([{ meta: { key: META_CONFLICTS, value: JSON.stringify([...conflicts]) } }]);
    this.conflicts = conflicts;
  }

  /**
   * Publish this node's volumes the first time it uses this catalog: the store `cluster` (whatever
   * the URL lists) under this prefix. True when it did. Keyed by URL, a node given its members in
   * another order published again, and brought back what others had removed meanwhile.
   */
  async publishOnce(cluster: string): Promise<boolean> {
    const identity = `${cluster}${this.options.prefix}`;
    if (this.copy.meta(META_CATALOG) === identity) return false;
    await this.publish(identity);
    return true;
  }

  /** Bring the copy in line with a full read at `revision`; a mounted volume the catalog lost stays until unmounted. */
  async resync(entries: readonly Entry[], revision: number): Promise<number> {
    const catalog = new Map<string, Definition>();
    for (const e of entries) {
      const name = e.key.slice(this.k.volumes.length);
      const def = decode(name, e.value);
      if (def) catalog.set(name, def);
      else this.malformed(e.key);
    }
    const changes: Change[] = [];
    for (const [name, def] of catalog) {
      if (this.conflicts.has(name)) continue;
      this.gone.delete(name);
      const mine = this.copy.get(name);
      if (!mine || !equal(definitionOf(mine), def)) changes.push({ define: def });
    }
    for (const record of this.copy.values()) {
      if (catalog.has(record.name) || this.conflicts.has(record.name)) continue;
      changes.push({ forget: record.name });
      if (totalMounts(record) > 0) this.gone.add(record.name);
    }
    await this.copy.update([...changes, { meta: { key: META_REVISION, value: revision } }]);
    return catalog.size;
  }

  /** Watched changes of the definitions, up to `revision`. */
  async follow(events: readonly WatchEvent[], revision: number): Promise<void> {
    const changes: Change[] = [];
    for (const ev of events) {
      const name = ev.key.slice(this.k.volumes.length);
      if (this.conflicts.has(name)) continue;
      const def = ev.type === "put" ? decode(name, ev.value) : undefined;
      if (ev.type === "put" && !def) this.malformed(ev.key);
      if (def) {
        this.gone.delete(name);
        changes.push({ define: def });
      } else if (ev.type === "delete") {
        const record = this.copy.get(name);
        if (!record) continue;
        changes.push({ forget: name });
        if (totalMounts(record) > 0) this.gone.add(name);
      }
    }
    await this.copy.update([...changes, { meta: { key: META_REVISION, value: revision } }]);
  }

  private malformed(key: string): void {
    this.options.log.error(
      { key },
      "malformed volume definition in the catalog (or not a volume name): ignored",
    );
  }

  /**
   * This node's volumes from before it used this catalog: published create-if-absent. One that
   * conflicts with a definition already there is reported and kept here as it is, never overwritten.
   */
  private async publish(identity: string): Promise<void> {
    const conflicts = new Set(this.conflicts);
    for (const record of this.copy.values()) {
      const def = definitionOf(record);
      const standing = await createIfAbsent(this.kv, this.options.prefix, def);
      if (standing && sameVolume(standing, def)) continue;
      conflicts.add(def.name);
      this.options.log.error(
        { volume: def.name, catalog: this.options.where },
        "volume conflicts with the catalog's definition of that name: kept on this node only; remove it here, or rename it",
      );
    }
    await this.copy.update([
      { meta: { key: META_CATALOG, value: identity } },
      { meta: { key: META_CONFLICTS, value: JSON.stringify([...conflicts]) } },
    ]);
    this.conflicts = conflicts;
  }
}
