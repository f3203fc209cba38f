/**
 * The pure half of the nfs backend: options -> typed spec (allow-list, refused common options;
 * server, export, version and their aliases in location.ts, mount options in mount-options.ts),
 * the connection key and the description. The mount argv is built in argv.ts. Nothing here
 * touches the machine.
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
import type { Options, Spec } from "../backend.ts";
import { COMMON_OPTIONS, checkAllowed, hostForUrl, parseBool, parseReadOnly } from "../options.ts";
import { Location, type NfsVersion, pathSegments, readLocalO } from "./location.ts";
import { mountItems, sessionOptions } from "./mount-options.ts";

export interface NfsSpec extends Spec {
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

const NFS_OPTIONS: readonly string[] = [
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

export function parseNfs(opts: Options): NfsSpec {
  checkAllowed("nfs", opts, NFS_OPTIONS);
  for (const [name, why] of Object.entries(REFUSED)) {
    if (opts[name] !== undefined) throw invalid(`option ${name} is not supported by backend nfs: ${why}`);
  }
  const readOnly = parseReadOnly(opts);
  const create = parseBool("create", opts.create, false);
  const at = new Location(opts);
  const local = readLocalO(opts.o ?? "", at);
  const items = [...local.items, ...mountItems(opts.nfs_opts, "nfs_opts")];
  const sessionOpts = sessionOptions(items, local.readOnly);
  const { server, export: exp, vers } = at.settle();
  const path = opts.path === undefined ? "" : pathSegments(opts.path, "path").join("/");
  return { server, export: exp, path, vers, opts: sessionOpts, readOnly, create };
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
