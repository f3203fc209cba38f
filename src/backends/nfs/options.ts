/**
 * The pure half of the nfs backend: options -> typed spec (allow-list, aliases, strict server,
 * export and path values; mount options in mount-options.ts), the connection key and the
 * description. The mount argv is built in argv.ts. Nothing here touches the machine.
 *
 * Options: `server`, `export` (absolute), `path` (the volume's directory in the export, default
 * the export itself), `vers` (3, 4, 4.0, 4.1, 4.2; default 4), `nfs_opts` (allow-listed), `ro`,
 * `create`. Aliases: the `local` driver's `type=nfs|nfs4`, `o=addr=HOST,...` (addr is the server,
 * nfsvers/vers the version, ro/rw the session's mode, the rest goes through the nfs_opts
 * allow-list) and `device=[HOST]:/export`; netshare's `share=HOST:/export`. A device or share path
 * is the export as given (the local driver mounts it whole); `path` still picks a directory in it.
 *
 * Default vers=4: mount.nfs then negotiates the newest minor version both sides speak (4.2 with a
 * Linux server), over one TCP port (2049) that the reachability check covers. Without `vers`,
 * mount.nfs would fall back to NFSv3 silently, which needs rpcbind, mountd and statd/lockd ports
 * and locks differently: v3 is opt-in.
 */
import { invalid } from "../../errors.ts";
import type { Options } from "../backend.ts";
import { COMMON_OPTIONS, checkAllowed, hostForUrl, parseBool, parseHost } from "../options.ts";
import { type MountItem, mountItems, sessionOptions } from "./mount-options.ts";

type NfsVersion = "3" | "4" | "4.0" | "4.1" | "4.2";

export interface NfsSpec {
  /** Host name or IP address (IPv6 without brackets). */
  readonly server: string;
  /** Absolute path of the export on the server, normalized. */
  readonly export: string;
  /** The volume's directory inside the export, relative; "" is the export itself. */
  readonly path: string;
  readonly vers: NfsVersion;
  /** Allow-listed mount options, sorted; includes `ro` when `o=` asked for a read-only session. */
  readonly opts: readonly string[];
  readonly create: boolean;
}

const VERSIONS: readonly NfsVersion[] = ["3", "4", "4.0", "4.1", "4.2"];

export const NFS_OPTIONS: readonly string[] = [
  ...COMMON_OPTIONS,
  "server",
  "export",
  "path",
  "vers",
  "nfs_opts",
  "type",
  "o",
  "device",
  "share",
];

const NO_OWNERSHIP =
  "the kernel NFS client has no uid/gid/umask mount options: ownership and modes come from the server (see all_squash, anonuid, anongid on the export)";

/**
 * Common options refused, and why: NFS with sec=sys has no login (the server decides by this
 * host's address), and the kernel client has no ownership options.
 */
const REFUSED: Readonly<Record<string, string>> = {
  credentials:
    "NFS (sec=sys) has no login: the server decides access by this host's address in its exports; remove credentials",
  uid: NO_OWNERSHIP,
  gid: NO_OWNERSHIP,
  umask: NO_OWNERSHIP,
  allow_other: "allow_other is a FUSE option: kernel NFS mounts are visible to every user already",
};

/** Characters refused in server paths: they would be ambiguous in a mount source or in mountinfo. */
const BAD_PATH_CHARS = /[\s,\\\p{Cc}]/u;

/** mount.nfs resolves strict DNS names; the name is compared (and keyed) in lower case. */
const parseServer = (value: string, from: string) => parseHost(value, from, "dns").toLowerCase();

function pathSegments(value: string, from: string): string[] {
  if (BAD_PATH_CHARS.test(value)) {
    throw invalid(`${from}="${value}" must not contain spaces, commas, backslashes or control characters`);
  }
  const segments = value.split("/").filter((s) => s !== "");
  if (segments.some((s) => s === "." || s === "..")) {
    throw invalid(`${from}="${value}" must not contain . or .. components`);
  }
  return segments;
}

function parseExport(value: string, from: string): string {
  if (!value.startsWith("/")) {
    throw invalid(`${from}="${value}" must be an absolute path on the server, like /exports/app`);
  }
  return `/${pathSegments(value, from).join("/")}`;
}

function parseVers(value: string, from: string): NfsVersion {
  const found = VERSIONS.find((v) => v === value);
  if (found === undefined)
    throw invalid(`${from}="${value}" is not an NFS version: use ${VERSIONS.join(", ")}`);
  return found;
}

function parseType(value: string | undefined): "nfs" | "nfs4" | undefined {
  if (value === undefined || value === "nfs" || value === "nfs4") return value;
  throw invalid(`type="${value}" is not NFS: backend nfs takes type=nfs or type=nfs4`);
}

/** `host:/path` (share) or `[host]:/path`, `:/path` (device). */
function splitRemote(value: string, from: string, hostRequired: boolean): { host?: string; path: string } {
  const m = /^(\[[^\]]*\]|[^:[\]/]*):(\/.*)$/.exec(value);
  if (m === null || (hostRequired && m[1] === "")) {
    const form = hostRequired ? "HOST:/export" : "[HOST]:/export";
    throw invalid(`${from}="${value}" must look like ${form}`);
  }
  const host = m[1] ?? "";
  return {
    ...(host !== "" && { host: parseServer(host, `${from} host`) }),
    path: parseExport(m[2] ?? "", from),
  };
}

/** One value from several places (server=, o=addr=, share=): all given must agree. */
class OneOf<T> {
  private value: T | undefined;
  private from = "";
  constructor(private readonly what: string) {}
  set(value: T | undefined, from: string): void {
    if (value === undefined) return;
    if (this.value !== undefined && this.value !== value) {
      throw invalid(`conflicting ${this.what}: ${this.from} says ${this.value}, ${from} says ${value}`);
    }
    this.value = value;
    this.from = from;
  }
  get(): T | undefined {
    return this.value;
  }
}

/** Where the volume lives, from every option that names a part of it: all given must agree. */
class Location {
  readonly server = new OneOf<string>("NFS servers");
  readonly exportPath = new OneOf<string>("exports");
  readonly vers = new OneOf<NfsVersion>("NFS versions");
  private readonly type: "nfs" | "nfs4" | undefined;

  /** server=, export=, vers=, type=, then the device= and share= aliases; o= follows (readLocalO). */
  constructor(opts: Options) {
    if (opts.server !== undefined) this.server.set(parseServer(opts.server, "server"), "server");
    if (opts.export !== undefined) this.exportPath.set(parseExport(opts.export, "export"), "export");
    if (opts.vers !== undefined) this.vers.set(parseVers(opts.vers, "vers"), "vers");
    this.type = parseType(opts.type);
    for (const from of ["device", "share"] as const) {
      const value = opts[from];
      if (value === undefined) continue;
      const { host, path } = splitRemote(value, from, from === "share");
      this.server.set(host, from);
      this.exportPath.set(path, from);
    }
  }

  /** Once every option had its say: server and export are needed, the version defaults to 4. */
  settle(): Pick<NfsSpec, "server" | "export" | "vers"> {
    const server = this.server.get();
    if (server === undefined) {
      throw invalid(
        "backend nfs needs option server (the NFS server's host name or address), or share=HOST:/export, or o=addr=HOST with device=:/export",
      );
    }
    const exp = this.exportPath.get();
    if (exp === undefined) {
      throw invalid("backend nfs needs option export (the exported path on the server, like /exports/app)");
    }
    const vers = this.vers.get();
    if (this.type === "nfs4" && vers === "3") throw invalid("type=nfs4 conflicts with NFS version 3");
    return { server, export: exp, vers: vers ?? "4" };
  }
}

/** The local driver's o=: addr is the server, nfsvers/vers the version, ro/rw the session's mode. */
function readLocalO(o: string, at: Location): { readOnly: boolean; items: MountItem[] } {
  const items: MountItem[] = [];
  let sessionMode: "ro" | "rw" | undefined;
  for (const { item } of mountItems(o, "o")) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (key === "addr" && eq > 0) at.server.set(parseServer(value, "o addr"), "o addr");
    else if ((key === "nfsvers" || key === "vers") && eq > 0)
      at.vers.set(parseVers(value, `o ${key}`), `o ${key}`);
    else if (item === "ro" || item === "rw") {
      if (sessionMode !== undefined && sessionMode !== item)
        throw invalid(`o gives both ro and rw: pick one`);
      sessionMode = item;
    } else items.push({ from: "o", item });
  }
  return { readOnly: sessionMode === "ro", items };
}

export function parseNfs(opts: Options): NfsSpec {
  checkAllowed("nfs", opts, NFS_OPTIONS);
  for (const [name, why] of Object.entries(REFUSED)) {
    if (opts[name] !== undefined) throw invalid(`option ${name} is not supported by backend nfs: ${why}`);
  }
  parseBool("ro", opts.ro, false);
  const create = parseBool("create", opts.create, false);
  const at = new Location(opts);
  const local = readLocalO(opts.o ?? "", at);
  const items = [...local.items, ...mountItems(opts.nfs_opts, "nfs_opts")];
  const sessionOpts = sessionOptions(items, local.readOnly);
  const { server, export: exp, vers } = at.settle();
  const path = opts.path === undefined ? "" : pathSegments(opts.path, "path").join("/");
  return { server, export: exp, path, vers, opts: sessionOpts, create };
}

/** `server:/export`, the mount source. */
export function nfsSource(spec: NfsSpec): string {
  return `${hostForUrl(spec.server)}:${spec.export}`;
}

export function nfsConnectionKey(spec: NfsSpec): string {
  return JSON.stringify(["nfs", spec.server, spec.export, spec.vers, spec.opts]);
}

export function describeNfs(spec: NfsSpec): string {
  return `nfs://${hostForUrl(spec.server)}${spec.export}${spec.path === "" ? "" : `/${spec.path}`} (NFSv${spec.vers})`;
}
