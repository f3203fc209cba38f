/**
 * Get under load: CONNECTIONS keep-alive connections, each sending Get back to back, for a fixed
 * time; the rate and the latency percentiles. Run against volgate and the null plugin in turn.
 */
import { connect } from "node:net";

export interface LoadResult {
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

/** One connection: send, wait for the whole answer (Content-Length), send the next. */
async function worker(socket: string, names: readonly string[], until: number, start: number, out: number[]) {
  const s = connect(socket);
  await new Promise((resolve, reject) => s.once("connect", resolve).once("error", reject));
  let buffer = "";
  let done: () => void = () => {};
  s.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const end = buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const length = Number(/content-length: (\d+)/i.exec(buffer.slice(0, end))?.[1] ?? 0);
    if (buffer.length < end + 4 + length) return;
    buffer = buffer.slice(end + 4 + length);
    done();
  });
  for (let i = start; performance.now() < until; i += 7919) {
    const body = `${JSON.stringify({ Name: names[i % names.length] })}\n`;
    const t = performance.now();
    await new Promise<void>((resolve) => {
      done = resolve;
      s.write(
        `POST /VolumeDriver.Get HTTP/1.1\r\nHost: plugin\r\nAccept: application/vnd.docker.plugins.v1.2+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    out.push(performance.now() - t);
  }
  s.end();
}

export async function getLoad(
  socket: string,
  count: number,
  connections = 16,
  ms = 3000,
): Promise<LoadResult> {
  const names = Array.from({ length: count }, (_, i) => `bench-volume-${i}`);
  const samples: number[] = [];
  const started = performance.now();
  const until = started + ms;
  await Promise.all(Array.from({ length: connections }, (_, w) => worker(socket, names, until, w, samples)));
  const seconds = (performance.now() - started) / 1000;
  samples.sort((a, b) => a - b);
  return { rate: samples.length / seconds, p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
}
