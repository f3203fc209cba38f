/**
 * The shared catalog (etcd behind the KV seam): Create is a create-if-absent transaction on the
 * volume's key, Remove a delete that proves no other node holds an in-use marker, and the node's copy
 * (the state store) follows the catalog through CopySync. While the catalog is unreachable, Create
 * and Remove fail at once with the reason; everything already known keeps working from the copy.
 */
import { busy, conflict, VolgateError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { totalMounts, type VolumeRecord } from "../state/records.ts";
import { within } from "../time.ts";
import { type Catalog, type CatalogStatus, FIRST_SYNC_WAIT_MS } from "./catalog.ts";
import { CatalogCopy, type Copy } from "./copy.ts";
import { createIfAbsent, type Definition, decode, keys, sameVolume } from "./definition.ts";
import type { Entry, KV } from "./kv.ts";
import { Markers } from "./markers.ts";
import { ProfileCheck } from "./profiles.ts";
import { CopySync } from "./sync.ts";

export interface SharedOptions {
  /** For messages and the copy's identity: `etcd://h1:2379,h2:2379/volgate/`. */
  readonly where: string;
  /** Key prefix, ending in `/`. */
  readonly prefix: string;
  readonly node: string;
  /** Where this node's credentials profiles are (definitions name them). */
  readonly secretsDir: string;
  readonly log: Logger;
}

/** How many times Remove retries when a marker or a change raced it. */
const REMOVE_TRIES = 3;

export class SharedCatalog implements Catalog {
  private readonly k: ReturnType<typeof keys>;
  private readonly markers: Markers;
  private readonly copy: CatalogCopy;
  private readonly sync: CopySync;
  private readonly profiles: ProfileCheck;

  constructor(
    private readonly kv: KV,
    private readonly options: SharedOptions,
    copy: Copy,
  ) {
    this.k = keys(options.prefix);
    const mounted = function* () {
      for (const r of copy.values()) if (totalMounts(r) > 0) yield r.name;
    };
    this.markers = new Markers(kv, options, mounted);
    this.profiles = new ProfileCheck(options.secretsDir, () => copy.values());
    this.copy = new CatalogCopy(copy, kv, options);
    this.sync = new CopySync(kv, options, this.copy, this.markers, () => this.profiles.refresh());
    kv.onLeaseLost(() => this.sync.leaseLost());
  }

  start(): void {
    this.profiles.start();
    this.sync.start();
  }

  status(): CatalogStatus {
    return this.sync.status();
  }

  /** Before a slow preflight: an unreachable catalog says so at once (a first sync under way is waited for by the call). */
  ready(): void {
    const s = this.sync.status();
    if (s.state === "unreachable") throw this.unreachable(s);
  }

  isGone(name: string): boolean {
    return this.copy.isGone(name);
  }

  conflicted(name: string): boolean {
    return this.copy.conflicted(name);
  }

  missingProfile(record: VolumeRecord): string | undefined {
    return this.profiles.lacking(record);
  }

  async create(def: Definition): Promise<Definition> {
    const standing = await this.call(() => createIfAbsent(this.kv, this.options.prefix, def));
    if (standing && sameVolume(standing, def)) {
      this.copy.revived(def.name);
      return standing;
    }
    throw conflict(
      `volume ${def.name} already exists in the catalog ${this.options.where} with other options${standing ? ` (created ${standing.createdAt})` : ""}: remove it first or pick another name`,
    );
  }

  async remove(name: string): Promise<Definition | undefined> {
    // Never published (it conflicts with the catalog's own): removing it here touches the catalog
    // not, and the catalog's shows here from now on (read now, or at the next resync if unreachable).
    if (this.copy.conflicted(name)) {
      await this.copy.resolveConflict(name);
      return this.read(name).catch(() => undefined);
    }
    for (let attempt = 0; attempt < REMOVE_TRIES; attempt++) {
      if (await this.call(() => this.tryRemove(name))) return undefined;
    }
    throw busy(
      `volume ${name} kept changing in the catalog ${this.options.where} while removing it: try again`,
    );
  }

  async inUse(name: string, using: boolean): Promise<void> {
    if (this.copy.conflicted(name)) return; // the catalog's volume of that name is another one
    const reachable = this.sync.status().state === "ok";
    if (using) {
      await this.markers.add(name, reachable).catch((err: unknown) => {
        if (err instanceof VolgateError) throw err;
        // The catalog went away meanwhile: the marker is put by the resync this starts.
        this.options.log.warn({ volume: name, err: (err as Error).message }, "in-use marker deferred");
        this.sync.failed(err as Error);
      });
      return;
    }
    await this.markers.remove(name, reachable).catch((err: Error) => {
      // Left, it would refuse other nodes' Remove for as long as this node lives: the resync deletes it.
      this.options.log.warn({ volume: name, err: err.message }, "in-use marker left for the resync");
      this.sync.failed(err);
    });
  }

  async close(): Promise<void> {
    this.profiles.stop();
    this.sync.stop();
    await this.kv.close();
  }

  /**
   * The guard first, then the markers: a marker put after the guard was read rewrites the guard, so
   * the delete's compare fails and the next try sees the marker.
   */
  private async tryRemove(name: string): Promise<boolean> {
    const guard = await this.exact(this.k.guard(name));
    const markers = await this.kv.list(this.k.inUse(name));
    const others = markers.entries
      .map((e) => e.key.slice(this.k.inUse(name).length))
      .filter((node) => node !== this.options.node);
    if (others.length > 0) {
      throw busy(
        `volume ${name} is in use on ${others.length > 1 ? "nodes" : "node"} ${others.join(", ")}: stop the containers using it there first`,
      );
    }
    const volume = await this.exact(this.k.volume(name));
    if (volume === 0) return true;
    const { ok } = await this.kv.txn(
      [
        { key: this.k.guard(name), target: "mod", is: "==", value: guard },
        { key: this.k.volume(name), target: "mod", is: "==", value: volume },
      ],
      [
        { delete: this.k.volume(name) },
        { delete: this.k.guard(name) },
        { delete: this.k.marker(name, this.options.node) },
      ],
    );
    return ok;
  }

  private async read(name: string): Promise<Definition | undefined> {
    const entry = await this.entryAt(this.k.volume(name));
    return entry && decode(name, entry.value);
  }

  /** The mod revision of exactly `key`, 0 when absent. */
  private async exact(key: string): Promise<number> {
    return (await this.entryAt(key))?.modRevision ?? 0;
  }

  /** Exactly `key` (a prefix read also finds the keys it begins). */
  private async entryAt(key: string): Promise<Entry | undefined> {
    return (await this.kv.list(key)).entries.find((e) => e.key === key);
  }

  /**
   * Run a catalog call (once this node first synced, or a few seconds after it started); while the
   * catalog is unreachable, fail at once with why and what still works. A call that fails is tried once more: one in flight when etcd's leader went away fails
   * at its deadline, and the next reaches the new leader (every call here may be repeated).
   */
  private async call<T>(work: () => Promise<T>): Promise<T> {
    if (this.sync.status().state === "connecting") await within(this.sync.firstSync, FIRST_SYNC_WAIT_MS);
    const before = this.sync.status();
    if (before.state !== "ok") throw this.unreachable(before);
    let failure: Error | undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        return await work();
      } catch (err) {
        if (err instanceof VolgateError) throw err;
        failure = err as Error;
      }
    }
    this.sync.failed(failure as Error);
    throw this.unreachable(this.sync.status(), failure);
  }

  private unreachable(s: CatalogStatus, failure?: Error): VolgateError {
    const state = s.state === "connecting" ? "not connected yet" : "unreachable";
    const why = failure?.message ?? s.lastError;
    const since = s.since ? `since ${s.since}` : "";
    const detail = since || why ? ` (${[since, why].filter(Boolean).join(": ")})` : "";
    return new VolgateError(
      "backend",
      `the volume catalog ${s.where} is ${state}${detail}: creating and removing volumes need it; existing volumes keep working (inspect, ls, mount, unmount)`,
    );
  }
}
