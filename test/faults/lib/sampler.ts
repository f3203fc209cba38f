/**
 * Get and List while a fault lasts: a dockerd-shaped client on the daemon's socket asks Get of
 * each named volume and List, round after round, and keeps every latency and every answer that
 * was not a success (a known volume's Get must never fail, whatever its backend is doing).
 */
import { call } from "../../support/client.ts";

export interface Sampled {
  readonly rounds: number;
  /** Every latency, ms (for merging the samples of two stretches). */
  readonly gets: readonly number[];
  readonly lists: readonly number[];
  readonly getP99: number;
  readonly listP99: number;
  readonly getMax: number;
  readonly listMax: number;
  /** Answers that were not a success, or no answer within the timeout: `what: why`. */
  readonly failures: readonly string[];
}

export interface Sampler {
  stop(): Promise<Sampled>;
}

/** Nearest rank: the smallest value at least `p` of the samples are not above. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One timed request: its latency, or why it was not a success. */
async function timed(socket: string, path: string, body: unknown, timeoutMs: number) {
  const started = performance.now();
  try {
    const answer = await call(socket, path, body, { signal: AbortSignal.timeout(timeoutMs) });
    const ms = performance.now() - started;
    return answer.status === 200 ? { ms, answer } : { ms, error: `${answer.status} ${answer.text}` };
  } catch (err) {
    return { ms: performance.now() - started, error: String(err) };
  }
}

export interface SampleOptions {
  /** Pause between rounds. */
  readonly pauseMs?: number;
  /** A request without an answer by then is a failure. */
  readonly timeoutMs?: number;
  /** Names List must include. */
  readonly listed?: readonly string[];
}

/** The figures of two stretches of sampling as one. */
export function merged(a: Sampled, b: Sampled): Sampled {
  const gets = [...a.gets, ...b.gets];
  const lists = [...a.lists, ...b.lists];
  return {
    rounds: a.rounds + b.rounds,
    gets,
    lists,
    getP99: percentile(gets, 0.99),
    listP99: percentile(lists, 0.99),
    getMax: Math.max(a.getMax, b.getMax),
    listMax: Math.max(a.listMax, b.listMax),
    failures: [...a.failures, ...b.failures],
  };
}

/** Start sampling; stop() ends the loop and returns the figures. */
export function sample(socket: string, names: readonly string[], options: SampleOptions = {}): Sampler {
  const { pauseMs = 20, timeoutMs = 5000, listed = names } = options;
  const gets: number[] = [];
  const lists: number[] = [];
  const failures: string[] = [];
  let rounds = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const name of names) {
        const got = await timed(socket, "/VolumeDriver.Get", { Name: name }, timeoutMs);
        gets.push(got.ms);
        if ("error" in got) failures.push(`Get ${name}: ${got.error}`);
      }
      const list = await timed(socket, "/VolumeDriver.List", {}, timeoutMs);
      lists.push(list.ms);
      if ("error" in list) failures.push(`List: ${list.error}`);
      else {
        const have = new Set((list.answer.json?.Volumes ?? []).map((v: { Name: string }) => v.Name));
        const missing = listed.filter((n) => !have.has(n));
        if (missing.length > 0) failures.push(`List: missing ${missing.join(", ")}`);
      }
      rounds++;
      await sleep(pauseMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return {
        rounds,
        gets,
        lists,
        getP99: percentile(gets, 0.99),
        listP99: percentile(lists, 0.99),
        getMax: Math.max(...gets),
        listMax: Math.max(...lists),
        failures,
      };
    },
  };
}
