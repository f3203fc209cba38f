/**
 * A lean keep-alive HTTP/1.1 client over a unix socket, shaped like dockerd's requests (POST,
 * no Content-Type, the plugin Accept header). Node's http client adds more latency than the
 * server under test, so the benchmark talks to the socket directly.
 */
import { connect, type Socket } from "node:net";

export interface RawClient {
  call(path: string, body?: unknown): Promise<{ status: number; body: string }>;
  close(): void;
}

export async function rawClient(socketPath: string): Promise<RawClient> {
  const socket: Socket = connect(socketPath);
  await new Promise((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  let buffer = "";
  let waiting: ((answer: { status: number; body: string }) => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const head = buffer.slice(0, end);
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (buffer.length < end + 4 + length) return;
    const body = buffer.slice(end + 4, end + 4 + length);
    buffer = buffer.slice(end + 4 + length);
    waiting?.({ status: Number(head.slice(9, 12)), body });
  });
  return {
    call(path, body) {
      const payload = body === undefined ? "" : `${JSON.stringify(body)}\n`;
      return new Promise((resolve) => {
        waiting = resolve;
        socket.write(
          `POST ${path} HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
        );
      });
    },
    close: () => socket.end(),
  };
}
