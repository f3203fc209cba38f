/**
 * The node's copy of a shared catalog, kept in the state store (so Get, List and Path answer from
 * memory and survive restarts with the revision they were read at). Each (re)connect: publish this
 * node's volumes if it was not using this catalog before (create-if-absent, a conflict is reported
 * and left alone), read everything (deletions made while away included), bring the copy in line,
 * then follow a watch from that revision until it breaks or a health probe fails; then retry.
 */
import type { Logger } from "../logger.ts";
import { totalMounts, type VolumeRecord } from "../state/records.ts";
import type { Change } from "../state/store.ts";
import { sleep } from "../time.ts";
import type { CatalogStatus } from "./catalog.ts";
import { type Definition, decode, definitionOf, encode, keys, sameVolume } from "./definition.ts";
import type { KV, WatchEvent } from "./kv.ts";
import type { Markers } from "./markers.ts";

/** What the sync needs of the state store. */
export interface Copy {
  values(): Iterable<VolumeRecord>;
  get(name: string): VolumeRecord | undefined;
  meta(key: string): string | number | undefined;
  update(changes: readonly Change[]): Promise<void>;
}

const META_CATALOG = "catalog";
const META_REVISION = "catalog.revision";
const META_CONFLICTS = "catalog.conflicts";
const HEALTH_MS = 5000;
const RETRY_MS = [500, 1000, 2000, 5000];

const equal = (a: Definition, b: Definition) =>
  sameVolume(a, b) && a.createdAt === b.createdAt && a.subdir === b.subdir;

export class CopySync {
  private state: CatalogStatus["state"] = "connecting";
  private since = new Date().toISOString();
  private lastError: string | undefined;
  private readonly gone = new Set<string>();
  private conflicts: Set<string>;
  private stopped = false;
  private breakWatch: ((err: Error) => void) | undefined;
  private readonly k: ReturnType<typeof keys>;

  constructor(
    private readonly kv: KV,
    private readonly options: { readonly where: string; readonly prefix: string; readonly log: Logger },
    private readonly copy: Copy,
    private readonly markers: Markers,
  ) {
    this.k = keys(options.prefix);
    this.conflicts = new Set(JSON.parse(String(copy.meta(META_CONFLICTS) ?? "[]")) as string[]);
  }

  status(): CatalogStatus {
    return {
      where: this.options.where,
      state: this.state,
      ...(this.state !== "ok" && { since: this.since }),
      ...(this.lastError !== undefined && { lastError: this.lastError }),
    };
  }

  isGone(name: string): boolean {
    return this.gone.has(name);
  }

  start(): void {
    void this.run();
  }

  /** Stop following; the loop ends at its next step (closing the client fails what is in flight). */
  stop(): void {
    this.stopped = true;
    this.breakWatch?.(new Error("stopping"));
  }

  /** A definition is in the catalog again (created anew): not gone any more. */
  revived(name: string): void {
    this.gone.delete(name);
  }

  conflicted(name: string): boolean {
    return this.conflicts.has(name);
  }

  /**
   * The conflicting volume is being removed here: forget the conflict. The catalog's definition of
   * that name follows through the watch from then on (the caller removes the local one).
   */
  async resolveConflict(name: string): Promise<void> {
    const conflicts = new Set(this.conflicts);
    conflicts.delete(name);
    await this.copy.update([{ meta: { key: META_CONFLICTS, value: JSON.stringify([...conflicts]) } }]);
    this.conflicts = conflicts;
  }

  /** A call failed: the catalog is unreachable until a full resync succeeds. */
  failed(err: Error): void {
    this.breakWatch?.(err);
  }

  leaseLost(): void {
    void this.markers.resync().catch((err: Error) => this.failed(err));
  }

  private async run(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.followOnce();
        attempt = 0;
      } catch (err) {
        if (this.stopped) return;
        this.markUnreachable(err as Error);
      }
      await sleep(RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)] ?? 5000);
    }
  }

  private markUnreachable(err: Error): void {
    if (this.state === "ok") {
      this.since = new Date().toISOString();
      this.options.log.error({ catalog: this.options.where, err: err.message }, "volume catalog unreachable");
    }
    this.state = "unreachable";
    this.lastError = err.message;
  }

  /** One connected stretch: publish, resync, watch; resolves never, rejects when it ends. */
  private async followOnce(): Promise<void> {
    if (this.copy.meta(META_CATALOG) !== this.options.where) await this.publish();
    const { revision, entries } = await this.kv.list(this.k.volumes);
    const catalog = new Map<string, Definition>();
    for (const e of entries) {
      const name = e.key.slice(this.k.volumes.length);
      const def = decode(name, e.value);
      if (def) catalog.set(name, def);
      else this.options.log.error({ key: e.key }, "malformed volume definition in the catalog: ignored");
    }
    await this.copy.update([...this.resync(catalog), { meta: { key: META_REVISION, value: revision } }]);
    const stretch = new AbortController();
    let fail: (err: Error) => void = () => {};
    const ended = new Promise<never>((_, reject) => {
      fail = reject;
    });
    ended.catch(() => {}); // it may end before anyone waits on it
    this.breakWatch = (err) => {
      stretch.abort();
      fail(err);
    };
    try {
      const stopWatch = await this.kv.watch(
        this.k.volumes,
        revision,
        (events, rev) => void this.onEvents(events, rev),
        (err) => this.breakWatch?.(err),
      );
      try {
        await this.markers.resync();
        if (this.state !== "ok") {
          this.options.log.info(
            { catalog: this.options.where, volumes: catalog.size },
            "volume catalog in sync",
          );
        }
        this.state = "ok";
        this.lastError = undefined;
        await Promise.race([ended, this.probe(stretch.signal)]);
      } finally {
        await stopWatch().catch(() => {});
      }
    } finally {
      this.breakWatch = undefined;
      stretch.abort();
    }
  }

  /** Changes that make the copy equal the catalog; a mounted volume the catalog lost stays until unmounted. */
  private resync(catalog: ReadonlyMap<string, Definition>): Change[] {
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
    return changes;
  }

  private async onEvents(events: readonly WatchEvent[], revision: number): Promise<void> {
    const changes: Change[] = [];
    for (const ev of events) {
      const name = ev.key.slice(this.k.volumes.length);
      if (this.conflicts.has(name)) continue;
      const def = ev.type === "put" ? decode(name, ev.value) : undefined;
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
    await this.copy
      .update([...changes, { meta: { key: META_REVISION, value: revision } }])
      .catch((err: Error) => this.failed(err)); // the copy could not follow: resync from a full read
  }

  /**
   * This node's volumes from before it used this catalog: published create-if-absent. One that
   * conflicts with a definition already there is reported and kept here as it is, never overwritten.
   */
  private async publish(): Promise<void> {
    const conflicts = new Set(this.conflicts);
    for (const record of this.copy.values()) {
      const def = definitionOf(record);
      const key = this.k.volume(def.name);
      const { ok, read } = await this.kv.txn(
        [{ key, target: "version", is: "==", value: 0 }],
        [{ put: key, value: encode(def) }],
        [key],
      );
      const standing = read[0] && decode(def.name, read[0].value);
      if (ok || (standing && sameVolume(standing, def))) continue;
      conflicts.add(def.name);
      this.options.log.error(
        { volume: def.name, catalog: this.options.where },
        "volume conflicts with the catalog's definition of that name: kept on this node only; remove it here, or rename it",
      );
    }
    await this.copy.update([
      { meta: { key: META_CATALOG, value: this.options.where } },
      { meta: { key: META_CONFLICTS, value: JSON.stringify([...conflicts]) } },
    ]);
    this.conflicts = conflicts;
  }

  /** A watch on a silent server can stay quiet forever: probe it; a failure ends this stretch. */
  private async probe(signal: AbortSignal): Promise<never> {
    for (;;) {
      await sleep(HEALTH_MS);
      if (signal.aborted) throw new Error("the watch ended");
      await this.kv.list(`${this.options.prefix}health`);
    }
  }
}
