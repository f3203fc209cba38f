/**
 * The swarm lab's start-up steps after the dockerds answer: one busybox image for every node,
 * legacy plugins loaded before the join, swarm init and join.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { busyboxTar, IMAGE } from "./dockerd.ts";
import type { SwarmNode } from "./swarm-node.ts";

const OVERLAY_POOL = "10.214.0.0/16";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The stdout of a docker CLI call that must succeed. */
export function must(r: { code: number | null; stdout: string; stderr: string }, what: string): string {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Import busybox on node1, `save` it once and `load` it on the others: one image ID everywhere. */
export async function loadImage(dir: string, nodes: readonly SwarmNode[]): Promise<string> {
  const [first, ...others] = nodes;
  if (first === undefined) throw new Error("a swarm needs nodes");
  const tar = await busyboxTar(dir);
  must(await first.docker(["import", "-c", 'CMD ["/bin/sh"]', tar, IMAGE]), "docker import");
  const saved = join(dir, "image.tar");
  must(await first.docker(["save", "-o", saved, IMAGE]), "docker save");
  for (const n of others) must(await n.docker(["load", "-q", "-i", saved]), `${n.hostname}: docker load`);
  await rm(tar, { force: true });
  await rm(saved, { force: true });
  return must(await first.docker(["image", "inspect", "-f", "{{.Id}}", IMAGE]), "docker image inspect");
}

/** Make `node`'s dockerd activate (and so register) every legacy plugin in its /run/docker/plugins. */
export async function loadPlugins(node: SwarmNode, unknownVolume: string): Promise<void> {
  const probe = await node.docker(["volume", "inspect", unknownVolume]);
  if (probe.code === 0 || !/no such volume/i.test(probe.stderr)) {
    throw new Error(
      `${node.hostname}: probing the plugins with volume ${unknownVolume}: ${probe.stderr.trim()}`,
    );
  }
}

export async function joinSwarm(nodes: readonly SwarmNode[]): Promise<void> {
  const [manager, ...workers] = nodes;
  if (manager === undefined) throw new Error("a swarm needs nodes");
  const at = (n: SwarmNode) => [
    "--advertise-addr",
    n.address,
    "--listen-addr",
    `${n.address}:2377`,
    "--data-path-addr",
    n.address,
  ];
  must(
    await manager.docker(["swarm", "init", ...at(manager), "--default-addr-pool", OVERLAY_POOL]),
    "swarm init",
  );
  const token = must(await manager.docker(["swarm", "join-token", "-q", "worker"]), "swarm join-token");
  for (const w of workers) {
    must(
      await w.docker(["swarm", "join", "--token", token, ...at(w), `${manager.address}:2377`]),
      `${w.hostname}: swarm join`,
    );
  }
  const until = Date.now() + 30_000;
  for (;;) {
    const states = must(await manager.docker(["node", "ls", "--format", "{{.Status}}"]), "docker node ls");
    if (states.split("\n").filter((s) => s === "Ready").length === nodes.length) return;
    if (Date.now() > until) throw new Error(`swarm nodes not all Ready after 30 s: ${states}`);
    await sleep(100);
  }
}
