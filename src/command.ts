/**
 * The only place a process is spawned: execFile-style, never a shell, a minimal
 * environment, a deadline, and secrets through stdin only. Everything that
 * touches the machine goes through the CommandRunner seam so tests can fake it.
 */
import { spawn } from "node:child_process";
import { closeSync, constants, openSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import type { Deadline } from "./deadline.ts";
import { VolgateError, workFileError } from "./errors.ts";

export interface RunOptions {
  /** The child is killed when it is over (the budget spent, or Docker aborted the request). */
  readonly deadline: Deadline;
  /** Written to the child's stdin, then stdin is closed. The only way a secret reaches a helper. */
  readonly stdin?: string;
  /**
   * Called once the child has exited, which may be after the answer: a child killed in a kernel
   * call that waits on a hung mount leaves only when the call returns.
   */
  readonly onGone?: () => void;
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface StartOptions {
  readonly stdin?: string;
  /**
   * stdout and stderr go to this file (0600), so the helper outlives us without SIGPIPE; appended
   * (O_APPEND), so a cut from outside (helper-logs.ts) leaves the helper writing at the new end.
   */
  readonly logFile: string;
}

/** A long-running helper (sshfs -f) in its own process group. */
export interface Helper {
  readonly pid: number;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** What the helper wrote so far, from its log file. */
  output(): string;
  kill(): void;
}

export interface CommandRunner {
  run(file: string, args: readonly string[], options: RunOptions): Promise<RunResult>;
  start(file: string, args: readonly string[], options: StartOptions): Helper;
}

/** Helpers see only this environment: nothing of ours (tokens, proxies) leaks into them. */
const HELPER_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" };
const MAX_OUTPUT = 64 * 1024;
/** A fresh log per start, always written at its end: "w", plus O_APPEND. */
const LOG_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_APPEND;
/** How long a killed helper may take to be gone before the caller hears about it anyway. */
const KILL_WAIT_MS = 2000;

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

export function createRunner(home: string): CommandRunner {
  const env = { ...HELPER_ENV, HOME: home };
  return {
    run(file, args, { deadline, stdin, onGone }) {
      return new Promise((resolve, reject) => {
        const child = spawn(file, args, { env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        let settled = false;
        const finish = (error: Error | undefined, code: number | null) => {
          if (settled) return;
          settled = true;
          stopWatching();
          if (error) reject(error);
          else resolve({ code, stdout, stderr });
        };
        let killedBecause: Error | undefined;
        // Answer only once the helper is gone, so "killed" means no process is left; one stuck in a
        // kernel call (mount.nfs) dies when the call returns, so wait for that, but not forever.
        const stopWatching = deadline.onEnd(() => {
          if (settled) return;
          killedBecause = deadline.error(file);
          killGroup(child.pid);
          setTimeout(() => finish(killedBecause, null), KILL_WAIT_MS).unref();
        });
        child.stdout.on("data", (d: Buffer) => {
          if (stdout.length < MAX_OUTPUT) stdout += d.toString();
        });
        child.stderr.on("data", (d: Buffer) => {
          if (stderr.length < MAX_OUTPUT) stderr += d.toString();
        });
        child.on("error", (err) => {
          finish(new VolgateError("internal", `cannot run ${file}: ${err.message}`), null);
          if (child.pid === undefined) onGone?.();
        });
        child.on("exit", () => onGone?.());
        child.on("close", (code) => finish(killedBecause, code));
        child.stdin.on("error", () => {}); // the child may exit before reading stdin
        child.stdin.end(stdin ?? "");
      });
    },

    start(file, args, options) {
      let fd: number;
      try {
        fd = openSync(options.logFile, LOG_FLAGS, 0o600);
      } catch (err) {
        throw workFileError(dirname(options.logFile), err);
      }
      const child = spawn(file, args, { env, detached: true, stdio: ["pipe", fd, fd] });
      closeSync(fd);
      const exited = new Promise<number | null>((resolve) => {
        child.on("error", () => resolve(127));
        child.on("exit", (code) => resolve(code));
      });
      child.stdin?.on("error", () => {});
      child.stdin?.end(options.stdin ?? "");
      child.unref();
      return {
        pid: child.pid ?? -1,
        exited,
        output: () => {
          try {
            return readFileSync(options.logFile, "utf8").slice(-MAX_OUTPUT);
          } catch {
            return "";
          }
        },
        kill: () => killGroup(child.pid),
      };
    },
  };
}

/** Last few meaningful lines of a helper's output, for error messages. */
export function lastLines(text: string, count = 3): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .slice(-count)
    .join("; ");
}
