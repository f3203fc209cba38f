/**
 * Fake control planes on 127.0.0.1, for backends whose mount checks the server before running
 * a helper: an S3 endpoint that answers HeadBucket, and a port that accepts TCP (NFS's 2049).
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";

export interface FakeEndpoint {
  readonly port: number;
  /** Every request line and header seen (HTTP only), to check nothing secret travelled. */
  readonly seen: string[];
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

/** Counts the TCP connections `server` accepts. */
function counted(server: Server | HttpServer): () => number {
  let accepted = 0;
  server.on("connection", () => {
    accepted++;
  });
  return () => accepted;
}

async function listen(server: Server | HttpServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return typeof address === "object" && address !== null ? address.port : 0;
}

const closing = (server: Server | HttpServer) => () =>
  new Promise<void>((resolve) => {
    server.close(() => resolve());
    if ("closeAllConnections" in server) server.closeAllConnections();
  });

/** Answers HeadBucket (path style) with 200 for `buckets` and 404 for any other; nothing else. */
export async function fakeS3Endpoint(buckets: readonly string[]): Promise<FakeEndpoint> {
  const seen: string[] = [];
  const server = createHttpServer((req, res) => {
    seen.push(`${req.method} ${req.url}`, ...Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`));
    const bucket = (req.url ?? "").split("?")[0]?.split("/")[1] ?? "";
    const known = req.method === "HEAD" && buckets.includes(bucket);
    // Content-Length as S3 sends it: without one, node's server closes the connection after a HEAD.
    res.writeHead(known ? 200 : 404, { "x-amz-bucket-region": "us-east-1", "content-length": "0" }).end();
  });
  const connections = counted(server);
  return { port: await listen(server), seen, connections, close: closing(server) };
}

/** Accepts TCP connections and closes them: a reachable port for a reachability check. */
export async function fakeTcpPort(): Promise<FakeEndpoint> {
  const server = createServer((socket) => socket.destroy());
  const connections = counted(server);
  return { port: await listen(server), seen: [], connections, close: closing(server) };
}
