/**
 * Linux namespaces for the one-machine swarm lab: network namespaces made with `ip netns`
 * (a hub with a bridge, one netns per node with a veth to it: nothing in the host netns), and the
 * processes living in a node's mount namespace, found through /proc so teardown can end them all.
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import { run } from "./dockerd.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ip(args: readonly string[]): Promise<void> {
  const r = await run("ip", args, { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`ip ${args.join(" ")} failed: ${r.stderr.trim()}`);
}

/** Names of the network namespaces `ip netns` knows. */
export async function netnsList(): Promise<string[]> {
  const r = await run("ip", ["netns", "list"]);
  return r.stdout
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n !== "");
}

/** True when /run/netns is a mount point (`ip netns add` makes it one the first time). */
export async function runNetnsMounted(): Promise<boolean> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text.split("\n").some((l) => l.split(" ")[4] === "/run/netns");
}

/**
 * The hub netns with bridge br0, and per node a netns whose eth0 (address `addresses[i]`/24) is
 * a veth to the bridge. The veth is made inside the hub and its peer moved straight into the node,
 * so it never exists in the host netns. No default route: nothing can leave the lab.
 */
export async function makeLabNetwork(hub: string, nodes: readonly string[], addresses: readonly string[]) {
  await ip(["netns", "add", hub]);
  await ip(["-n", hub, "link", "set", "lo", "up"]);
  await ip(["-n", hub, "link", "add", "br0", "type", "bridge"]);
  await ip(["-n", hub, "link", "set", "br0", "up"]);
  for (const [i, ns] of nodes.entries()) {
    await ip(["netns", "add", ns]);
    await ip(["-n", hub, "link", "add", `h${i + 1}`, "type", "veth", "peer", "name", "eth0", "netns", ns]);
    await ip(["-n", hub, "link", "set", `h${i + 1}`, "master", "br0", "up"]);
    await ip(["-n", ns, "link", "set", "lo", "up"]);
    await ip(["-n", ns, "addr", "add", `${addresses[i]}/24`, "dev", "eth0"]);
    await ip(["-n", ns, "link", "set", "eth0", "up"]);
  }
}

/** Delete the given netns that exist (their veths and bridges go with them). */
export async function deleteNetns(names: readonly string[]): Promise<void> {
  const existing = new Set(await netnsList());
  for (const name of names) if (existing.has(name)) await ip(["netns", "del", name]);
}

/** `mnt:[4026532301]` of a process, or undefined once it is gone. */
export function mountNsOf(pid: number): Promise<string | undefined> {
  return readlink(`/proc/${pid}/ns/mnt`).catch(() => undefined);
}

/** A live (not zombie) process: reparented helpers may sit unreaped for a while. */
async function live(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
  return state !== "" && state !== "Z";
}

/** Live processes whose mount namespace is `ns`. */
export async function pidsInMountNs(ns: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const pid = Number(entry);
    if ((await mountNsOf(pid)) === ns && (await live(pid))) out.push(pid);
  }
  return out;
}

/** End every process in mount namespace `ns` (never ours): TERM, then KILL after `graceMs`. */
export async function killMountNs(ns: string, graceMs = 1000): Promise<number[]> {
  if (ns === (await mountNsOf(process.pid)))
    throw new Error(`refusing to empty our own mount namespace ${ns}`);
  const found = await pidsInMountNs(ns);
  const signal = (pids: number[], sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  signal(found, "SIGTERM");
  const until = Date.now() + graceMs;
  let left = found;
  while (left.length > 0 && Date.now() < until) {
    await sleep(50);
    left = await pidsInMountNs(ns);
  }
  signal(left, "SIGKILL");
  return found;
}

/** PIDs whose mount table mentions `path` anywhere (as a mount point or a source). */
export async function pidsMounting(path: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/mountinfo`, "utf8").catch(() => "");
    if (text.includes(path)) out.push(Number(entry));
  }
  return out;
}
