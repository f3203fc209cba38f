/**
 * What a storm client knows of each volume from the answers it got: whether it exists and its
 * mount counts per ID. A 200 applies the change, an Err changes nothing (the daemon's contract);
 * a request that got no answer (the daemon was killed) leaves two possibilities, settled by what
 * the daemon shows once it is back.
 */
import type { StateFile } from "../../support/volgate.ts";

export interface Known {
  exists: boolean;
  counts: Record<string, number>;
}

export type Op = "Create" | "Remove" | "Mount" | "Unmount";

export interface Volume {
  readonly name: string;
  known: Known;
  /** The other possibility after a request that got no answer. */
  unanswered?: Known;
}

/** What `op` does to `known` when answered 200. */
export function applied(known: Known, op: Op, id: string): Known {
  const counts = { ...known.counts };
  switch (op) {
    case "Create":
      return { exists: true, counts };
    case "Remove":
      return { exists: false, counts: {} };
    case "Mount":
      counts[id] = (counts[id] ?? 0) + 1;
      return { exists: known.exists, counts };
    case "Unmount":
      if (counts[id] !== undefined && --counts[id] === 0) delete counts[id];
      return { exists: known.exists, counts };
  }
}

/** The next request for a volume, weighted by what it is in: mostly ones that change something. */
export function nextOp(known: Known, rnd: () => number): { op: Op; id: string } {
  const r = rnd();
  const id = rnd() < 0.5 ? "a" : "b";
  const mounted = Object.keys(known.counts);
  if (!known.exists) return { op: r < 0.9 ? "Create" : "Mount", id };
  if (mounted.length === 0) {
    if (r < 0.5) return { op: "Mount", id };
    if (r < 0.8) return { op: "Remove", id };
    return { op: r < 0.9 ? "Unmount" : "Create", id };
  }
  if (r < 0.35) return { op: "Mount", id };
  if (r < 0.8) return { op: "Unmount", id: mounted[Math.floor(rnd() * mounted.length)] ?? id };
  return { op: "Remove", id };
}

const same = (a: Known, b: Known) =>
  a.exists === b.exists &&
  JSON.stringify(Object.entries(a.counts).sort()) === JSON.stringify(Object.entries(b.counts).sort());

/**
 * Check every volume against the state the daemon reads back and the names List gives; a volume
 * with an unanswered request may match either possibility, and is settled to the one it matches.
 * Returns what does not match.
 */
export function settle(volumes: readonly Volume[], state: StateFile, listed: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const records = new Map(state.volumes.map((r) => [r.name, r]));
  for (const v of volumes) {
    const record = records.get(v.name);
    const shown: Known = { exists: record !== undefined, counts: { ...(record?.mounts ?? {}) } };
    if (listed.has(v.name) !== shown.exists)
      problems.push(`${v.name}: in the state ${shown.exists}, listed ${!shown.exists}`);
    const options = [v.known, ...(v.unanswered ? [v.unanswered] : [])];
    const match = options.find((k) => same(k, shown));
    if (match === undefined) {
      problems.push(
        `${v.name}: answered ${JSON.stringify(options)}, the daemon has ${JSON.stringify(shown)}`,
      );
    } else {
      v.known = match;
      delete v.unanswered;
    }
  }
  return problems;
}
