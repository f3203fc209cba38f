/**
 * The little a shared catalog needs from a key-value store, as one seam: a prefix read with its
 * revision, a compare-and-write transaction, a prefix watch, and writes tied to this node's lease.
 * etcd-kv.ts puts etcd behind it; unit tests use an in-memory fake with the same shape.
 */
export interface Entry {
  readonly key: string;
  readonly value: string;
  readonly modRevision: number;
}

/** `version` 0 means "absent"; `mod` is the revision of the key's last write (0 when absent). */
export interface Compare {
  readonly key: string;
  readonly target: "version" | "mod";
  readonly is: "==" | ">";
  readonly value: number;
}

/** `leased` writes disappear with this node's lease (a node that stops keeping it alive). */
export type Write =
  | { readonly put: string; readonly value: string; readonly leased?: boolean }
  | { readonly delete: string };

export interface WatchEvent {
  readonly type: "put" | "delete";
  readonly key: string;
  readonly value: string;
}

export interface KV {
  /**
   * Every key under `prefix`, the revision the read saw, and which store answered (etcd's cluster
   * ID: the same cluster whichever members a URL lists).
   */
  list(prefix: string): Promise<{ revision: number; entries: Entry[]; cluster: string }>;
  /** When every compare holds, do `writes` and answer ok; otherwise answer the entries of `orRead`. */
  txn(compares: readonly Compare[], writes: readonly Write[], orRead?: readonly string[]): Promise<TxnResult>;
  /**
   * Changes under `prefix` after `revision`, until the returned stop is called or the stream breaks
   * (`onEnd`, with why). Resolves once the watch is established.
   */
  watch(
    prefix: string,
    revision: number,
    onEvents: (events: readonly WatchEvent[], revision: number) => void,
    onEnd: (err: Error) => void,
  ): Promise<() => Promise<void>>;
  /** Called when this node's lease was lost (expired while unreachable): leased keys are gone. */
  onLeaseLost(handler: () => void): void;
  close(): Promise<void>;
}

export interface TxnResult {
  readonly ok: boolean;
  readonly read: readonly Entry[];
}
