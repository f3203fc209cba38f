/**
 * An in-process etcd for catalog unit tests: one store with revisions, leases and prefix watches,
 * and a KV client per node with the seam's interface. Outages are switches: `down` refuses calls at
 * once (connection refused), `silent` lets them time out (a server that accepts and never answers),
 * per node or for everyone; a watch ends when its node loses the server. Seen on a real 3-member
 * cluster and modelled here too: the member a watch is on goes away while the others answer
 * (`dropWatches`), and calls in flight while a new leader is elected fail at their deadline, the
 * next ones succeed (`failNext`).
 */
import type { Compare, Entry, KV, TxnResult, WatchEvent, Write } from "../../src/catalog/kv.ts";

interface Stored {
  value: string;
  modRevision: number;
  version: number;
  lease?: string;
}

interface Subscriber {
  readonly node: string;
  readonly prefix: string;
  readonly onEvents: (events: readonly WatchEvent[], revision: number) => void;
  readonly onEnd: (err: Error) => void;
}

type Outage = "down" | "silent";

/** How long a call to a silent server takes to fail (the real client's deadline is 2 s). */
const SILENT_MS = 50;

export class FakeEtcd {
  revision = 1;
  /** etcd's cluster ID, as every answer's header carries it. */
  cluster = "fake-cluster-1";
  readonly data = new Map<string, Stored>();
  /** Every change, for watches that start from an earlier revision. */
  private readonly history: Array<{ revision: number; events: readonly WatchEvent[] }> = [];
  private readonly subscribers = new Set<Subscriber>();
  private readonly outages = new Map<string, Outage>();
  private readonly leaseLost = new Map<string, Array<() => void>>();
  private everyone: Outage | undefined;
  private readonly failing = new Map<string, number>();

  /** Every call and watch of `node` (or of all nodes) fails from now on, as an outage would. */
  cut(kind: Outage = "down", node?: string): void {
    if (node === undefined) this.everyone = kind;
    else this.outages.set(node, kind);
    for (const s of [...this.subscribers]) {
      if (node === undefined || s.node === node) {
        this.subscribers.delete(s);
        s.onEnd(new Error("14 UNAVAILABLE: connection refused"));
      }
    }
  }

  /** End the watches of `node` (or everyone's) while calls keep working: their member went away. */
  dropWatches(node?: string): void {
    for (const s of [...this.subscribers]) {
      if (node === undefined || s.node === node) {
        this.subscribers.delete(s);
        s.onEnd(new Error("14 UNAVAILABLE: Connection dropped"));
      }
    }
  }

  /** The next `count` calls of `node` fail at their deadline (a leader election), later ones work. */
  failNext(count: number, node: string): void {
    this.failing.set(node, count);
  }

  heal(node?: string): void {
    if (node === undefined) {
      this.everyone = undefined;
      this.outages.clear();
    } else this.outages.delete(node);
  }

  /** `node`'s lease expired: its leased keys go, and it hears about it. */
  expireLease(node: string): void {
    for (const [key, s] of [...this.data]) if (s.lease === node) this.delete(key);
    for (const handler of this.leaseLost.get(node) ?? []) handler();
  }

  values(prefix = ""): Array<[string, string]> {
    return [...this.data].filter(([k]) => k.startsWith(prefix)).map(([k, s]) => [k, s.value]);
  }

  client(node: string): KV {
    const gate = async () => {
      const failing = this.failing.get(node) ?? 0;
      if (failing > 0) {
        this.failing.set(node, failing - 1);
        throw new Error("no answer within 2 s");
      }
      const outage = this.outages.get(node) ?? this.everyone;
      if (outage === "down")
        throw new Error("14 UNAVAILABLE: No connection established (connection refused)");
      if (outage === "silent") {
        await new Promise((r) => setTimeout(r, SILENT_MS));
        throw new Error("4 DEADLINE_EXCEEDED: Deadline exceeded");
      }
    };
    return {
      list: async (prefix) => {
        await gate();
        return { revision: this.revision, entries: this.entries(prefix), cluster: this.cluster };
      },
      txn: async (compares, writes, orRead = []) => {
        await gate();
        return this.txn(node, compares, writes, orRead);
      },
      watch: async (prefix, revision, onEvents, onEnd) => {
        await gate();
        const sub: Subscriber = { node, prefix, onEvents, onEnd };
        for (const h of this.history.filter((x) => x.revision > revision)) {
          const mine = h.events.filter((e) => e.key.startsWith(prefix));
          if (mine.length > 0) setImmediate(() => onEvents(mine, h.revision));
        }
        this.subscribers.add(sub);
        return async () => {
          this.subscribers.delete(sub);
        };
      },
      onLeaseLost: (handler) => {
        this.leaseLost.set(node, [...(this.leaseLost.get(node) ?? []), handler]);
      },
      close: async () => {
        for (const s of [...this.subscribers]) if (s.node === node) this.subscribers.delete(s);
      },
    };
  }

  private entries(prefix: string): Entry[] {
    return [...this.data]
      .filter(([k]) => k.startsWith(prefix))
      .map(([key, s]) => ({ key, value: s.value, modRevision: s.modRevision }));
  }

  private holds(c: Compare): boolean {
    const s = this.data.get(c.key);
    const actual = c.target === "version" ? (s?.version ?? 0) : (s?.modRevision ?? 0);
    return c.is === "==" ? actual === c.value : actual > c.value;
  }

  private txn(
    node: string,
    compares: readonly Compare[],
    writes: readonly Write[],
    orRead: readonly string[],
  ): TxnResult {
    if (!compares.every((c) => this.holds(c))) {
      return { ok: false, read: orRead.flatMap((k) => this.entries(k).filter((e) => e.key === k)) };
    }
    // As etcd: a transaction that changes nothing (deleting absent keys) makes no new revision.
    const changes = writes.some((w) => !("delete" in w) || this.data.has(w.delete));
    if (changes) this.revision++;
    const events: WatchEvent[] = [];
    for (const w of writes) {
      if ("delete" in w) {
        if (this.data.has(w.delete)) events.push({ type: "delete", key: w.delete, value: "" });
        this.data.delete(w.delete);
      } else {
        const before = this.data.get(w.put);
        this.data.set(w.put, {
          value: w.value,
          modRevision: this.revision,
          version: (before?.version ?? 0) + 1,
          ...(w.leased && { lease: node }),
        });
        events.push({ type: "put", key: w.put, value: w.value });
      }
    }
    this.publish(events);
    return { ok: true, read: [] };
  }

  private delete(key: string): void {
    this.revision++;
    this.data.delete(key);
    this.publish([{ type: "delete", key, value: "" }]);
  }

  private publish(events: readonly WatchEvent[]): void {
    const revision = this.revision;
    this.history.push({ revision, events });
    for (const s of this.subscribers) {
      const mine = events.filter((e) => e.key.startsWith(s.prefix));
      if (mine.length > 0) setImmediate(() => s.onEvents(mine, revision));
    }
  }
}
