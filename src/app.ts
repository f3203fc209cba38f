/**
 * The HTTP front end on the plugin socket: the server (queries answered before fastify, see
 * queries.ts), a catch-all body parser (dockerd sends no Content-Type), the route table, and
 * errors turned into `{"Err": ...}` through answers.ts.
 */
import { createServer } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Duplex } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { ACCEPT, BODY_LIMIT, clientErrorAnswer, failed, logged } from "./answers.ts";
import type { Driver } from "./driver.ts";
import { shown } from "./errors.ts";
import type { TlsFiles } from "./listen.ts";
import type { Logger } from "./logger.ts";
import { type Body, ENDPOINTS, idOf, nameOf, optionsOf, parseBody } from "./protocol.ts";
import { answerQuery, queries } from "./queries.ts";

/** What a handler may ask of its request: a signal that fires when dockerd hangs up or volgate stops. */
interface Request {
  signal(): AbortSignal;
}

/** A handler answers an object, or a string that is already the JSON answer. */
type Handler = (body: Body, request: Request) => Promise<object | string> | object | string;

function handlers(driver: Driver): Record<(typeof ENDPOINTS)[number], Handler> {
  return {
    ...queries(driver),
    "/Plugin.Activate": () => ({ Implements: ["VolumeDriver"] }),
    "/VolumeDriver.Create": async (b) => {
      await driver.create(nameOf(b), optionsOf(b));
      return {};
    },
    "/VolumeDriver.Remove": async (b) => {
      await driver.remove(nameOf(b));
      return {};
    },
    "/VolumeDriver.Mount": async (b, request) => ({
      Mountpoint: await driver.mount(nameOf(b), idOf(b), request.signal()),
    }),
    "/VolumeDriver.Unmount": async (b) => {
      await driver.unmount(nameOf(b), idOf(b));
      return {};
    },
  };
}

/** An AbortSignal that fires when dockerd hangs up before we answered, or when volgate stops. */
function abortSignalOf(reply: FastifyReply, stopping: AbortSignal): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return AbortSignal.any([controller.signal, stopping]);
}

/**
 * volgate validates bodies itself (protocol.ts) and declares no route schemas, so fastify's
 * ajv and fast-json-stringify compilers are never needed: not loading them saves ~70 ms of start-up.
 */
const noSchemas = () => () => {
  throw new Error("volgate declares no route schemas");
};

/**
 * On shutdown, requests on open connections are still answered (as {Err} if they fail), never with
 * fastify's own 503. A request must arrive whole within REQUEST_TIMEOUT_MS (answering may take
 * longer: a Mount may), so clients that trickle a body are dropped; at most MAX_CONNECTIONS at once.
 */
const REQUEST_TIMEOUT_MS = 10_000;
/** Node checks those timeouts only this often (its default, 30 s, dropped a trickling client after 30-40 s). */
const TIMEOUT_CHECK_MS = 1000;
const MAX_CONNECTIONS = 1024;
/** dockerd keeps its connections to a plugin open: so do we, as fastify would. */
const KEEP_ALIVE_MS = 72_000;
const FASTIFY_OPTIONS = {
  logger: false,
  bodyLimit: BODY_LIMIT,
  requestTimeout: REQUEST_TIMEOUT_MS,
  return503OnClosing: false,
  // Not HTTP, headers too large, or too slow: answered as every error is, then the connection closed.
  // Not when Node already answered the request in flight (its body broke the framing): two answers
  // to one request would corrupt the client's side of the connection.
  clientErrorHandler(
    err: NodeJS.ErrnoException,
    socket: Duplex & { _httpMessage?: { headersSent: boolean } },
  ) {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    if (socket.writable && socket._httpMessage?.headersSent !== true) socket.write(clientErrorAnswer(err));
    socket.destroy(err);
  },
  schemaController: { compilersFactory: { buildValidator: noSchemas, buildSerializer: noSchemas } },
} as const;

export interface AppOptions {
  readonly https?: TlsFiles;
  /** Aborts every request in flight (volgate is stopping): hung mounts roll back at once. */
  readonly stopping?: AbortSignal;
}

export function buildApp(driver: Driver, log: Logger, options: AppOptions = {}): FastifyInstance {
  const { https } = options;
  const stopping = options.stopping ?? new AbortController().signal;
  const fast = queries(driver);
  const app = Fastify({
    ...FASTIFY_OPTIONS,
    serverFactory: (handler) => {
      const dispatch: typeof handler = (req, res) => {
        if (!answerQuery(req, res, fast, log)) handler(req, res);
      };
      const checked = { connectionsCheckingInterval: TIMEOUT_CHECK_MS };
      return https ? createTlsServer({ ...https, ...checked }, dispatch) : createServer(checked, dispatch);
    },
  }) as unknown as FastifyInstance;
  app.server.maxConnections = MAX_CONNECTIONS;
  app.server.requestTimeout = REQUEST_TIMEOUT_MS;
  app.server.keepAliveTimeout = KEEP_ALIVE_MS;
  app.server.headersTimeout = REQUEST_TIMEOUT_MS;
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (_req, text, done) => {
    try {
      done(null, parseBody(text as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = failed(log, request.url, (request.body as Body | undefined)?.Name, err);
    void reply.code(status).type(ACCEPT).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .type(ACCEPT)
      .send({ Err: `unknown endpoint ${request.method} ${shown(request.url)}` });
  });

  const table = handlers(driver);
  for (const url of ENDPOINTS) {
    const handle = table[url];
    app.post(url, async (request, reply) => {
      const started = performance.now();
      const body = (request.body ?? {}) as Body;
      const result = await handle(body, { signal: () => abortSignalOf(reply, stopping) });
      // Queries (dockerd asks them constantly) log at debug; every change to a volume at info.
      const level = Object.hasOwn(fast, url) ? "debug" : "info";
      if (log.isLevelEnabled(level))
        log[level](
          {
            ...logged(url.slice(url.indexOf(".") + 1), body.Name),
            ...(typeof body.ID === "string" && { id: shown(body.ID) }),
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
