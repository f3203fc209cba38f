/**
 * The one place where an error becomes an answer: its HTTP status, the `{"Err": ...}` body dockerd
 * shows, and the log line. Both the fastify routes and the query fast path answer through here.
 */
import { STATUS_CODES } from "node:http";
import { type ErrorKind, messageOf, shown, VolgateError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** Requests carry a name and a few options: anything bigger is not from dockerd. */
export const BODY_LIMIT = 256 * 1024;

export const ACCEPT = "application/vnd.docker.plugins.v1.2+json";

/** A body larger than BODY_LIMIT (fastify raises its own code for it; the fast path raises this). */
export const TOO_LARGE = "FST_ERR_CTP_BODY_TOO_LARGE";

/** What fastify's own errors about the request itself (status 4xx) mean, by their code. */
const REQUEST_ERRORS: Readonly<Record<string, string>> = {
  [TOO_LARGE]: `request body too large (limit ${BODY_LIMIT} bytes)`,
  FST_ERR_CTP_INVALID_MEDIA_TYPE:
    "the Content-Type header is not a media type: send JSON (dockerd sends none)",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "the request body is not as long as its Content-Length header",
  ECONNRESET: "the client hung up before the whole request arrived",
};

interface Classified {
  readonly status: number;
  readonly message: string;
  readonly kind: ErrorKind;
}

/**
 * Volgate's errors carry their kind; fastify's errors about the request (a bad header, a short or
 * huge body, a client gone) are the client's, answered with their 4xx; anything else is a bug.
 */
function classify(err: unknown): Classified {
  if (err instanceof VolgateError) return { status: 500, message: err.message, kind: err.kind };
  const { code, statusCode } = err as { code?: unknown; statusCode?: unknown };
  const known = typeof code === "string" ? REQUEST_ERRORS[code] : undefined;
  if (code === TOO_LARGE) return { status: 413, message: known ?? "", kind: "invalid" };
  if (typeof statusCode === "number" && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, message: known ?? `bad request: ${messageOf(err)}`, kind: "invalid" };
  }
  return { status: 500, message: `internal error: ${messageOf(err)}`, kind: "internal" };
}

/**
 * A failed request's answer (its status and `{"Err"}`), logged by its kind: the client's mistakes
 * as warnings, an unknown volume at debug, anything else as an error.
 */
export function failed(
  log: Logger,
  op: string,
  volume: unknown,
  err: unknown,
): { status: number; body: { Err: string } } {
  const { status, message, kind } = classify(err);
  // dockerd asks Get before every create and for other drivers' volumes: an unknown name is routine.
  const level = kind === "internal" ? "error" : kind === "not_found" ? "debug" : "warn";
  if (log.isLevelEnabled(level)) log[level]({ ...logged(op, volume), kind, err: message }, "failed");
  return { status, body: { Err: message } };
}

/**
 * A request's URL and Name as a log line may quote them: through shown() (the client chose them;
 * a 16 KiB path or a 200 KiB name once went into every line whole), and a Name that is no string
 * by its type only.
 */
export function logged(op: string, volume: unknown): { op: string; volume?: string } {
  if (volume === undefined) return { op: shown(op) };
  return { op: shown(op), volume: typeof volume === "string" ? shown(volume) : `(${typeof volume})` };
}

/** What Node's HTTP parser and its timeouts refuse, by error code: the status and what to tell the client. */
const CLIENT_ERRORS: Readonly<Record<string, readonly [number, string]>> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, "the request did not arrive whole in time: send it at once"],
  HPE_HEADER_OVERFLOW: [431, "the request headers are too large"],
};

/**
 * The raw answer to a request that is not HTTP or did not arrive in time (Node answers it before any
 * route, then closes the connection): the same `{"Err"}` in the plugin's media type as every answer.
 */
export function clientErrorAnswer(err: { code?: string }): string {
  const [status, message] = CLIENT_ERRORS[err.code ?? ""] ?? [
    400,
    `malformed HTTP request (${err.code ?? "?"})`,
  ];
  const body = JSON.stringify({ Err: message });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${ACCEPT}; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}
