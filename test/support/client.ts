/**
 * A plugin client that talks exactly like dockerd: POST, no Content-Type,
 * Accept: application/vnd.docker.plugins.v1.2+json, body JSON + "\n".
 */
import { Agent, request } from "node:http";

/** dockerd keeps connections to a plugin alive; so do we. */
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

export interface Answer {
  readonly status: number;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary JSON
  readonly json: any;
}

export interface CallOptions {
  readonly method?: string;
  /** A raw body sent as is (e.g. "" for a drained retry, or broken JSON). */
  readonly raw?: string;
  readonly signal?: AbortSignal;
}

export function call(
  socketPath: string,
  path: string,
  body?: unknown,
  options: CallOptions = {},
): Promise<Answer> {
  const payload = options.raw ?? (body === undefined ? "" : `${JSON.stringify(body)}\n`);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        agent,
        path,
        method: options.method ?? "POST",
        headers: {
          Accept: "application/vnd.docker.plugins.v1.2+json",
          "Content-Length": Buffer.byteLength(payload),
        },
        ...(options.signal && { signal: options.signal }),
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => {
          text += d.toString();
        });
        res.on("end", () => {
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
