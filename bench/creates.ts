/**
 * `npm run bench:creates`: 10,000 Creates in a row over the real socket into the real state store
 * (journal + snapshot on this disk), with the fake backend so the preflight costs nothing: what is
 * measured is the daemon's own cost per Create, and whether it grows with the number of volumes.
 */
import { create, serve } from "../test/support/served.ts";
import { rawClient } from "./raw-client.ts";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

/** `count` Creates in a row; the total and the p50 of the first and the last tenth. */
export async function createTrend(count: number): Promise<{ totalS: number; first: number; last: number }> {
  const s = await serve();
  const client = await rawClient(s.socket);
  const samples: number[] = [];
  const started = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      const answer = await client.call("/VolumeDriver.Create", create(`bench-${i}`));
      samples.push(performance.now() - t);
      if (answer.status !== 200) throw new Error(`Create bench-${i}: ${answer.body}`);
    }
  } finally {
    client.close();
    await s.close();
  }
  const tenth = Math.max(1, Math.floor(count / 10));
  return {
    totalS: (performance.now() - started) / 1000,
    first: median(samples.slice(0, tenth)),
    last: median(samples.slice(-tenth)),
  };
}

export function describeTrend(count: number, r: { totalS: number; first: number; last: number }): string {
  return `${count} Creates (fake backend, real state store): ${r.totalS.toFixed(2)} s; p50 first 10% ${r.first.toFixed(3)} ms, last 10% ${r.last.toFixed(3)} ms, ratio ${(r.last / r.first).toFixed(2)} (targets: under 15 s, ratio <= 1.2)`;
}

if (import.meta.main) {
  const count = Number(process.env.BENCH_CREATES ?? 10_000);
  console.log(describeTrend(count, await createTrend(count)));
}
