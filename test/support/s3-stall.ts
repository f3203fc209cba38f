/**
 * A misbehaving S3 peer: an HTTP proxy on 127.0.0.1 in front of a test S3 server that passes every
 * request through, except, while `holding`, those for keys under `heldPrefix` (path style,
 * `/<bucket>/<prefix>...`), which it reads and never answers, as an S3 endpoint that hangs
 * mid-session does. Bucket-level requests (HeadBucket, s3fs's own check at start) still answer, so
 * a mount gets as far as its first lookup.
 */
import { createServer, request, type Server } from "node:http";
import type { Socket } from "node:net";

export interface StallingS3 {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  /** Request lines held so far (`HEAD /bucket/key`). */
  readonly held: readonly string[];
  /** Whether requests under the prefix are held now (at first: yes). */
  holding: boolean;
  close(): Promise<void>;
}

export async function stallingS3(upstreamPort: number, heldPrefix: string): Promise<StallingS3> {
  const held: string[] = [];
  const sockets = new Set<Socket>();
  let holding = true;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const key = path.split("/").slice(2).join("/");
    if (holding && key.startsWith(heldPrefix)) {
      held.push(`${req.method} ${path}`);
      req.resume();
      return;
    }
    const upstream = request(
      { host: "127.0.0.1", port: upstreamPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    held,
    get holding() {
      return holding;
    },
    set holding(on: boolean) {
      holding = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
