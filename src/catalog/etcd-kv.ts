/**
 * etcd (v3, through the etcd3 client) behind the KV seam. Every unary call has a deadline (without
 * one a call to a silent server hangs 45 s and more) and no retries or circuit breaker of the client's
 * own (its breaker kept failing for ~5 s after etcd came back): the catalog decides when to retry.
 * Loaded only in catalog mode, after the socket listens: gRPC costs start-up time.
 */
import { noop } from "cockatiel";
import { Etcd3, type IOptions, type Lease, type Watcher } from "etcd3";
import type { Compare, Entry, KV, TxnResult, WatchEvent, Write } from "./kv.ts";

/** A unary call (range, txn, lease grant) that takes longer than this has failed. */
const CALL_TIMEOUT_MS = 2000;
/** How long this node's in-use markers outlive it when it stops keeping its lease alive. */
const LEASE_TTL_S = 15;

export interface EtcdEndpoint {
  /** `http://h:p` or `https://h:p`. */
  readonly hosts: readonly string[];
  readonly auth?: { readonly username: string; readonly password: string };
  readonly tls?: { readonly ca: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

const bytes = (s: string) => Buffer.from(s);
/** The first key after every key starting with `prefix`. */
function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  end[end.length - 1] = (end[end.length - 1] ?? 0) + 1;
  return end;
}

export function etcdKV(endpoint: EtcdEndpoint): KV {
  const options: IOptions = {
    hosts: [...endpoint.hosts],
    dialTimeout: CALL_TIMEOUT_MS,
    faultHandling: { host: () => noop, global: noop },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS }),
    ...(endpoint.auth && { auth: { ...endpoint.auth } }),
    ...(endpoint.tls && {
      credentials: {
        rootCertificate: endpoint.tls.ca,
        ...(endpoint.tls.cert && { certChain: endpoint.tls.cert }),
        ...(endpoint.tls.key && { privateKey: endpoint.tls.key }),
      },
    }),
  };
  const client = new Etcd3(options);
  const lostHandlers: Array<() => void> = [];
  let lease: Lease | undefined;

  /** This node's lease, granted on first use and again after it was lost. */
  const leaseId = async (): Promise<string> => {
    if (!lease) {
      const fresh = client.lease(LEASE_TTL_S);
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
      const res = await client.kv.range({ key: bytes(prefix), range_end: prefixEnd(prefix) });
      const entries: Entry[] = res.kvs.map((kv) => ({
        key: kv.key.toString(),
        value: kv.value.toString(),
        modRevision: Number(kv.mod_revision),
      }));
      return { revision: Number(res.header.revision), entries };
    },

    async txn(compares, writes, orRead = []): Promise<TxnResult> {
      const res = await client.kv.txn({
        compare: compares.map(compare),
        success: await Promise.all(writes.map(request)),
        failure: orRead.map((key) => ({ request_range: { key: bytes(key) } })),
      });
      const read = res.succeeded
        ? []
        : res.responses.flatMap((r) =>
            (r.response_range?.kvs ?? []).map((kv) => ({
              key: kv.key.toString(),
              value: kv.value.toString(),
              modRevision: Number(kv.mod_revision),
            })),
          );
      return { ok: res.succeeded, read };
    },

    async watch(prefix, revision, onEvents, onEnd) {
      const watcher: Watcher = await client
        .watch()
        .prefix(prefix)
        .startRevision(String(revision + 1))
        .create();
      let ended = false;
      const end = (err: Error) => {
        if (ended) return;
        ended = true;
        onEnd(err);
      };
      watcher.on("data", (res) => {
        const events: WatchEvent[] = res.events.map((e) => ({
          type: e.type === "Delete" ? "delete" : "put",
          key: e.kv.key.toString(),
          value: e.kv.value.toString(),
        }));
        if (events.length > 0) onEvents(events, Number(res.header.revision));
      });
      watcher.on("disconnected", (err) => end(err));
      watcher.on("error", (err) => end(err));
      watcher.on("end", () => end(new Error("the watch stream ended")));
      return async () => {
        ended = true;
        await watcher.cancel();
      };
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
