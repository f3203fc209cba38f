/**
 * The HTTP front end on the plugin socket: a catch-all body parser (dockerd
 * sends no Content-Type), the route table, and the one place where errors
 * become `{"Err": ...}`.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import type { Driver } from "./driver.ts";
import { messageOf, VolgateError } from "./errors.ts";
import type { TlsFiles } from "./listen.ts";
import type { Logger } from "./logger.ts";
import { ACCEPT, type Body, ENDPOINTS, idOf, nameOf, optionsOf, parseBody } from "./protocol.ts";

const QUERIES = new Set([
  "/VolumeDriver.Capabilities",
  "/VolumeDriver.Get",
  "/VolumeDriver.List",
  "/VolumeDriver.Path",
]);

/** Requests carry a name and a few options: anything bigger is not from dockerd. */
const BODY_LIMIT = 256 * 1024;

/** A handler answers an object, or a string that is already the JSON answer. */
type Handler = (body: Body, signal: AbortSignal) => Promise<object | string> | object | string;

function handlers(driver: Driver): Record<(typeof ENDPOINTS)[number], Handler> {
  return {
    "/Plugin.Activate": () => ({ Implements: ["VolumeDriver"] }),
    "/VolumeDriver.Capabilities": () => ({ Capabilities: { Scope: "global" } }),
    "/VolumeDriver.Create": async (b) => {
      await driver.create(nameOf(b), optionsOf(b));
      return {};
    },
    "/VolumeDriver.Remove": async (b) => {
      await driver.remove(nameOf(b));
      return {};
    },
    "/VolumeDriver.Mount": async (b, signal) => ({
      Mountpoint: await driver.mount(nameOf(b), idOf(b), signal),
    }),
    "/VolumeDriver.Unmount": async (b) => {
      await driver.unmount(nameOf(b), idOf(b));
      return {};
    },
    "/VolumeDriver.Path": (b) => ({ Mountpoint: driver.path(nameOf(b)) }),
    "/VolumeDriver.Get": (b) => ({ Volume: driver.get(nameOf(b)) }),
    "/VolumeDriver.List": () => driver.listJson(),
  };
}

/** Status codes for the few errors that are not the driver's. */
function statusOf(err: unknown): number {
  const code = (err as { code?: string }).code;
  if (code === "FST_ERR_CTP_BODY_TOO_LARGE") return 413;
  return 500;
}

function errorText(err: unknown): string {
  if (err instanceof VolgateError) return err.message;
  if (statusOf(err) === 413) return `request body too large (limit ${BODY_LIMIT} bytes)`;
  return `internal error: ${messageOf(err)}`;
}

/** An AbortSignal that fires when dockerd hangs up before we answered. */
function abortSignalOf(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/**
 * volgate validates bodies itself (protocol.ts) and declares no route schemas, so fastify's
 * ajv and fast-json-stringify compilers are never needed: not loading them saves ~70 ms of start-up.
 */
const noSchemas = () => () => {
  throw new Error("volgate declares no route schemas");
};

/** On shutdown, requests on open connections are still answered (as {Err} if they fail), never with fastify's own 503. */
const FASTIFY_OPTIONS = {
  logger: false,
  bodyLimit: BODY_LIMIT,
  return503OnClosing: false,
  schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
} as const;

export function buildApp(driver: Driver, log: Logger, https?: TlsFiles): FastifyInstance {
  const app = (https ? Fastify({ https, ...FASTIFY_OPTIONS }) : Fastify(FASTIFY_OPTIONS)) as FastifyInstance;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, text, done) => {
    try {
      done(null, parseBody(text as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.setErrorHandler((err, request, reply) => {
    const status = statusOf(err);
    const message = errorText(err);
    const kind = err instanceof VolgateError ? err.kind : "internal";
    // dockerd asks Get before every create and for other drivers' volumes: an unknown name is routine.
    const level = kind === "internal" ? "error" : kind === "not_found" ? "debug" : "warn";
    log[level](
      { op: request.url, volume: (request.body as Body | undefined)?.Name, kind, err: message },
      "failed",
    );
    void reply.code(status).type(ACCEPT).send({ Err: message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .type(ACCEPT)
      .send({ Err: `unknown endpoint ${request.method} ${request.url}` });
  });

  const table = handlers(driver);
  for (const url of ENDPOINTS) {
    const handle = table[url];
    app.post(url, async (request, reply) => {
      const started = performance.now();
      const body = (request.body ?? {}) as Body;
      const result = await handle(body, abortSignalOf(reply));
      const volume = typeof body.Name === "string" ? body.Name : undefined;
      // Queries (dockerd asks them constantly) log at debug; every change to a volume at info.
      const quiet = QUERIES.has(url);
      log[quiet ? "debug" : "info"](
        {
          op: url.slice(url.indexOf(".") + 1),
          volume,
          ...(typeof body.ID === "string" && { id: body.ID }),
          ms: Math.round((performance.now() - started) * 10) / 10,
        },
        "ok",
      );
      return reply.type(ACCEPT).send(result);
    });
    app.route({
      method: ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"],
      url,
      handler: (request, reply) =>
        reply
          .code(405)
          .type(ACCEPT)
          .send({ Err: `method ${request.method} not allowed on ${url}: use POST` }),
    });
  }
  return app;
}
