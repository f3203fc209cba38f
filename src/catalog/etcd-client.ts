/**
 * The etcd3 client as the catalog needs it against a cluster, from what was measured on real etcd:
 * - A call fails over to the other members: with no retry at all, a call that picked a killed
 *   member failed (a third of all calls with one of three down). One retry per other member, all
 *   under the call's one deadline, so a retry never extends it (and none once it has passed).
 * - A member that failed a call is skipped for a second, so a frozen or powered-off member costs
 *   one call its deadline, not every call that picks it. Not cockatiel's circuit breaker: its
 *   half-open state makes every call wait for one trial call, and the client retries an expired
 *   auth token from inside that call, so it waited for itself (calls hung past their deadlines).
 * - The client re-opens a broken watch stream after a backoff that grew to 30 s with each member
 *   that failed it: kept short, since our own loop decides when to give up.
 * - Every call is bounded by our own timer too: the client logs in (a raft proposal) member by
 *   member with a deadline each, outside the call's deadline.
 */
import {
  BrokenCircuitError,
  ExponentialBackoff,
  handleWhen,
  type IPolicy,
  isBrokenCircuitError,
  noop,
  retry,
} from "cockatiel";
import { Etcd3, GRPCDeadlineExceededError, type IOptions, isRecoverableError } from "etcd3";
import { within } from "../time.ts";

/** A unary call (range, txn, lease grant) that takes longer than this has failed. */
export const CALL_TIMEOUT_MS = 2000;
/** How long a member that failed a call is left out before it is tried again. */
const SKIP_FAILED_MEMBER_MS = 1000;

export interface EtcdEndpoint {
  /** `http://h:p` or `https://h:p`. */
  readonly hosts: readonly string[];
  readonly auth?: { readonly username: string; readonly password: string };
  readonly tls?: { readonly ca: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
}

/** The call options of one call: its deadline, shared by its retries on other members. */
export const callOptions = (): { deadline: Date } => ({ deadline: new Date(Date.now() + CALL_TIMEOUT_MS) });

/** Calls through one member fail at once (the pool moves on to the next) for `ms` after it failed one. */
function skipAfterFailure(ms: number): IPolicy {
  let failedAt = Number.NEGATIVE_INFINITY;
  return {
    _altReturn: undefined as never,
    onSuccess: noop.onSuccess,
    onFailure: noop.onFailure,
    async execute(fn, signal = new AbortController().signal) {
      if (Date.now() - failedAt < ms) throw new BrokenCircuitError("this etcd member failed its last call");
      try {
        return await fn({ signal });
      } catch (err) {
        if (err instanceof Error && isRecoverableError(err)) failedAt = Date.now();
        throw err;
      }
    },
  };
}

export function etcdClient(endpoint: EtcdEndpoint): Etcd3 {
  const cluster = endpoint.hosts.length > 1;
  // Past the deadline no retry can succeed; it would only mark the members it tries as failed.
  const elsewhere = handleWhen(
    (err) => isRecoverableError(err) && !(err instanceof GRPCDeadlineExceededError),
  );
  const options: IOptions = {
    hosts: [...endpoint.hosts],
    dialTimeout: CALL_TIMEOUT_MS,
    faultHandling: {
      host: () => (cluster ? skipAfterFailure(SKIP_FAILED_MEMBER_MS) : noop),
      global: cluster ? retry(elsewhere, { maxAttempts: endpoint.hosts.length - 1 }) : noop,
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 500 }).next(),
    },
    // Streams (watch, lease keep-alive) live on; every unary call without its own options gets a deadline.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : callOptions()),
    ...(endpoint.auth && { auth: { ...endpoint.auth } }),
    ...(endpoint.tls && {
      credentials: {
        rootCertificate: endpoint.tls.ca,
        ...(endpoint.tls.cert && { certChain: endpoint.tls.cert }),
        ...(endpoint.tls.key && { privateKey: endpoint.tls.key }),
      },
    }),
  };
  return new Etcd3(options);
}

/** `work`, failed with a plain message after the call deadline (and a little) whatever the client does. */
export async function bounded<T>(work: Promise<T>): Promise<T> {
  const settled = work.then(
    (value) => ({ value }),
    (err: unknown) => ({ err }),
  );
  const result = await within(settled, CALL_TIMEOUT_MS + 250);
  if (result === "late") throw new Error(`no answer within ${CALL_TIMEOUT_MS / 1000} s`);
  if ("err" in result) throw new Error(describe(result.err));
  return result.value;
}

/** gRPC's messages, shortened to what an operator needs ("connect ECONNREFUSED 10.0.0.1:2379"). */
function describe(err: unknown): string {
  if (isBrokenCircuitError(err)) return "no member answered (each failed its last call)";
  const message = err instanceof Error ? err.message : String(err);
  const refused = /Last error: (?:Error: )?(.*?)\.?\s*(?:Resolution note:.*)?$/.exec(message);
  if (/^14 UNAVAILABLE/.test(message) && refused?.[1]) return refused[1];
  if (/DEADLINE_EXCEEDED|Deadline exceeded/i.test(message))
    return `no answer within ${CALL_TIMEOUT_MS / 1000} s`;
  return message.replace(/\s*Resolution note:\s*$/, "");
}
