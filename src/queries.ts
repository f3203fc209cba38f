/**
 * Get, List, Path and Capabilities answered straight on node:http, before fastify: dockerd asks
 * them constantly (Capabilities before almost every lookup of a managed plugin), they change
 * nothing and do no I/O, so routing, hooks and reply objects would be most of their cost. The
 * answers, errors and limits are the same as on the fastify routes (answers.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { ACCEPT, BODY_LIMIT, failed, logged, TOO_LARGE } from "./answers.ts";
import type { Driver } from "./driver.ts";
import type { Logger } from "./logger.ts";
import { type Body, nameOf, parseBody } from "./protocol.ts";

type Query = (body: Body) => object | string;

export function queries(driver: Driver) {
  return {
    "/VolumeDriver.Capabilities": () => ({ Capabilities: { Scope: "global" } }),
    "/VolumeDriver.Get": (b: Body) => ({ Volume: driver.get(nameOf(b)) }),
    "/VolumeDriver.List": () => driver.listJson(),
    "/VolumeDriver.Path": (b: Body) => ({ Mountpoint: driver.path(nameOf(b)) }),
  } satisfies Record<string, Query>;
}

function send(res: ServerResponse, status: number, answer: object | string): void {
  const text = typeof answer === "string" ? answer : JSON.stringify(answer);
  res.writeHead(status, {
    "content-type": `${ACCEPT}; charset=utf-8`,
    "content-length": Buffer.byteLength(text),
  });
  res.end(text);
}

/** Answer `req` if it is a query (POST to one of them); false leaves it to fastify. */
export function answerQuery(
  req: IncomingMessage,
  res: ServerResponse,
  table: Readonly<Record<string, Query | undefined>>,
  log: Logger,
): boolean {
  const query = req.method === "POST" && req.url !== undefined ? table[req.url] : undefined;
  if (query === undefined) return false;
  const chunks: Buffer[] = [];
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
    if (size <= BODY_LIMIT) chunks.push(chunk);
  });
  req.on("end", () => {
    let body: Body = {};
    try {
      if (size > BODY_LIMIT) throw Object.assign(new Error("too large"), { code: TOO_LARGE });
      // dockerd's bodies arrive in one chunk: no copy for them.
      body = parseBody((chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))?.toString() ?? "");
      send(res, 200, query(body));
      if (log.isLevelEnabled("debug")) log.debug(logged(req.url?.slice(14) ?? "", body.Name), "ok");
    } catch (err) {
      const { status, body: answer } = failed(log, req.url ?? "", body.Name, err);
      send(res, status, answer);
    }
  });
  return true;
}
