/** What the real machine shows: processes and their command lines, mount entries, and waiting for a change. */
import { readdir, readFile } from "node:fs/promises";
import { type MountEntry, parseMountInfo } from "../../src/mountinfo.ts";

export interface Process {
  readonly pid: number;
  readonly argv: string[];
}

/** Every process with a command line. */
export async function processes(): Promise<Process[]> {
  const out: Process[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const text = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (text) out.push({ pid: Number(entry), argv: text.split("\0").filter((a) => a !== "") });
  }
  return out;
}

/** The `name` helpers (sshfs, s3fs) whose command line names `target`. */
export async function helpersFor(name: string, target: string): Promise<Process[]> {
  return (await processes()).filter((p) => p.argv[0] === name && p.argv.includes(target));
}

/** Every mount this process sees, from /proc/self/mountinfo. */
export async function mountEntries(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile("/proc/self/mountinfo", "utf8"));
}

export async function mountEntry(target: string): Promise<MountEntry | undefined> {
  return (await mountEntries()).find((e) => e.mountPoint === target);
}

/** True as soon as `check` is, or its last answer after `ms`. */
export async function eventually(check: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}
