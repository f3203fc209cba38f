/**
 * Where volgate listens: a socket handed over by systemd (LISTEN_FDS), a TCP
 * port with mutual TLS (a .json spec file in Docker's plugin dirs), plain TCP
 * only when the operator says so (a .spec file), or the unix socket.
 */
import { chmod, mkdir, readFile, unlink } from "node:fs/promises";
import type { Server } from "node:net";
import { dirname } from "node:path";
import type { Config } from "./config.ts";

/** systemd passes sockets starting at this descriptor. */
const SD_LISTEN_FDS_START = 3;

export interface TlsFiles {
  readonly key: Buffer;
  readonly cert: Buffer;
  readonly ca: Buffer;
  readonly requestCert: true;
  readonly rejectUnauthorized: true;
}

export interface ListenPlan {
  readonly address: string;
  /** For fastify's `https` option: TLS with client certificates required. */
  readonly https?: TlsFiles;
  start(server: Server): Promise<void>;
}

function listenOn(server: Server, options: object): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

async function readTls(config: Config): Promise<TlsFiles> {
  const files = { cert: config.tlsCert, key: config.tlsKey, ca: config.tlsCa };
  const missing = Object.entries(files)
    .filter(([, path]) => path === "")
    .map(([k]) => `VOLGATE_TLS_${k.toUpperCase()}`);
  if (missing.length > 0) {
    throw new Error(
      `${config.listen} needs TLS: set ${missing.join(", ")} (or VOLGATE_INSECURE_TCP=true to listen without TLS)`,
    );
  }
  const [cert, key, ca] = await Promise.all([readFile(files.cert), readFile(files.key), readFile(files.ca)]);
  return { cert, key, ca, requestCert: true, rejectUnauthorized: true };
}

/** Decide how to listen; throws a message for a configuration that cannot work. */
export async function planListen(config: Config, env: NodeJS.ProcessEnv): Promise<ListenPlan> {
  if (env.LISTEN_FDS !== undefined && env.LISTEN_PID === String(process.pid)) {
    if (env.LISTEN_FDS !== "1")
      throw new Error(`systemd passed ${env.LISTEN_FDS} sockets; volgate takes exactly one`);
    return {
      address: `systemd socket (fd ${SD_LISTEN_FDS_START})`,
      start: (server) => listenOn(server, { fd: SD_LISTEN_FDS_START }),
    };
  }
  if (config.listen !== "") {
    const url = new URL(config.listen);
    const options = { host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port) };
    const https = config.insecureTcp && config.tlsCert === "" ? undefined : await readTls(config);
    return {
      address: `${https ? "https" : "http (no TLS)"}://${url.host}`,
      ...(https && { https }),
      start: (server) => listenOn(server, options),
    };
  }
  return {
    address: config.socket,
    async start(server) {
      await mkdir(dirname(config.socket), { recursive: true, mode: 0o755 });
      await unlink(config.socket).catch(() => {});
      await listenOn(server, { path: config.socket });
      await chmod(config.socket, 0o660);
    },
  };
}
