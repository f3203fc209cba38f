/**
 * The one place where an error becomes an answer: its HTTP status, the `{"Err": ...}` body dockerd
 * shows, and the log line. Both the fastify routes and the query fast path answer through here.
 */
import { messageOf, VolgateError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** Requests carry a name and a few options: anything bigger is not from dockerd. */
export const BODY_LIMIT = 256 * 1024;

export const ACCEPT = "application/vnd.docker.plugins.v1.2+json";

/** A body larger than BODY_LIMIT (fastify raises its own code for it; the fast path raises this). */
export const TOO_LARGE = "FST_ERR_CTP_BODY_TOO_LARGE";

export function failure(err: unknown): { status: number; body: { Err: string } } {
  if (err instanceof VolgateError) return { status: 500, body: { Err: err.message } };
  if ((err as { code?: string }).code === TOO_LARGE) {
    return { status: 413, body: { Err: `request body too large (limit ${BODY_LIMIT} bytes)` } };
  }
  return { status: 500, body: { Err: `internal error: ${messageOf(err)}` } };
}

export function logFailure(log: Logger, op: string, volume: unknown, err: unknown, message: string): void {
  const kind = err instanceof VolgateError ? err.kind : "internal";
  // dockerd asks Get before every create and for other drivers' volumes: an unknown name is routine.
  const level = kind === "internal" ? "error" : kind === "not_found" ? "debug" : "warn";
  if (log.isLevelEnabled(level)) log[level]({ op, volume, kind, err: message }, "failed");
}
