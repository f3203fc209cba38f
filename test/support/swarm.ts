/**
 * A multi-node Docker Swarm on one machine, for the e2e tiers (the approach of
 * shared/swarm-lab, in our own code): per node a network, mount and UTS namespace with a private
 * dockerd 20.10 (swarm-node.ts), nodes joined by veths to a bridge in a hub netns
 * (namespaces.ts), one busybox image imported once and loaded everywhere (same image ID), swarm
 * init on node1 and join on the others. Lab addresses (10.213.0.0/24, overlay pool 10.214.0.0/16,
 * docker_gwbridge 10.215.N.0/28) exist only inside these namespaces, which have no default route.
 * Names and dirs are unique per run: several runs may share the machine. Workload tasks need
 * no network; never create docker networks here beyond what swarm makes itself.
 *
 * stop() (swarm-teardown.ts) reports what it could not remove.
 */
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forwardInto } from "./forward.ts";
import { makeLabNetwork, runNetnsMounted } from "./namespaces.ts";
import { stopwatch } from "./stopwatch.ts";
import { type OwnedNode, type SwarmNode, startNode } from "./swarm-node.ts";
import { joinSwarm, loadImage, loadPlugins, must } from "./swarm-setup.ts";
import { type TeardownReport, tearDown } from "./swarm-teardown.ts";

export type { SwarmNode } from "./swarm-node.ts";
export type { TeardownReport } from "./swarm-teardown.ts";

/** What a swarm tier needs on PATH (plus root, and the docker client: see dockerClient). */
export const SWARM_TOOLS = ["dockerd", "nsenter", "unshare", "ip", "mount", "tar", "busybox"];

const NET = "10.213.0";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SwarmOptions {
  readonly nodes?: 2 | 3;
  /**
   * Runs once every dockerd answers and has the image, before swarm init/join: start legacy
   * plugins here. The harness then makes each dockerd load them, so every node advertises them
   * when it joins; otherwise tasks sit Pending ("missing plugin") up to 20 s. It loads them with
   * a Get of a name no volume has (dockerd activates every plugin socket to ask), not with a List:
   * the test decides what the plugins see first.
   */
  readonly beforeSwarm?: (swarm: Swarm) => Promise<void>;
}

export interface Swarm {
  readonly id: string;
  readonly dir: string;
  readonly nodes: readonly SwarmNode[];
  readonly manager: SwarmNode;
  /** The busybox image ID, the same on every node: use it with `--no-resolve-image`. */
  readonly image: string;
  /** Milliseconds per start-up step (netns, dockerds, image, beforeSwarm, swarm, total). */
  readonly timings: Readonly<Record<string, number>>;
  /** Node `i`, 1-based. */
  node(i: number): SwarmNode;
  /** Stop `helper` at teardown, after the dockerds and before the namespaces go (last added, first stopped). */
  onTeardown(helper: () => Promise<unknown>): void;
  /** Make host 127.0.0.1 `ports` reachable as 127.0.0.1:PORT inside every node netns. */
  forward(ports: readonly number[]): Promise<void>;
  /** Hostnames of the nodes whose swarm description lists volume plugin `name`. */
  advertising(name: string): Promise<string[]>;
  /** Wait until `service` has `count` running tasks; resolves with the milliseconds it took. */
  converge(service: string, count: number, timeoutMs?: number): Promise<number>;
  stop(): Promise<TeardownReport>;
}

export async function startSwarm(options: SwarmOptions = {}): Promise<Swarm> {
  const count = options.nodes ?? 2;
  const id = randomBytes(3).toString("hex");
  const dir = await mkdtemp(join(tmpdir(), `vgswarm-${id}-`));
  const hub = `vgs${id}-hub`;
  const netnsNames = Array.from({ length: count }, (_, i) => `vgs${id}-n${i + 1}`);
  const hadRunNetns = await runNetnsMounted();
  const nodes: OwnedNode[] = [];
  const helpers: Array<() => Promise<unknown>> = [];
  const up = stopwatch();
  let image = "";
  let stopping: Promise<TeardownReport> | undefined;

  const node = (i: number) => {
    const n = nodes[i - 1];
    if (n === undefined) throw new Error(`no node ${i} (the lab has ${nodes.length})`);
    return n;
  };
  const teardown = () => {
    stopping ??= tearDown({ dir, hub, netnsNames, hadRunNetns, nodes, helpers });
    return stopping;
  };
  const swarm: Swarm = {
    id,
    dir,
    nodes,
    get manager() {
      return node(1);
    },
    get image() {
      return image;
    },
    timings: up.timings,
    node,
    onTeardown: (helper) => void helpers.push(helper),
    async forward(ports) {
      for (const n of nodes) {
        const f = await forwardInto(n.netns, n.dir, ports);
        helpers.push(() => f.stop());
      }
    },
    async advertising(name) {
      const ids = must(await node(1).docker(["node", "ls", "-q"]), "docker node ls").split("\n");
      const format =
        "{{.Description.Hostname}}{{range .Description.Engine.Plugins}} {{.Type}}/{{.Name}}{{end}}";
      const out = must(
        await node(1).docker(["node", "inspect", "-f", format, ...ids]),
        "docker node inspect",
      );
      return out
        .split("\n")
        .filter((line) => line.split(" ").slice(1).includes(`Volume/${name}`))
        .map((line) => line.split(" ")[0] ?? "");
    },
    async converge(service, want, timeoutMs = 60_000) {
      const started = performance.now();
      const args = [
        "service",
        "ps",
        service,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.CurrentState}}",
      ];
      for (;;) {
        const states = must(await node(1).docker(args), "docker service ps").split("\n");
        if (states.filter((s) => s.startsWith("Running")).length === want)
          return Math.round(performance.now() - started);
        if (performance.now() - started > timeoutMs) {
          const ps = await node(1).docker(["service", "ps", "--no-trunc", service]);
          throw new Error(
            `${service}: not ${want} running tasks after ${timeoutMs} ms:\n${ps.stdout}${ps.stderr}`,
          );
        }
        await sleep(100);
      }
    },
    stop: teardown,
  };

  try {
    await makeLabNetwork(
      hub,
      netnsNames,
      netnsNames.map((_, i) => `${NET}.${i + 1}`),
    );
    up.lap("netns");
    const specs = netnsNames.map((netns, i) => ({
      index: i + 1,
      dir: join(dir, `node${i + 1}`),
      netns,
      address: `${NET}.${i + 1}`,
      localPool: `base=10.215.${i + 1}.0/24,size=28`,
    }));
    for (const s of specs) await mkdir(s.dir, { recursive: true });
    const started = await Promise.allSettled(specs.map(startNode));
    for (const s of started) if (s.status === "fulfilled") nodes.push(s.value);
    const failed = started.find((s) => s.status === "rejected");
    if (failed) throw failed.reason;
    up.lap("dockerds");
    image = await loadImage(dir, nodes);
    up.lap("image");
    if (options.beforeSwarm) {
      await options.beforeSwarm(swarm);
      for (const n of nodes) await loadPlugins(n, `vgswarm-${id}-probe`);
      up.lap("beforeSwarm");
    }
    await joinSwarm(nodes);
    up.lap("swarm");
    up.total();
  } catch (err) {
    const report = await teardown();
    if (report.leftovers.length > 0) console.warn(`swarm lab ${id} left: ${report.leftovers.join("; ")}`);
    throw err;
  }
  return swarm;
}
