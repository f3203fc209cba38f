/**
 * The mount options a volume may ask for, in nfs_opts or the local driver's o=: only the FLAGS and
 * VALUES below (caching, timeouts, transfer sizes, locking, transport, ports); anything that changes
 * suid/dev/exec, SELinux contexts, FS-Cache, bg, addresses or security flavours other than sys is
 * refused, naming what is allowed. Every mount gets ALWAYS_OPTIONS besides (argv.ts). And the
 * ports the options make mount.nfs use, for the reachability check (preflight.ts).
 */
import { invalid, shown } from "../../errors.ts";
import { parseIntRange } from "../options.ts";

/** Flags, each in a family of which at most one may be given (hard vs soft, ...). */
const FLAGS: Readonly<Record<string, string>> = {
  hard: "hard",
  soft: "hard",
  ac: "ac",
  noac: "ac",
  cto: "cto",
  nocto: "cto",
  lock: "lock",
  nolock: "lock",
  sync: "sync",
  async: "sync",
  rdirplus: "rdirplus",
  nordirplus: "rdirplus",
  resvport: "resvport",
  noresvport: "resvport",
  sharecache: "sharecache",
  nosharecache: "sharecache",
  noatime: "atime",
  relatime: "atime",
  nodiratime: "nodiratime",
  noexec: "noexec",
};

type ValueRule = { readonly min: number; readonly max: number } | { readonly oneOf: readonly string[] };

const range = (min: number, max: number): ValueRule => ({ min, max });
const PORT = range(1, 65535);
const SIZE = range(1024, 1048576);
/** Attribute cache lifetimes, in seconds. */
const CACHE_SECONDS = range(0, 3600);

const VALUES: Readonly<Record<string, ValueRule>> = {
  timeo: range(1, 6000),
  retrans: range(0, 10),
  retry: range(0, 10),
  rsize: SIZE,
  wsize: SIZE,
  actimeo: CACHE_SECONDS,
  acregmin: CACHE_SECONDS,
  acregmax: CACHE_SECONDS,
  acdirmin: CACHE_SECONDS,
  acdirmax: CACHE_SECONDS,
  nconnect: range(1, 16),
  port: PORT,
  mountport: PORT,
  proto: { oneOf: ["tcp", "tcp6"] },
  mountproto: { oneOf: ["tcp", "udp", "tcp6", "udp6"] },
  lookupcache: { oneOf: ["all", "none", "pos", "positive"] },
  local_lock: { oneOf: ["none", "all", "flock", "posix"] },
  sec: { oneOf: ["sys"] },
};

/** Always applied: accepted in nfs_opts and dropped. */
export const ALWAYS_OPTIONS: readonly string[] = ["nosuid", "nodev"];

const ALWAYS_NOSUID = "NFS volumes are always mounted nosuid,nodev";
const VERSION_OPTION = "use -o vers=3|4|4.0|4.1|4.2";
const SELINUX = "SELinux labels cannot be set per volume";

/** Why common mount options are refused, for the error message. */
const WHY_NOT: Readonly<Record<string, string>> = {
  suid: ALWAYS_NOSUID,
  dev: ALWAYS_NOSUID,
  exec: "exec is the default; only noexec may be given",
  ro: "use -o ro=true",
  rw: "volumes are read-write unless -o ro=true",
  vers: VERSION_OPTION,
  nfsvers: VERSION_OPTION,
  minorversion: "use -o vers=4.0|4.1|4.2",
  addr: "use -o server=HOST",
  bg: "volgate mounts in the foreground and waits for the mount",
  fg: "volgate always mounts in the foreground",
  fsc: "FS-Cache keeps a local cache volgate does not manage",
  context: SELINUX,
  fscontext: SELINUX,
  defcontext: SELINUX,
  rootcontext: SELINUX,
  sec: "only sec=sys is supported: Kerberos needs keytabs volgate does not manage",
};

const ALLOWED_ITEMS = [
  ...Object.keys(FLAGS),
  ...Object.entries(VALUES).map(([k, r]) => ("oneOf" in r ? `${k}=${r.oneOf.join("|")}` : `${k}=N`)),
].sort();

/** One mount option as given, and the volume option it came in (o or nfs_opts). */
export interface MountItem {
  readonly from: string;
  readonly item: string;
}

/** The items of a comma-separated option list, empty ones skipped. */
export function mountItems(list: string | undefined, from: string): MountItem[] {
  return (list ?? "")
    .split(",")
    .filter((item) => item !== "")
    .map((item) => ({ from, item }));
}

/** A table's own entry: `valueOf` or `constructor` must not find what every object inherits. */
const entry = <T>(table: Readonly<Record<string, T>>, key: string): T | undefined =>
  Object.hasOwn(table, key) ? table[key] : undefined;

/** Check one mount option against the allow-list; returns it normalized, or undefined to drop it. */
function checkItem({ item, from }: MountItem): { family: string; item: string } | undefined {
  const eq = item.indexOf("=");
  const key = eq < 0 ? item : item.slice(0, eq);
  const value = eq < 0 ? undefined : item.slice(eq + 1);
  if (value === undefined && ALWAYS_OPTIONS.includes(key)) return undefined;
  const why = entry(WHY_NOT, key);
  const family = entry(FLAGS, key);
  if (family !== undefined) {
    if (value !== undefined) throw invalid(`${from} item "${shown(item)}" takes no value: use ${key}`);
    return { family, item };
  }
  const rule = entry(VALUES, key);
  if (rule !== undefined) {
    if (value === undefined) throw invalid(`${from} item "${key}" needs a value (${key}=...)`);
    if ("min" in rule) {
      return { family: key, item: `${key}=${parseIntRange(`${from} ${key}`, value, rule.min, rule.max)}` };
    }
    if (rule.oneOf.includes(value)) return { family: key, item };
    throw invalid(
      `${from} item ${key}="${shown(value)}" is not allowed: use ${rule.oneOf.join(" or ")}${why ? ` (${why})` : ""}`,
    );
  }
  throw invalid(
    `${from} item "${shown(item)}" is not allowed${why ? ` (${why})` : ""}; allowed: ${ALLOWED_ITEMS.join(", ")}`,
  );
}

/** The session's mount options, sorted: `ro` when asked, then every item allowed, one per family. */
export function sessionOptions(items: readonly MountItem[], readOnly: boolean): string[] {
  const families = new Map<string, string>();
  const out = readOnly ? ["ro"] : [];
  for (const given of items) {
    const checked = checkItem(given);
    if (checked === undefined) continue;
    const before = families.get(checked.family);
    if (before !== undefined) {
      if (before === checked.item) continue;
      throw invalid(`mount options "${before}" and "${checked.item}" conflict: give one`);
    }
    families.set(checked.family, checked.item);
    out.push(checked.item);
  }
  return out.sort();
}

const NFS_PORT = 2049;
const RPCBIND_PORT = 111;

/** The number an allow-listed `key=N` item in `opts` gives, if any. */
function numberOf(opts: readonly string[], key: string): number | undefined {
  const item = opts.find((o) => o.startsWith(`${key}=`));
  return item === undefined ? undefined : Number(item.slice(key.length + 1));
}

/** Ports the mount needs open: NFS (port= or 2049), and rpcbind for v3 unless both ports are fixed. */
export function serverPorts(vers: string, opts: readonly string[]): { port: number; role: string }[] {
  const port = numberOf(opts, "port");
  const out = [{ port: port ?? NFS_PORT, role: "NFS" }];
  if (vers === "3" && (port === undefined || numberOf(opts, "mountport") === undefined)) {
    out.push({ port: RPCBIND_PORT, role: "rpcbind, needed for NFSv3" });
  }
  return out;
}
