/**
 * Helper logs kept small: sshfs and s3fs write stdout and stderr to `*.log` files in the work dir
 * (they outlive volgate, so not to a pipe), and a chatty or looping helper would fill the disk.
 * Each log is cut to its last lines once it passes a limit: checked when the directory says a file
 * changed (inotify), and every few seconds besides, for what a watch may miss; a log may pass the
 * limit by what its helper writes while a cut runs (measured: 5-85 KiB at 4 MB/s). Helpers write
 * their logs O_APPEND (command.ts), so after a cut their next lines land at the new end.
 */
import { type FSWatcher, watch } from "node:fs";
import { open, readdir, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { messageOf } from "./errors.ts";
import type { Logger } from "./logger.ts";

export interface LogLimits {
  /** A log longer than this is cut. */
  readonly maxBytes: number;
  /** What is kept of it: its last bytes, from the first whole line. */
  readonly keepBytes: number;
}

const LIMITS: LogLimits = { maxBytes: 1024 * 1024, keepBytes: 128 * 1024 };
const SWEEP_MS = 10_000;

/**
 * Cut `path` to its tail if it is over the limit. A line the helper writes while this runs may be
 * lost or land just before the tail: a log's last words are what matter, not its order to the byte.
 */
async function cut(path: string, { maxBytes, keepBytes }: LogLimits): Promise<void> {
  const { size } = await stat(path);
  if (size <= maxBytes) return;
  const tail = Buffer.alloc(Math.min(keepBytes, size));
  const reader = await open(path, "r");
  try {
    await reader.read(tail, 0, tail.length, size - tail.length);
  } finally {
    await reader.close();
  }
  const lineStart = tail.indexOf(10) + 1;
  const kept = lineStart > 0 && lineStart < tail.length ? tail.subarray(lineStart) : tail;
  await truncate(path, 0);
  const writer = await open(path, "a");
  try {
    await writer.write(`[volgate: log cut to its last ${kept.length} bytes]\n`);
    await writer.write(kept);
  } finally {
    await writer.close();
  }
}

/** Keep every `*.log` in `dir` under the limits, from now on; close() stops it. */
export function capHelperLogs(dir: string, log: Logger, limits: LogLimits = LIMITS): { close(): void } {
  /** Logs being checked now, and whether they changed meanwhile (then they are checked again). */
  const busy = new Map<string, boolean>();
  const check = (name: string) => {
    if (!name.endsWith(".log")) return;
    if (busy.has(name)) {
      busy.set(name, true);
      return;
    }
    busy.set(name, false);
    void cut(join(dir, name), limits)
      .catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") log.warn({ file: name, err: messageOf(err) }, "cannot cut a helper log");
      })
      .finally(() => {
        const again = busy.get(name);
        busy.delete(name);
        if (again) check(name);
      });
  };
  const sweep = () => {
    void readdir(dir).then(
      (names) => names.forEach(check),
      () => {},
    );
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name) check(name);
    });
    watcher.on("error", () => watcher?.close());
  } catch (err) {
    log.warn(
      { dir, err: messageOf(err) },
      `cannot watch helper logs: checking them every ${SWEEP_MS / 1000} s`,
    );
  }
  sweep();
  const timer = setInterval(sweep, SWEEP_MS);
  timer.unref();
  return {
    close() {
      clearInterval(timer);
      watcher?.close();
    },
  };
}
