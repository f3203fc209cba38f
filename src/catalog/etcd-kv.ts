/**
 * etcd (v3, through the etcd3 client: etcd-client.ts) behind the KV seam. Every call has one
 * deadline and fails over to the other members within it; the catalog decides when to try again.
 * Loaded only in catalog mode, after the socket listens: gRPC costs start-up time.
 */
import type { Lease, Watcher } from "etcd3";
import { within } from "../time.ts";
import { bounded, CALL_TIMEOUT_MS, callOptions, type EtcdEndpoint, etcdClient } from "./etcd-client.ts";
import type { Compare, Entry, KV, TxnResult, WatchEvent, Write } from "./kv.ts";

/** How long this node's in-use markers outlive it when it stops keeping its lease alive. */
const LEASE_TTL_S = 15;

/** Keys per page of a prefix read. */
const PAGE = 1000;

const bytes = (s: string) => Buffer.from(s);
const entryOf = (kv: { key: Buffer; value: Buffer; mod_revision: string }): Entry => ({
  key: kv.key.toString(),
  value: kv.value.toString(),
  modRevision: Number(kv.mod_revision),
});
/** The first key after every key starting with `prefix`. */
function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}

export function etcdKV(endpoint: EtcdEndpoint): KV {
  const client = etcdClient(endpoint);
  const lostHandlers: Array<() => void> = [];
  let lease: Lease | undefined;

  /** This node's lease, granted on first use and again after it was lost. */
  const leaseId = async (): Promise<string> => {
    if (!lease) {
      const fresh = client.lease(LEASE_TTL_S, callOptions());
      fresh.on("lost", () => {
        if (lease === fresh) lease = undefined;
        for (const handler of lostHandlers) handler();
      });
      lease = fresh;
    }
    return lease.grant();
  };

  const compare = (c: Compare) => ({
    key: bytes(c.key),
    result: c.is === "==" ? ("Equal" as const) : ("Greater" as const),
    target: c.target === "version" ? ("Version" as const) : ("Mod" as const),
    ...(c.target === "version" ? { version: c.value } : { mod_revision: c.value }),
  });

  const request = async (w: Write) =>
    "delete" in w
      ? { request_delete_range: { key: bytes(w.delete) } }
      : {
          request_put: {
            key: bytes(w.put),
            value: bytes(w.value),
            ...(w.leased && { lease: await leaseId() }),
          },
        };

  return {
    async list(prefix) {
      // Page by page at the first page's revision: one answer of 10,000 definitions is near the
      // 4 MiB a gRPC message may hold (RESOURCE_EXHAUSTED beyond).
      const end = prefixEnd(prefix);
      const entries: Entry[] = [];
      let from = bytes(prefix);
      let revision: string | undefined;
      let cluster = "";
      for (;;) {
        const page = await bounded(
          client.kv.range(
            { key: from, range_end: end, limit: PAGE, ...(revision !== undefined && { revision }) },
            callOptions(),
          ),
        );
        revision ??= page.header.revision;
        cluster ||= page.header.cluster_id;
        for (const kv of page.kvs) entries.push(entryOf(kv));
        const last = page.kvs.at(-1);
        if (!page.more || last === undefined) return { revision: Number(revision), entries, cluster };
        from = Buffer.concat([last.key, Buffer.from([0])]);
      }
    },

    async txn(compares, writes, orRead = []): Promise<TxnResult> {
      const success = await bounded(Promise.all(writes.map(request)));
      const res = await bounded(
        client.kv.txn(
          {
            compare: compares.map(compare),
            success,
            failure: orRead.map((key) => ({ request_range: { key: bytes(key) } })),
          },
          callOptions(),
        ),
      );
      const read = res.succeeded
        ? []
        : res.responses.flatMap((r) => (r.response_range?.kvs ?? []).map(entryOf));
      return { ok: res.succeeded, read };
    },

    async watch(prefix, revision, onEvents, onEnd) {
      // A client of its own for each watch: the client's watch manager wedged for good once etcd
      // cancelled a watch as it created it (an auth token that restarted members no longer knew):
      // its queue of watches to create waits for an answer that never comes.
      const own = etcdClient(endpoint);
      const watcher = own
        .watch()
        .prefix(prefix)
        .startRevision(String(revision + 1))
        .watcher();
      let ended = false;
      // The client answers a cancel only once the watch is created (or its stream breaks): while no
      // member answers that is never, and a loop waiting on it stayed stuck after etcd was back.
      const stop = async () => {
        ended = true;
        await within(
          watcher.cancel().catch(() => {}),
          CALL_TIMEOUT_MS,
        );
        own.close();
      };
      // A stopped watcher the client still revives must not feed the copy out of turn.
      watcher.on("data", (res) => {
        if (ended) return;
        const events: WatchEvent[] = res.events.map((e) => ({
          type: e.type === "Delete" ? "delete" : "put",
          key: e.kv.key.toString(),
          value: e.kv.value.toString(),
        }));
        if (events.length > 0) onEvents(events, Number(res.header.revision));
      });
      // Until it is established, a broken stream is the client's to retry (and an error rejects below).
      let live = false;
      const end = (err: Error) => {
        if (ended || !live) return;
        ended = true;
        onEnd(err);
      };
      watcher.on("disconnected", (err) => end(err));
      watcher.on("error", (err) => end(err));
      watcher.on("end", () => end(new Error("the watch stream ended")));
      try {
        await established(watcher);
        live = true;
      } catch (err) {
        await stop();
        throw err;
      }
      return stop;
    },

    onLeaseLost(handler) {
      lostHandlers.push(handler);
    },

    async close() {
      await lease?.revoke().catch(() => {});
      client.close();
    },
  };
}

/**
 * Until etcd confirmed the watch. The client's create() waits for ever while no member answers
 * (it retries the stream by itself): give up at the call deadline instead.
 */
function established(watcher: Watcher): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return new Promise<void>((resolve, reject) => {
    watcher.once("connected", () => resolve());
    watcher.once("error", reject);
    timer = setTimeout(
      () => reject(new Error(`the watch was not established within ${CALL_TIMEOUT_MS / 1000} s`)),
      CALL_TIMEOUT_MS,
    );
  }).finally(() => clearTimeout(timer));
}
