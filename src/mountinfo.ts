/**
 * The mount table: what is mounted where (/proc/self/mountinfo, which never touches a mounted file
 * system), and whether a mount answers. A hung FUSE or NFS mount blocks any call that reaches it, so
 * that question is asked by a child process (`stat -f`) that is killed at its deadline: it never
 * takes one of libuv's four pool threads, which every other file call of the daemon needs.
 */
import { readFile } from "node:fs/promises";
import type { CommandRunner } from "./command.ts";
import { Deadline } from "./deadline.ts";

export interface MountEntry {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  readonly options: string;
  /** The directory of the mounted file system that is this mount's root (a bind's source, inside it). */
  readonly root: string;
  /** major:minor of the mounted file system: a bind shares its source's. */
  readonly dev: string;
}

export type Liveness = "live" | "stale" | "absent";

/** What the seam offers about the mount table; faked in unit tests. */
export interface MountTable {
  entries(): Promise<MountEntry[]>;
  /** The top mount at `path`, if any. */
  find(path: string): Promise<MountEntry | undefined>;
  /** absent: nothing mounted there; stale: mounted but not answering (ENOTCONN, EIO, hung). */
  probe(path: string): Promise<Liveness>;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

function escapeOctal(path: string): string {
  return path.replace(/[ \t\n\\]/g, (ch) => `\\${ch.charCodeAt(0).toString(8).padStart(3, "0")}`);
}

function parseLine(line: string): MountEntry | undefined {
  const fields = line.split(" ");
  const dash = fields.indexOf("-");
  const mountPoint = fields[4];
  const fsType = fields[dash + 1];
  if (dash < 6 || mountPoint === undefined || fsType === undefined) return undefined;
  return {
    mountPoint: unescapeOctal(mountPoint),
    fsType,
    source: unescapeOctal(fields[dash + 2] ?? ""),
    options: fields[5] ?? "",
    root: unescapeOctal(fields[3] ?? ""),
    dev: fields[2] ?? "",
  };
}

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const entry = parseLine(line);
    if (entry) out.push(entry);
  }
  return out;
}

/**
 * The last (topmost) line mounted at `path`, found by text search: polling a mount with thousands
 * of others around must not parse all of them every time.
 */
export function findInMountInfo(text: string, path: string): MountEntry | undefined {
  const needle = ` ${escapeOctal(path)} `;
  for (let at = text.lastIndexOf(needle); at >= 0; at = text.lastIndexOf(needle, at - 1)) {
    const start = text.lastIndexOf("\n", at) + 1;
    const end = text.indexOf("\n", at);
    const entry = parseLine(text.slice(start, end < 0 ? undefined : end));
    if (entry?.mountPoint === path) return entry;
    if (at === 0) break;
  }
  return undefined;
}

/** How long the statfs child may take: a mount that does not answer by then is stale. */
const PROBE_TIMEOUT_MS = 2000;

export function systemMountTable(runner: CommandRunner, file = "/proc/self/mountinfo"): MountTable {
  const read = () => readFile(file, "utf8");
  /** One probe at a time per path: a hung mount must not collect a child per caller. */
  const inFlight = new Map<string, Promise<boolean>>();
  /**
   * Paths whose last probe was killed and has not left the kernel yet (a FUSE request the helper
   * already took waits for its answer): stale until it does, with no new child meanwhile, so a
   * frozen mount holds one stuck probe, not one per health check.
   */
  const stuck = new Set<string>();
  // statfs, not stat: a dead FUSE mount keeps answering stat from its attribute cache for a long time,
  // while statfs asks the file system and fails with ENOTCONN at once.
  const answers = (path: string): Promise<boolean> => {
    if (stuck.has(path)) return Promise.resolve(false);
    let probe = inFlight.get(path);
    if (!probe) {
      let gone = false;
      const onGone = () => {
        gone = true;
        stuck.delete(path);
      };
      probe = runner
        .run("stat", ["-f", "-c", "%t", "--", path], { deadline: Deadline.after(PROBE_TIMEOUT_MS), onGone })
        .then(
          (r) => r.code === 0,
          () => {
            if (!gone) stuck.add(path);
            return false;
          },
        )
        .finally(() => inFlight.delete(path));
      inFlight.set(path, probe);
    }
    return probe;
  };
  const find = async (path: string) => findInMountInfo(await read(), path);
  return {
    entries: async () => parseMountInfo(await read()),
    find,
    async probe(path) {
      if (!(await find(path))) return "absent";
      return (await answers(path)) ? "live" : "stale";
    },
  };
}
