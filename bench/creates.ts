/**
 * `npm run bench:creates`: 10,000 Creates in a row over the real socket into the real state store
 * (journal + snapshot on this disk), with the fake backend so the preflight costs nothing: what is
 * measured is the daemon's own cost per Create, and whether it grows with the number of volumes.
 */
import { rm } from "node:fs/promises";
import { create, serve } from "../test/support/served.ts";
import { rawClient } from "./raw-client.ts";

const COUNT = Number(process.env.BENCH_CREATES ?? 10_000);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const s = await serve();
const client = await rawClient(s.socket);
const samples: number[] = [];
const started = performance.now();
for (let i = 0; i < COUNT; i++) {
  const t = performance.now();
  const answer = await client.call("/VolumeDriver.Create", create(`bench-${i}`));
  samples.push(performance.now() - t);
  if (answer.status !== 200) throw new Error(`Create bench-${i}: ${answer.body}`);
}
const totalS = (performance.now() - started) / 1000;
const tenth = Math.max(1, Math.floor(COUNT / 10));
const first = median(samples.slice(0, tenth));
const last = median(samples.slice(-tenth));
client.close();
await s.close();
await rm(s.dir, { recursive: true, force: true });
console.log(`${COUNT} Creates (fake backend, real state store): ${totalS.toFixed(2)} s in all`);
console.log(
  `  p50 first 10%: ${first.toFixed(3)} ms, last 10%: ${last.toFixed(3)} ms, ratio ${(last / first).toFixed(2)} (target: under 15 s, ratio <= 1.2)`,
);
