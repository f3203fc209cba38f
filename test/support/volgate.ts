/**
 * The daemon bundle (dist/bundle/volgate.mjs, what the plugin and the host install ship) as a
 * child process, the way an operator runs it on a host:
 * VOLGATE_* env, its socket, mount root, state and secrets dirs in a temp dir (or the socket in
 * /run/docker/plugins for legacy discovery), JSON logs captured and parsed for assertions.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, mkdtemp, unlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readState as readStateDir } from "../../src/state/load.ts";
import { mountsUnder, removeDirSafely, run } from "./dockerd.ts";

export const VOLGATE_BUNDLE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "../../dist/bundle/volgate.mjs",
);

/** The Node flags the managed plugin starts the daemon with (plugin/config.json's entrypoint). */
export const SHIPPED_NODE_FLAGS: readonly string[] = (
  JSON.parse(
    readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), "../../plugin/config.json"), "utf8"),
  ).entrypoint as string[]
).filter((a) => a.startsWith("--") && a !== "--");

/** One parsed JSON log line (pino: level, time, msg, and the fields). */
// biome-ignore lint/suspicious/noExplicitAny: tests inspect arbitrary log fields
export type LogLine = Record<string, any> & { level: number; msg: string };

export interface VolgateOptions {
  /** Socket path; default `<dir>/volgate.sock`. Legacy discovery: pluginSocketPath(name). */
  readonly socket?: string;
  /** State dir; default `<dir>/state` (e.g. a small tmpfs the test fills or makes read-only). */
  readonly stateDir?: string;
  /** Extra VOLGATE_* settings. */
  readonly env?: Readonly<Record<string, string>>;
  readonly readyTimeoutMs?: number;
  /** An argv prefix to run the daemon under, e.g. a swarm node's enter() (nsenter, which execs it). */
  readonly launcher?: readonly string[];
  /** Runs before the first start, e.g. to write credentials profiles the daemon reads as it starts. */
  readonly prepare?: (dirs: { readonly secretsDir: string; readonly stateDir: string }) => Promise<void>;
  /** Node flags before the bundle, e.g. SHIPPED_NODE_FLAGS to run it as the plugin does. */
  readonly nodeFlags?: readonly string[];
}

export interface StateFile {
  volumes: Array<{
    name: string;
    backend: string;
    options: Record<string, string>;
    mounts: Record<string, number>;
  }>;
}

export interface Volgate {
  readonly dir: string;
  readonly socket: string;
  readonly root: string;
  readonly stateDir: string;
  readonly secretsDir: string;
  /** Everything the process wrote to stdout/stderr, across restarts (raw text, for secret checks). */
  readonly outputFile: string;
  pid(): number | undefined;
  running(): boolean;
  /** Parsed JSON log lines of every start so far. */
  logs(): readonly LogLine[];
  /** Raw stdout + stderr of every start so far. */
  output(): string;
  /** Resolves with the first line (seen so far or later) matching `match`. */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Send `signal` and wait for the exit; resolves with how it ended and how long it took. */
  kill(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
  /** Start again on the same dirs (after kill); resolves once "listening" was logged, with the time taken. */
  restart(): Promise<number>;
  /** The state file as on disk. */
  state(): Promise<StateFile>;
  /** Mount ID -> count of one volume, from the state file; undefined if the volume is unknown. */
  mounts(volume: string): Promise<Record<string, number> | undefined>;
  /** Stop the process, unmount what it left under its root, delete its dirs. */
  stop(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startVolgate(options: VolgateOptions = {}): Promise<Volgate> {
  if (!existsSync(VOLGATE_BUNDLE)) {
    throw new Error(`${VOLGATE_BUNDLE} is missing: build it first (npm run build, or npm test)`);
  }
  const dir = await mkdtemp(join(tmpdir(), "volgate-daemon-"));
  const socket = options.socket ?? join(dir, "volgate.sock");
  const root = join(dir, "root");
  const stateDir = options.stateDir ?? join(dir, "state");
  const secretsDir = join(dir, "secrets");
  const outputFile = join(dir, "volgate.log");
  await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  const env = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    VOLGATE_SOCKET: socket,
    VOLGATE_ROOT: root,
    VOLGATE_STATE_DIR: stateDir,
    VOLGATE_SECRETS_DIR: secretsDir,
    VOLGATE_LOG_FORMAT: "json",
    // Most cases watch a connection go with its last volume; warm connections set their grace themselves.
    VOLGATE_CONNECTION_GRACE: "0",
    ...options.env,
  };

  const lines: LogLine[] = [];
  let raw = "";
  const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
  let child: ChildProcess | undefined;

  const take = (text: string) => {
    raw += text;
    void appendFile(outputFile, text).catch(() => {});
  };
  const onLine = (line: string) => {
    if (line.trim() === "") return;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      return;
    }
    lines.push(parsed);
    for (const w of waiters) {
      if (w.match(parsed)) {
        waiters.delete(w);
        w.resolve(parsed);
      }
    }
  };

  const waitForLog = (match: (l: LogLine) => boolean, timeoutMs = 10_000) => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<LogLine>((resolvePromise, reject) => {
      const waiter = {
        match,
        resolve: (l: LogLine) => {
          clearTimeout(timer);
          resolvePromise(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(
          new Error(
            `volgate did not log the expected line within ${timeoutMs} ms; last output:\n${raw.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  const isRunning = () => child !== undefined && child.exitCode === null && child.signalCode === null;

  const launch = async (): Promise<number> => {
    const started = performance.now();
    const from = lines.length;
    const node = [process.execPath, ...(options.nodeFlags ?? []), VOLGATE_BUNDLE];
    const [file, ...args] = [...(options.launcher ?? []), ...node];
    const c = spawn(file ?? process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    let pending = "";
    c.stdout?.on("data", (d: Buffer) => {
      const text = d.toString();
      take(text);
      pending += text;
      const parts = pending.split("\n");
      pending = parts.pop() ?? "";
      for (const p of parts) onLine(p);
    });
    c.stderr?.on("data", (d: Buffer) => take(d.toString()));
    const exitedEarly = new Promise<never>((_, reject) => {
      c.once("exit", (code, signal) => {
        if (lines.slice(from).some((l) => l.msg === "listening")) return;
        reject(new Error(`volgate exited before listening (${code ?? signal}):\n${raw.slice(-3000)}`));
      });
    });
    exitedEarly.catch(() => {});
    const listening = waitForLog(
      (l) => l.msg === "listening" && lines.indexOf(l) >= from,
      options.readyTimeoutMs ?? 15_000,
    );
    try {
      await Promise.race([listening, exitedEarly]);
    } catch (err) {
      c.kill("SIGKILL");
      throw err;
    }
    return Math.round(performance.now() - started);
  };

  const kill = async (signal: NodeJS.Signals = "SIGTERM") => {
    const started = performance.now();
    const c = child;
    if (c === undefined || !isRunning()) {
      return { code: c?.exitCode ?? null, signal: c?.signalCode ?? null, ms: 0 };
    }
    const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
      c.once("exit", (code, sig) => r({ code, signal: sig })),
    );
    c.kill(signal);
    const result = await Promise.race([done, sleep(20_000).then(() => undefined)]);
    if (result === undefined) {
      c.kill("SIGKILL");
      return { ...(await done), ms: Math.round(performance.now() - started) };
    }
    return { ...result, ms: Math.round(performance.now() - started) };
  };

  const readState = async (): Promise<StateFile> => ({
    volumes: [...(await readStateDir(stateDir)).values()],
  });

  process.once("exit", () => child?.kill("SIGKILL"));
  try {
    await options.prepare?.({ secretsDir, stateDir });
    await launch();
  } catch (err) {
    await removeDirSafely(dir);
    throw err;
  }

  return {
    dir,
    socket,
    root,
    stateDir,
    secretsDir,
    outputFile,
    pid: () => (isRunning() ? child?.pid : undefined),
    running: isRunning,
    logs: () => lines,
    output: () => raw,
    waitForLog,
    kill,
    restart: launch,
    state: readState,
    async mounts(volume) {
      return (await readState()).volumes.find((v) => v.name === volume)?.mounts;
    },
    async stop() {
      await kill("SIGTERM");
      await unlink(socket).catch(() => {});
      // sshfs helpers run detached and outlive volgate: unmounting their FUSE mounts ends them.
      const left = await mountsUnder(root);
      if (left.length > 0) console.warn(`volgate left mounts under ${root}: ${left.join(", ")}`);
      await removeDirSafely(dir);
    },
  };
}

/** PIDs of processes whose argv mentions `needle`: our own sshfs helpers, found by their (unique) mount dir. */
export async function pidsMentioning(needle: string): Promise<number[]> {
  const ps = await run("ps", ["-eo", "pid=,args="]);
  return ps.stdout
    .split("\n")
    .filter((l) => l.includes(needle))
    .map((l) => Number.parseInt(l.trim(), 10))
    .filter((n) => Number.isInteger(n) && n !== process.pid);
}
