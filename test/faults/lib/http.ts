/**
 * A bare HTTP/1.1 client on a unix socket for requests no ordinary client would send (any method,
 * path, header and body bytes): one request at a time per connection, the answer read by its
 * Content-Length (none for HEAD), and a new connection whenever the server closed the last one.
 */
import { connect, type Socket } from "node:net";

export interface RawAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface RawConnection {
  /** Send `head` + `body` as they are; resolves with the answer, or an Error when none came. */
  send(head: string, body: Buffer, method: string, timeoutMs?: number): Promise<RawAnswer | Error>;
  close(): void;
}

/** The answer at the start of `buffer`, and how many bytes it took; undefined while incomplete. */
function parseAnswer(buffer: Buffer, isHead: boolean): { answer: RawAnswer; used: number } | undefined {
  const end = buffer.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const lines = buffer.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(lines[0]?.split(" ")[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const length = isHead ? 0 : Number(headers["content-length"] ?? 0);
  if (buffer.length < end + 4 + length) return undefined;
  const body = buffer.subarray(end + 4, end + 4 + length).toString("utf8");
  return { answer: { status, headers, body }, used: end + 4 + length };
}

/** A big body waits for the server's go (Expect: 100-continue, as curl does it): one it refuses is never sent. */
const BIG = 64 * 1024;
const BODY_WAIT_MS = 100;

export function rawConnection(path: string): RawConnection {
  let socket: Socket | undefined;
  /** The request in flight, and the connection it went out on: only that one may settle it. */
  let waiting: { on: Socket; settle: (a: RawAnswer | Error) => void; proceed?: () => void } | undefined;
  let method = "POST";

  /** Forget `s` at once: the next request must not be written to a connection that is going. */
  const drop = (s: Socket) => {
    if (socket === s) socket = undefined;
    s.destroy();
  };
  const open = () => {
    const s = connect(path);
    let buffer = Buffer.alloc(0);
    s.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const parsed = parseAnswer(buffer, method === "HEAD");
        if (!parsed) return;
        buffer = buffer.subarray(parsed.used);
        if (parsed.answer.status === 100) {
          if (waiting?.on === s) waiting.proceed?.();
          continue;
        }
        if (parsed.answer.headers.connection === "close") drop(s);
        if (waiting?.on === s) waiting.settle(parsed.answer);
        return;
      }
    });
    let failure = "";
    s.on("error", (err) => {
      failure = ` (${err.message})`;
    });
    s.on("close", () => {
      if (socket === s) socket = undefined;
      if (waiting?.on === s) waiting.settle(new Error(`connection closed without an answer${failure}`));
    });
    socket = s;
    return s;
  };

  const attempt = (head: Buffer, body: Buffer, timeoutMs: number): Promise<RawAnswer | Error> => {
    const s = socket ?? open();
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      const finish = (a: RawAnswer | Error) => {
        clearTimeout(timer);
        waiting = undefined;
        if (a instanceof Error) drop(s);
        resolve(a);
      };
      if (body.length <= BIG) {
        waiting = { on: s, settle: finish };
        s.write(Buffer.concat([head, body]));
        return;
      }
      // Node sends the 100 before any route runs, and a route that refuses on the length answers a
      // moment later and closes: the body goes only if no answer came within BODY_WAIT_MS.
      const proceed = () => setTimeout(() => waiting?.on === s && s.write(body), BODY_WAIT_MS);
      waiting = { on: s, settle: finish, proceed };
      s.write(head);
    });
  };

  return {
    async send(head, body, m, timeoutMs = 10_000) {
      method = m;
      const bytes = Buffer.from(
        body.length > BIG ? head.replace(/\r\n\r\n$/, "\r\nExpect: 100-continue\r\n\r\n") : head,
      );
      const reused = socket !== undefined;
      const answer = await attempt(bytes, body, timeoutMs);
      // A kept-alive connection the server closed after its last answer (as it does after a client
      // error) fails the next request before it is read: try it once on a new one, as HTTP clients do.
      if (reused && answer instanceof Error && answer.message.startsWith("connection closed")) {
        return attempt(bytes, body, timeoutMs);
      }
      return answer;
    },
    close: () => {
      if (socket) drop(socket);
    },
  };
}
