/**
 * A private Docker Engine for the e2e tiers: its own temp dir (data-root, exec-root,
 * unix socket, pidfile, config file, log), no bridge, no iptables, never a docker network.
 * Workload containers run with `--network none` from a busybox image made by `docker import`.
 *
 * What cannot be private (dockerd 20.10): legacy plugins are found only in the hard-coded
 * /run/docker/plugins (`<name>.sock` or `<name>/<name>.sock`) and /etc/docker/plugins,
 * /usr/lib/docker/plugins (`.spec`/`.json`); no flag or env moves them (only a mount namespace
 * could), and managed plugins of every dockerd also live in /run/docker/plugins/<id>/.
 * `docker volume ls` and a Get of an unknown volume scan that dir and activate every socket in it,
 * so dockerds on one machine see each other's legacy plugins. Once activated, a plugin whose socket
 * vanished costs 15 s per List/unknown-Get until dockerd restarts. Hence: a unique plugin name per
 * run (uniquePluginName), its socket removed at the end, and dead sockets of earlier crashed runs
 * (our prefix only, older than a minute, nobody listening) removed before dockerd starts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import {
  lstat,
  mkdir,
  mkdtemp,
  open,
  readdir,
  readFile,
  rm,
  symlink,
  unlink,
  writeFile,
} from "node:fs/promises";
import { request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { which } from "./prereq.ts";

/** Where dockerd looks for legacy plugin sockets: fixed in moby's pkg/plugins, no flag moves it. */
export const PLUGIN_SOCKET_DIR = "/run/docker/plugins";
export const PLUGIN_PREFIX = "volgate-e2e";
export const IMAGE = "volgate-e2e/busybox:latest";

export interface DockerResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

export interface DockerOptions {
  readonly timeoutMs?: number;
  /** Written to the client's stdin. */
  readonly stdin?: string;
}

export interface Dockerd {
  readonly dir: string;
  readonly socket: string;
  readonly logFile: string;
  /** The docker client binary in use (see dockerClient). */
  readonly client: string;
  readonly image: string;
  pid(): number | undefined;
  /** Run the docker client against this daemon: execFile-style, no shell. Never throws on a non-zero exit. */
  docker(args: readonly string[], options?: DockerOptions): Promise<DockerResult>;
  /** Stop the daemon (its containers stop with it) and start it again on the same dirs. */
  restart(): Promise<void>;
  /** Remove containers, stop the daemon, unmount what it left, delete its dir. */
  stop(): Promise<void>;
  logTail(lines?: number): Promise<string>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The docker client. Prefers Debian's /usr/bin/docker (the version .ci/setup installs, matching
 * dockerd 20.10); a newer client first in PATH also works (it negotiates API 1.41) but is not what CI has.
 */
export function dockerClient(): string | undefined {
  if (existsSync("/usr/bin/docker")) return "/usr/bin/docker";
  return which("docker");
}

export function dockerdBinary(): string | undefined {
  if (existsSync("/usr/sbin/dockerd")) return "/usr/sbin/dockerd";
  return which("dockerd");
}

/** A plugin name no other run uses: `volgate-e2e-<hex>`. */
export function uniquePluginName(prefix = PLUGIN_PREFIX): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

export function pluginSocketPath(name: string): string {
  return join(PLUGIN_SOCKET_DIR, `${name}.sock`);
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(1000, () => done(true)); // accepted but silent: someone is there
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

/** Remove `<prefix>-*.sock` files in /run/docker/plugins that nobody listens on (left by crashed runs). */
export async function removeDeadPluginSockets(prefix = PLUGIN_PREFIX): Promise<string[]> {
  const removed: string[] = [];
  const entries = await readdir(PLUGIN_SOCKET_DIR).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!entry.startsWith(`${prefix}-`) || !entry.endsWith(".sock")) continue;
    const path = join(PLUGIN_SOCKET_DIR, entry);
    const info = await lstat(path).catch(() => undefined);
    if (!info?.isSocket()) continue;
    // A socket a few seconds old may belong to a run that is starting right now.
    if (Date.now() - info.mtimeMs < 60_000) continue;
    if (await socketAnswers(path)) continue;
    await unlink(path).catch(() => {});
    removed.push(path);
  }
  return removed;
}

/** Mount points at or under `dir` (deepest first), as process `pid` (default: this one) sees them. */
export async function mountsUnder(dir: string, pid: number | "self" = "self"): Promise<string[]> {
  const text = await readFile(`/proc/${pid}/mountinfo`, "utf8");
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field === undefined) continue;
    const mp = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    if (mp === dir || mp.startsWith(`${dir}/`)) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Run a program (no shell) and collect its output; never rejects on a non-zero exit. */
export function run(
  file: string,
  args: readonly string[],
  options: DockerOptions & { env?: NodeJS.ProcessEnv } = {},
): Promise<DockerResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ["pipe", "pipe", "pipe"], env: options.env ?? process.env });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? 120_000);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin.on("error", () => {});
    child.stdin.end(options.stdin ?? "");
    const finish = (code: number | null, extra = "") => {
      clearTimeout(timer);
      const note = timedOut ? `\n[killed after ${options.timeoutMs ?? 120_000} ms]` : "";
      resolve({ code, stdout, stderr: stderr + extra + note, ms: Math.round(performance.now() - started) });
    };
    child.once("error", (err) => finish(127, String(err)));
    child.once("close", (code) => finish(code));
  });
}

/**
 * Unmount everything at or under `dir` (lazily if busy), then delete it, but only when no mount is
 * left: a recursive delete through a live bind or FUSE mount would delete remote data.
 */
export async function removeDirSafely(dir: string): Promise<void> {
  for (const mp of await mountsUnder(dir)) {
    const plain = await run("umount", [mp], { timeoutMs: 15_000 });
    if (plain.code !== 0) await run("umount", ["-l", mp], { timeoutMs: 15_000 });
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) {
    console.warn(`not deleting ${dir}: still mounted: ${left.join(", ")}`);
    return;
  }
  await rm(dir, { recursive: true, force: true });
}

/** The last `lines` lines of a file, "" if unreadable. */
export async function tail(file: string, lines = 40): Promise<string> {
  const text = await readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** True when the Docker Engine API on `socket` answers /_ping. */
export function ping(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: "/_ping", method: "GET", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return true;
  await Promise.race([new Promise((r) => child.once("exit", r)), sleep(ms)]);
  return exited(child);
}

/**
 * A rootfs tar: /bin/busybox plus a symlink per applet, and the few dirs a container expects.
 * No /data: a mount target that exists in the image makes dockerd copy it into an empty volume
 * (and chown the volume's root), which tests should ask for on purpose, not by accident.
 */
export async function busyboxTar(dir: string): Promise<string> {
  const busybox = existsSync("/bin/busybox") ? "/bin/busybox" : which("busybox");
  if (busybox === undefined) throw new Error("busybox not found: apt-get install busybox-static");
  const rootfs = join(dir, "busybox-rootfs");
  for (const d of ["bin", "etc", "tmp", "proc", "sys", "dev"]) {
    await mkdir(join(rootfs, d), { recursive: true });
  }
  await writeFile(join(rootfs, "bin", "busybox"), await readFile(busybox), { mode: 0o755 });
  const list = await run(busybox, ["--list"]);
  const applets = list.stdout.split("\n").filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== "busybox");
  for (const applet of applets) await symlink("busybox", join(rootfs, "bin", applet)).catch(() => {});
  await writeFile(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
  await writeFile(join(rootfs, "etc", "group"), "root:x:0:\n");
  const tar = join(dir, "busybox.tar");
  const made = await run("tar", ["-C", rootfs, "-cf", tar, "."]);
  if (made.code !== 0) throw new Error(`tar of busybox rootfs failed: ${made.stderr}`);
  await rm(rootfs, { recursive: true, force: true });
  return tar;
}

let exitHook = false;
const live = new Set<ChildProcess>();

export async function startDockerd(
  options: { image?: boolean; readyTimeoutMs?: number } = {},
): Promise<Dockerd> {
  const binary = dockerdBinary();
  const client = dockerClient();
  if (binary === undefined || client === undefined)
    throw new Error("dockerd or docker not found: apt-get install docker.io");
  await removeDeadPluginSockets();
  const dir = await mkdtemp(join(tmpdir(), "volgate-dockerd-"));
  // unix socket paths are limited to 107 bytes: tmpdir() keeps them short.
  const socket = join(dir, "docker.sock");
  const logFile = join(dir, "dockerd.log");
  const configFile = join(dir, "daemon.json");
  await writeFile(configFile, "{}\n"); // never read /etc/docker/daemon.json
  const clientConfig = join(dir, "client");
  await mkdir(clientConfig, { recursive: true });
  const args = [
    "--data-root",
    join(dir, "data"),
    "--exec-root",
    join(dir, "exec"),
    "-H",
    `unix://${socket}`,
    "--pidfile",
    join(dir, "docker.pid"),
    "--config-file",
    configFile,
    "--bridge=none",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--userland-proxy=false",
  ];
  const clientEnv = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: dir,
    DOCKER_CONFIG: clientConfig,
    DOCKER_CLI_HINTS: "false",
  };

  let child: ChildProcess | undefined;
  const launch = async () => {
    const log = await open(logFile, "a");
    const c = spawn(binary, args, { stdio: ["ignore", log.fd, log.fd], env: { PATH: clientEnv.PATH } });
    await log.close();
    live.add(c);
    c.once("exit", () => live.delete(c));
    child = c;
    const until = Date.now() + (options.readyTimeoutMs ?? 60_000);
    while (!(await ping(socket))) {
      if (exited(c) || Date.now() > until) {
        const why = exited(c) ? `exited (${c.exitCode ?? c.signalCode})` : "did not answer in time";
        c.kill("SIGKILL");
        throw new Error(`private dockerd ${why}; log ${logFile}:\n${await tail(logFile)}`);
      }
      await sleep(50);
    }
  };
  const halt = async () => {
    const c = child;
    if (c === undefined || exited(c)) return;
    c.kill("SIGTERM");
    // dockerd stops running containers (10 s grace each, in parallel) before it exits.
    if (!(await waitExit(c, 30_000))) {
      c.kill("SIGKILL");
      await waitExit(c, 5000);
    }
  };
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }

  const docker = (argv: readonly string[], opts: DockerOptions = {}) =>
    run(client, ["-H", `unix://${socket}`, ...argv], { ...opts, env: clientEnv });

  try {
    await launch();
    if (options.image !== false) {
      const tar = await busyboxTar(dir);
      const imported = await docker(["import", tar, IMAGE]);
      if (imported.code !== 0) throw new Error(`docker import failed: ${imported.stderr}`);
      await rm(tar, { force: true });
    }
  } catch (err) {
    await halt();
    await removeDirSafely(dir);
    throw err;
  }

  return {
    dir,
    socket,
    logFile,
    client,
    image: IMAGE,
    pid: () => (child && !exited(child) ? child.pid : undefined),
    docker,
    async restart() {
      await halt();
      await launch();
    },
    async stop() {
      if (child && !exited(child)) {
        const ids = await docker(["ps", "-aq"]);
        const list = ids.stdout.split("\n").filter((s) => s.trim() !== "");
        if (list.length > 0) await docker(["rm", "-f", ...list]);
      }
      await halt();
      await removeDirSafely(dir);
    },
    logTail: (lines = 40) => tail(logFile, lines),
  };
}

/** `{a: "1"}` as the docker CLI's `-o a=1`. */
export function optionArgs(opts: Readonly<Record<string, string>>): string[] {
  return Object.entries(opts).flatMap(([k, v]) => ["-o", `${k}=${v}`]);
}
