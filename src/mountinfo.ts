/** /proc/self/mountinfo parsing and liveness checks: is something really mounted and answering? */
import { readFile, statfs } from "node:fs/promises";
import { within } from "./time.ts";

export interface MountEntry {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
  readonly options: string;
}

export type Liveness = "live" | "stale" | "absent";

/** What the seam offers about the mount table; faked in unit tests. */
export interface MountTable {
  /** absent: nothing mounted there; stale: mounted but not answering (ENOTCONN, EIO, hung). */
  probe(path: string): Promise<Liveness>;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line.split(" ");
    const dash = fields.indexOf("-");
    const mountPoint = fields[4];
    const fsType = fields[dash + 1];
    if (dash < 6 || mountPoint === undefined || fsType === undefined) continue;
    out.push({
      mountPoint: unescapeOctal(mountPoint),
      fsType,
      source: unescapeOctal(fields[dash + 2] ?? ""),
      options: fields[5] ?? "",
    });
  }
  return out;
}

/** A stat on a hung FUSE mount can block forever: give up after this long and call it stale. */
const PROBE_TIMEOUT_MS = 2000;

async function answers(path: string): Promise<boolean> {
  // statfs, not stat: a dead FUSE mount keeps answering stat from its attribute cache for a long time,
  // while statfs asks the filesystem and fails with ENOTCONN at once.
  const check = statfs(path).then(
    () => true,
    () => false,
  );
  return (await within(check, PROBE_TIMEOUT_MS)) === true;
}

export function systemMountTable(file = "/proc/self/mountinfo"): MountTable {
  const entries = async () => parseMountInfo(await readFile(file, "utf8"));
  return {
    async probe(path) {
      const mounted = (await entries()).some((e) => e.mountPoint === path);
      if (!mounted) return "absent";
      return (await answers(path)) ? "live" : "stale";
    },
  };
}
