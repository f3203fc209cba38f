/**
 * Running one guest as a host process group (the UML `linux` kernel or `qemu-system-x86_64`):
 * its console streamed and kept, a deadline that kills the whole group, and nothing left behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MARK } from "./guest-init.ts";

export interface GuestOptions {
  /** Shell commands, run as root in the guest (`sh -e` not implied) once NFS is up; cwd `/`, HOME=/tmp. */
  readonly script: string;
  /** Whole run, boot included; the guest is killed when it passes. */
  readonly timeoutMs: number;
  /** Host directories made visible read-only at the same path in the guest. */
  readonly shares?: readonly string[];
  /** Guest memory, MiB (default 512). */
  readonly memMb?: number;
  /** Console text as it arrives (boot stages, then the script's output), for live logs. */
  readonly onOutput?: (text: string) => void;
}

export interface GuestResult {
  /** The script's exit code. */
  readonly code: number;
  /** The script's stdout and stderr, exactly as written (read back through the work dir, not the console). */
  readonly output: string;
  /** The whole console: kernel lines, setup stages, the script's output. */
  readonly console: string;
  /** Host wall time from spawning the guest until the kernel ran our init. */
  readonly kernelMs: number;
  /** Host wall time from spawning the guest until NFS was serving (the script starts then). */
  readonly readyMs: number;
  /** Host wall time from spawning the guest until it was gone. */
  readonly totalMs: number;
}

/** The host process that is the guest; `id` is on its command line. */
export interface Launch {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

/** One kind of guest: writes its boot files into the run's temp dir and says what to spawn. */
export interface GuestKind {
  /** For messages and logs: "uml", "qemu-tcg". */
  readonly name: string;
  prepare(dir: string, id: string, options: GuestOptions): Promise<Launch>;
}

interface Boot {
  readonly console: string;
  readonly exit: string;
  readonly timedOut: boolean;
  readonly kernelMs: number;
  readonly readyMs: number;
  readonly totalMs: number;
}

const READY = new RegExp(`${MARK} [0-9.]+ ready\n`);
const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** UML's host processes are ptrace-stopped children: they go a moment after the group is killed. */
async function waitGroupGone(pid: number, timeoutMs = 5000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      process.kill(-pid, 0);
    } catch {
      return true;
    }
    if (Date.now() > until) return false;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** Spawn the guest in its own process group, wait until it exits or `timeoutMs` passes; always reap it. */
export async function boot(
  launch: Launch,
  cwd: string,
  timeoutMs: number,
  onOutput?: (text: string) => void,
): Promise<Boot> {
  const started = Date.now();
  let kernelMs = -1;
  let readyMs = -1;
  let consoleText = "";
  const child = spawn(launch.command, launch.args, {
    cwd,
    env: launch.env ?? process.env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  live.add(child);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of live) killGroup(c);
    });
  }
  const onData = (d: Buffer) => {
    const text = d.toString().replace(/\r/g, "");
    consoleText += text;
    if (kernelMs < 0 && consoleText.includes(`${MARK} `)) kernelMs = Date.now() - started;
    if (readyMs < 0 && READY.test(consoleText)) readyMs = Date.now() - started;
    onOutput?.(text);
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child);
  }, timeoutMs);
  try {
    const exit = await new Promise<string>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve(String(code ?? signal)));
    });
    return { console: consoleText, exit, timedOut, kernelMs, readyMs, totalMs: Date.now() - started };
  } finally {
    clearTimeout(timer);
    killGroup(child);
    if (child.pid !== undefined) await waitGroupGone(child.pid);
    live.delete(child);
  }
}

/**
 * Boot a guest of `kind`, bring NFS up, run the script, power off. Resolves with the script's exit
 * code and output; rejects when setup fails, the guest dies early, or the timeout passes (the
 * guest is killed, the console tail is in the message). Leaves no process and no file behind.
 */
export async function runGuest(kind: GuestKind, options: GuestOptions): Promise<GuestResult> {
  for (const path of [tmpdir(), ...(options.shares ?? [])]) {
    if (!SAFE_PATH.test(path)) {
      throw new Error(`${kind.name}: path ${path} has characters the guest init cannot quote`);
    }
  }
  const dir = await mkdtemp(join(tmpdir(), `volgate-${kind.name}-`));
  const id = `volgate-${process.pid}-${Date.now().toString(36)}`;
  const what = `${kind.name} guest ${id} (${dir})`;
  try {
    await writeFile(join(dir, "script.sh"), options.script);
    const launch = await kind.prepare(dir, id, options);
    const run = await boot(launch, dir, options.timeoutMs, options.onOutput);
    if (run.timedOut) {
      throw new Error(
        `${what} did not finish within ${options.timeoutMs} ms and was killed; console:\n${tail(run.console)}`,
      );
    }
    const failed = /SETUP FAILED: (.*)/.exec(run.console);
    if (failed) throw new Error(`${what} setup failed (${failed[1]}); console:\n${tail(run.console)}`);
    const status = await readFile(join(dir, "status"), "utf8").catch(() => undefined);
    if (status === undefined) {
      throw new Error(
        `${what} ended (exit ${run.exit}) without finishing the script; console:\n${tail(run.console)}`,
      );
    }
    const output = await readFile(join(dir, "output"), "utf8");
    const { kernelMs, readyMs, totalMs } = run;
    return { code: Number(status.trim()), output, console: run.console, kernelMs, readyMs, totalMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
