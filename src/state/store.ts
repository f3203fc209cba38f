/**
 * The state store: the only writer of volume records. Records come out read-only; a change goes
 * in through `update` (or put/remove/setMounts/setMeta), is made durable (a journal line, or the
 * secrets file for inline secrets), and only then applied in memory: a change whose write fails
 * never happened, so no count, record or removal exists only in memory. `version` bumps with every
 * applied change (the List answer is cached by it). The journal is compacted into a new snapshot
 * once it holds as many entries as there are volumes, so writes stay O(1) amortized.
 */
import { mkdir } from "node:fs/promises";
import type { Logger } from "../logger.ts";
import { type Change, opsOf, saveError } from "./changes.ts";
import { writeAtomic } from "./files.ts";
import { Journal } from "./journal.ts";
import { loadStateDir } from "./load.ts";
import { apply, freeze, type Op, type Strings, stored, type Tables, type VolumeRecord } from "./records.ts";
import { formatSnapshot, SECRETS_FILE, STATE_FILE } from "./snapshot.ts";

export type { Change } from "./changes.ts";

interface Pending {
  readonly ops: Op[];
  /** Inline secrets this change sets (a record) or drops (undefined). */
  readonly secrets: Map<string, Strings | undefined>;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/** Compact once the journal holds this many entries, or as many as there are volumes. */
const MIN_COMPACT_ENTRIES = 1000;

export class StateStore {
  private readonly tables: Tables;
  private queue: Pending[] = [];
  /** Set while a flush loop runs: it takes whatever is queued before it stops, in the same tick. */
  private running = false;
  private flushing: Promise<void> = Promise.resolve();
  private changes = 0;

  private constructor(
    private readonly dir: string,
    private readonly log: Logger,
    tables: Tables,
    private generation: number,
    private journal: Journal,
  ) {
    this.tables = tables;
  }

  static async load(dir: string, log: Logger): Promise<StateStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const { snapshot, replay, secrets } = await loadStateDir(dir, log);
    const tables: Tables = { volumes: new Map(), meta: new Map(Object.entries(snapshot.meta)), secrets };
    for (const v of snapshot.volumes) tables.volumes.set(v.name, freeze(v, secrets.get(v.name)));
    for (const t of replay?.ops ?? []) for (const op of t) apply(tables, op);
    const journal = await Journal.open(dir, snapshot.generation, replay);
    const store = new StateStore(dir, log, tables, snapshot.generation, journal);
    if (snapshot.migrated)
      await store
        .compact()
        .catch((err: Error) =>
          log.warn({ err: err.message }, "state kept in its old format for now: cannot rewrite it"),
        );
    return store;
  }

  /** Bumps with every applied change. */
  get version(): number {
    return this.changes;
  }

  get size(): number {
    return this.tables.volumes.size;
  }

  get(name: string): VolumeRecord | undefined {
    return this.tables.volumes.get(name);
  }

  values(): IterableIterator<VolumeRecord> {
    return this.tables.volumes.values();
  }

  meta(key: string): string | number | undefined {
    return this.tables.meta.get(key);
  }

  put(record: VolumeRecord): Promise<void> {
    return this.update([{ put: record }]);
  }

  remove(name: string): Promise<void> {
    return this.update([{ remove: name }]);
  }

  setMounts(name: string, counts: Readonly<Record<string, number>>): Promise<void> {
    return this.update([{ mounts: { name, counts } }]);
  }

  /** Make `changes` durable as one transaction, then apply them; rejects (changing nothing) if the write fails. */
  update(changes: readonly Change[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const secrets: Pending["secrets"] = new Map();
      const ops = changes.flatMap((c) => opsOf(c, secrets, this.tables));
      this.queue.push({ ops, secrets, resolve, reject });
      if (this.running) return;
      this.running = true;
      // Start on the next microtask: changes made in the same tick share one write.
      this.flushing = Promise.resolve().then(() => this.flush());
    });
  }

  /** Wait for every change in flight, then close the journal. */
  async close(): Promise<void> {
    while (this.running) await this.flushing;
    await this.journal.close();
  }

  /** Write and apply batches until the queue is empty; the flag drops in the same tick the queue is seen empty. */
  private async flush(): Promise<void> {
    for (;;) {
      const batch = this.queue;
      if (batch.length === 0) {
        this.running = false;
        return;
      }
      this.queue = [];
      try {
        await this.write(batch);
      } catch (err) {
        const error = saveError(this.dir, err);
        this.log.error({ err: error.message }, "state not saved");
        for (const p of batch) p.reject(error);
        continue;
      }
      for (const p of batch) {
        for (const [name, value] of p.secrets) {
          if (value === undefined) this.tables.secrets.delete(name);
          else this.tables.secrets.set(name, value);
        }
        for (const op of p.ops) apply(this.tables, op);
        this.changes++;
        p.resolve();
      }
    }
  }

  private async write(batch: readonly Pending[]): Promise<void> {
    if (this.journal.broken || this.journal.entries >= Math.max(MIN_COMPACT_ENTRIES, this.size)) {
      await this.compact();
    }
    await this.writeSecrets(batch);
    await this.journal.append(batch.map((p) => p.ops));
  }

  /** Inline secrets live apart from the journal, in one 0600 file rewritten when a batch changes them. */
  private async writeSecrets(batch: readonly Pending[]): Promise<void> {
    if (batch.every((p) => p.secrets.size === 0)) return;
    const next = new Map(this.tables.secrets);
    for (const p of batch) {
      for (const [name, value] of p.secrets) {
        if (value === undefined) next.delete(name);
        else next.set(name, value);
      }
    }
    await writeAtomic(this.dir, SECRETS_FILE, JSON.stringify(Object.fromEntries(next)));
  }

  /**
   * Everything into a new snapshot, then a fresh journal continuing it. A crash between the two
   * leaves the old journal, whose header names the old generation, so it is ignored at load.
   */
  private async compact(): Promise<void> {
    const generation = this.generation + 1;
    const volumes = [...this.tables.volumes.values()].map(stored);
    await writeAtomic(
      this.dir,
      STATE_FILE,
      formatSnapshot({ generation, volumes, meta: Object.fromEntries(this.tables.meta) }),
    );
    this.generation = generation;
    const old = this.journal;
    try {
      this.journal = await Journal.fresh(this.dir, generation);
    } catch (err) {
      // The old journal continues the old generation: appending to it would be ignored at load.
      old.broken = true;
      throw err;
    }
    await old.close().catch(() => {});
    this.log.debug({ generation, volumes: volumes.length }, "state compacted");
  }
}
