/**
 * One node of the one-machine swarm lab: a private dockerd 20.10 (it starts its own containerd)
 * in the node's network namespace and in fresh mount and UTS namespaces, prepared by
 * swarm-node-boot.sh (hostname, sysfs with the host's cgroups, node-private /run/docker,
 * /run/containerd, /etc/docker, /etc/resolv.conf). Programs run "on" the node through enter():
 * its mount and UTS namespaces, and the host netns unless asked for the node's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, open, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DockerOptions,
  type DockerResult,
  dockerClient,
  dockerdBinary,
  mountsUnder,
  ping,
  run,
  tail,
} from "./dockerd.ts";
import { mountNsOf } from "./namespaces.ts";
import { killOnExit } from "./peer.ts";

const BOOT = join(dirname(fileURLToPath(import.meta.url)), "swarm-node-boot.sh");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SwarmNode {
  /** 1-based; node 1 is the manager. */
  readonly index: number;
  readonly hostname: string;
  readonly netns: string;
  /** The node's address on the lab bridge (exists only inside the lab's namespaces). */
  readonly address: string;
  /** Host path of the node's own dir (dockerd data, logs, private /run/docker, ...). */
  readonly dir: string;
  /** Host path of what the node sees as /run/docker/plugins: legacy plugin sockets go here. */
  readonly pluginDir: string;
  /** `mnt:[...]` of the node's mount namespace. */
  readonly mountNs: string;
  readonly logFile: string;
  pid(): number | undefined;
  /** The docker CLI against this node's dockerd (never the system one); never throws on a non-zero exit. */
  docker(args: readonly string[], options?: DockerOptions): Promise<DockerResult>;
  /** argv prefix running a program in this node's mount + UTS namespaces (and its netns with `net`). */
  enter(options?: { net?: boolean }): string[];
  /** Run a program through enter(). */
  exec(argv: readonly string[], options?: DockerOptions & { net?: boolean }): Promise<DockerResult>;
  /** Mount points at or under `dir` as this node's dockerd sees them. */
  mountsUnder(dir: string): Promise<string[]>;
}

export interface NodeSpec {
  readonly index: number;
  readonly dir: string;
  readonly netns: string;
  readonly address: string;
  /** dockerd --default-address-pool (docker_gwbridge lives in it, inside the node netns). */
  readonly localPool: string;
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

async function waitExit(c: ChildProcess, ms: number): Promise<boolean> {
  if (exited(c)) return true;
  await Promise.race([new Promise((r) => c.once("exit", r)), sleep(ms)]);
  return exited(c);
}

/** What the lab itself does with a node beyond the public view. */
export interface OwnedNode extends SwarmNode {
  /** Stop dockerd: TERM, KILL after 30 s. */
  halt(): Promise<void>;
  /**
   * Let the mount namespace go. Until then an open handle pins it, so its `mnt:[N]` number cannot be
   * reused by a namespace another run creates while this one's processes are being found and ended.
   */
  release(): Promise<void>;
}

/** Start the node's dockerd; resolves once its API answers. */
export async function startNode(spec: NodeSpec): Promise<OwnedNode> {
  const dockerd = dockerdBinary();
  const client = dockerClient();
  if (dockerd === undefined || client === undefined)
    throw new Error("dockerd/docker missing: apt-get install docker.io");
  const hostname = `node${spec.index}`;
  const socket = join(spec.dir, "docker.sock");
  const logFile = join(spec.dir, "dockerd.log");
  await mkdir(join(spec.dir, "client"), { recursive: true });
  await writeFile(join(spec.dir, "daemon.json"), "{}\n"); // never the host's /etc/docker/daemon.json
  const args = [
    ...["--config-file", join(spec.dir, "daemon.json"), "-H", `unix://${socket}`],
    ...["--data-root", join(spec.dir, "data"), "--exec-root", join(spec.dir, "exec")],
    ...["--pidfile", join(spec.dir, "dockerd.pid"), "--default-address-pool", spec.localPool],
    ...[
      "--bridge=none",
      "--iptables=false",
      "--ip6tables=false",
      "--dns",
      "127.0.0.1",
      "--shutdown-timeout",
      "5",
    ],
  ];
  const launcher = [
    `--net=/run/netns/${spec.netns}`,
    "--",
    "unshare",
    "--mount",
    "--uts",
    "--propagation",
    "slave",
  ];
  const log = await open(logFile, "a");
  const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
  // nsenter, unshare and the boot script all exec: this child IS dockerd.
  const child = spawn("nsenter", [...launcher, "--", "/bin/sh", BOOT, hostname, spec.dir, dockerd, ...args], {
    stdio: ["ignore", log.fd, log.fd],
    env,
  });
  await log.close();
  killOnExit(child);
  const halt = async () => {
    if (exited(child)) return;
    child.kill("SIGTERM");
    if (!(await waitExit(child, 30_000))) {
      child.kill("SIGKILL");
      await waitExit(child, 5000);
    }
  };

  const until = Date.now() + 60_000;
  while (!(await ping(socket))) {
    if (exited(child) || Date.now() > until) {
      await halt();
      throw new Error(`${hostname} dockerd did not come up; ${logFile}:\n${await tail(logFile)}`);
    }
    await sleep(50);
  }
  const pid = child.pid ?? 0;
  const pin = await open(`/proc/${pid}/ns/mnt`, "r");
  const mountNs = await mountNsOf(pid);
  if (mountNs === undefined || mountNs === (await mountNsOf(process.pid))) {
    await halt();
    await pin.close();
    throw new Error(`${hostname} dockerd is not in a mount namespace of its own`);
  }
  const clientEnv = {
    ...env,
    HOME: spec.dir,
    DOCKER_CONFIG: join(spec.dir, "client"),
    DOCKER_CLI_HINTS: "false",
  };
  const enter = (o: { net?: boolean } = {}) => [
    "nsenter",
    "-t",
    String(pid),
    "-m",
    "-u",
    ...(o.net ? ["-n"] : []),
    "--",
  ];
  return {
    ...spec,
    hostname,
    pluginDir: join(spec.dir, "run-docker", "plugins"),
    mountNs,
    logFile,
    pid: () => (exited(child) ? undefined : pid),
    docker: (argv, options = {}) =>
      run(client, ["-H", `unix://${socket}`, ...argv], { ...options, env: clientEnv }),
    enter,
    exec: (argv, options = {}) => run("nsenter", [...enter(options).slice(1), ...argv], options),
    mountsUnder: (dir) => mountsUnder(dir, pid),
    halt,
    release: () => pin.close(),
  };
}
