/**
 * The swarm lab's teardown, in the order that keeps it fast and complete: services (tasks stop
 * through dockerd, plugins get their Unmounts), the dockerds (a dockerd whose legacy plugin is
 * gone takes 17-19 s to stop), the helpers (plugins, forwarders), whatever is still in a node's
 * mount namespace, the netns; then a check of what is left.
 */
import { existsSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { run } from "./dockerd.ts";
import { deleteNetns, killMountNs, netnsList, pidsInMountNs, pidsMounting } from "./namespaces.ts";
import { stopwatch } from "./stopwatch.ts";
import type { OwnedNode, SwarmNode } from "./swarm-node.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface TeardownReport {
  /** Milliseconds per step. */
  readonly timings: Readonly<Record<string, number>>;
  /** Processes found in node mount namespaces after the dockerds and helpers stopped (then killed). */
  readonly swept: readonly number[];
  /** What is still there: processes, netns, mounts, the temp dir. Empty when all went. */
  readonly leftovers: readonly string[];
}

interface Lab {
  readonly dir: string;
  readonly hub: string;
  readonly netnsNames: readonly string[];
  readonly hadRunNetns: boolean;
  readonly nodes: readonly OwnedNode[];
  readonly helpers: Array<() => Promise<unknown>>;
}

export async function tearDown(lab: Lab): Promise<TeardownReport> {
  const t = stopwatch();
  await removeServices(lab.nodes);
  t.lap("services");
  await Promise.all(lab.nodes.map((n) => n.halt()));
  t.lap("dockerds");
  for (const helper of lab.helpers.reverse()) {
    await helper().catch((err) => console.warn(`swarm teardown: a helper failed to stop: ${err}`));
  }
  t.lap("helpers");
  const swept: number[] = [];
  for (const n of lab.nodes) swept.push(...(await killMountNs(n.mountNs)));
  t.lap("sweep");
  const leftovers: string[] = [];
  for (const n of lab.nodes) {
    const pids = await pidsInMountNs(n.mountNs);
    if (pids.length > 0) leftovers.push(`${n.hostname}: pids ${pids.join(" ")} still in ${n.mountNs}`);
    await n.release();
  }
  await deleteNetns([...lab.netnsNames, lab.hub]);
  // `ip netns add` mounted /run/netns if it was not: undo that only when no netns is left in it.
  if (!lab.hadRunNetns && (await readdir("/run/netns").catch(() => ["?"])).length === 0) {
    await run("umount", ["/run/netns"]);
  }
  t.lap("netns");
  const ours = new Set([...lab.netnsNames, lab.hub]);
  for (const ns of await netnsList()) if (ours.has(ns)) leftovers.push(`netns ${ns} still exists`);
  const mounting = await pidsMounting(lab.dir);
  if (mounting.length > 0) leftovers.push(`pids ${mounting.join(" ")} still see mounts under ${lab.dir}`);
  else await rm(lab.dir, { recursive: true, force: true });
  if (existsSync(lab.dir)) leftovers.push(`${lab.dir} not deleted`);
  t.lap("check");
  t.total();
  return { timings: t.timings, swept, leftovers };
}

/** Remove every service and wait until no task container is left on any node (at most 30 s). */
async function removeServices(nodes: readonly SwarmNode[]): Promise<void> {
  const manager = nodes[0];
  if (manager?.pid() === undefined) return;
  const services = (await manager.docker(["service", "ls", "-q"])).stdout.split("\n").filter((s) => s !== "");
  if (services.length === 0) return;
  await manager.docker(["service", "rm", ...services]);
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const tasks = await Promise.all(
      nodes.map((n) => n.docker(["ps", "-q", "--filter", "label=com.docker.swarm.task"])),
    );
    if (tasks.every((r) => r.stdout.trim() === "")) return;
    await sleep(200);
  }
}
