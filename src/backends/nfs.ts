/**
 * The nfs backend: the kernel NFS client through `mount -t nfs` (mount.nfs), no shell.
 * A connection mounts the export root (`server:/export`) once per key (server, export,
 * version, mount options); each volume is a directory (`path`) inside it.
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
 *
 * nfs_opts takes only the FLAGS and VALUES below (caching, timeouts, transfer sizes, locking,
 * transport, ports); anything that changes suid/dev/exec, SELinux contexts, FS-Cache, bg,
 * addresses or security flavours other than sys is refused, naming what is allowed.
 * Every mount gets `nosuid,nodev`, and `retry=0` unless nfs_opts says otherwise (mount.nfs
 * otherwise retries a refused connection for 2 minutes; the mount deadline bounds everything).
 * credentials, uid, gid, umask and allow_other are refused: NFS with sec=sys has no login (the
 * server decides by this host's address), and the kernel client has no ownership options.
 *
 * Preflight resolves the server name, checks TCP to the NFS port (and rpcbind for v3), then mounts
 * the export in a private directory under the work dir to check that the export exists and holds
 * `path` (created with create=true, one component at a time, never through a symlink that leaves
 * the export), and unmounts it. That is the only way to get "export X does not exist on S" before
 * the first container starts; it costs one mount at create.
 */
import { lookup } from "node:dns/promises";
import { lstat, mkdir, mkdtemp, realpath, rmdir, stat } from "node:fs/promises";
import { isIPv4, isIPv6, Socket } from "node:net";
import { join } from "node:path";
import type { RunResult } from "../command.ts";
import { backendError, invalid, timeout, VolgateError } from "../errors.ts";
import { unmountPath } from "../mountops.ts";
import { within } from "../time.ts";
import {
  type Backend,
  type BackendContext,
  COMMON_OPTIONS,
  checkAllowed,
  type Deadline,
  type Options,
  parseBool,
  parseIntRange,
} from "./backend.ts";
import { checkTargetFree, lastLines, waitForMount } from "./supervise.ts";

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
const NFS_PORT = 2049;
const RPCBIND_PORT = 111;

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

/** Refused common options, and why. */
const REFUSED: Readonly<Record<string, string>> = {
  credentials:
    "NFS (sec=sys) has no login: the server decides access by this host's address in its exports; remove credentials",
  uid: NO_OWNERSHIP,
  gid: NO_OWNERSHIP,
  umask: NO_OWNERSHIP,
  allow_other: "allow_other is a FUSE option: kernel NFS mounts are visible to every user already",
};

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

const VALUES: Readonly<Record<string, ValueRule>> = {
  timeo: { min: 1, max: 6000 },
  retrans: { min: 0, max: 10 },
  retry: { min: 0, max: 10 },
  rsize: { min: 1024, max: 1048576 },
  wsize: { min: 1024, max: 1048576 },
  actimeo: { min: 0, max: 3600 },
  acregmin: { min: 0, max: 3600 },
  acregmax: { min: 0, max: 3600 },
  acdirmin: { min: 0, max: 3600 },
  acdirmax: { min: 0, max: 3600 },
  nconnect: { min: 1, max: 16 },
  port: { min: 1, max: 65535 },
  mountport: { min: 1, max: 65535 },
  proto: { oneOf: ["tcp", "tcp6"] },
  mountproto: { oneOf: ["tcp", "udp", "tcp6", "udp6"] },
  lookupcache: { oneOf: ["all", "none", "pos", "positive"] },
  local_lock: { oneOf: ["none", "all", "flock", "posix"] },
  sec: { oneOf: ["sys"] },
};

/** Always applied: accepted in nfs_opts and dropped. */
const ALWAYS = ["nosuid", "nodev"];

/** Why common mount options are refused, for the error message. */
const WHY_NOT: Readonly<Record<string, string>> = {
  suid: "NFS volumes are always mounted nosuid,nodev",
  dev: "NFS volumes are always mounted nosuid,nodev",
  exec: "exec is the default; only noexec may be given",
  ro: "use -o ro=true",
  rw: "volumes are read-write unless -o ro=true",
  vers: "use -o vers=3|4|4.0|4.1|4.2",
  nfsvers: "use -o vers=3|4|4.0|4.1|4.2",
  minorversion: "use -o vers=4.0|4.1|4.2",
  addr: "use -o server=HOST",
  bg: "volgate mounts in the foreground and waits for the mount",
  fg: "volgate always mounts in the foreground",
  fsc: "FS-Cache keeps a local cache volgate does not manage",
  context: "SELinux labels cannot be set per volume",
  fscontext: "SELinux labels cannot be set per volume",
  defcontext: "SELinux labels cannot be set per volume",
  rootcontext: "SELinux labels cannot be set per volume",
  sec: "only sec=sys is supported: Kerberos needs keytabs volgate does not manage",
};

const ALLOWED_ITEMS = [
  ...Object.keys(FLAGS),
  ...Object.entries(VALUES).map(([k, r]) => ("oneOf" in r ? `${k}=${r.oneOf.join("|")}` : `${k}=N`)),
].sort();

const HOST_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const HOSTNAME_RE = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*\\.?$`);
/** Characters refused in server paths: they would be ambiguous in a mount source or in mountinfo. */
const BAD_PATH_CHARS = /[\s,\\\p{Cc}]/u;

function parseServer(value: string, from: string): string {
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (isIPv6(bare) && /^[0-9A-Fa-f:.]+$/.test(bare)) return bare.toLowerCase();
  const dotted = /^[0-9.]+$/.test(bare);
  if (bare === value && bare.length <= 253 && (dotted ? isIPv4(bare) : HOSTNAME_RE.test(bare))) {
    return bare.toLowerCase();
  }
  throw invalid(
    `${from}="${value}" is not a host name, IPv4 address or [IPv6] address: use letters, digits, - . only (no leading -)`,
  );
}

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

/** Check one mount option against the allow-list; returns it normalized, or undefined to drop it. */
function checkItem(item: string, from: string): { family: string; item: string } | undefined {
  const eq = item.indexOf("=");
  const key = eq < 0 ? item : item.slice(0, eq);
  const value = eq < 0 ? undefined : item.slice(eq + 1);
  if (value === undefined && ALWAYS.includes(key)) return undefined;
  const why = WHY_NOT[key];
  const family = FLAGS[key];
  if (family !== undefined) {
    if (value !== undefined) throw invalid(`${from} item "${item}" takes no value: use ${key}`);
    return { family, item };
  }
  const rule = VALUES[key];
  if (rule !== undefined) {
    if (value === undefined) throw invalid(`${from} item "${key}" needs a value (${key}=...)`);
    if ("min" in rule) {
      return { family: key, item: `${key}=${parseIntRange(`${from} ${key}`, value, rule.min, rule.max)}` };
    }
    if (rule.oneOf.includes(value)) return { family: key, item };
    throw invalid(
      `${from} item ${key}="${value}" is not allowed: use ${rule.oneOf.join(" or ")}${why ? ` (${why})` : ""}`,
    );
  }
  throw invalid(
    `${from} item "${item}" is not allowed${why ? ` (${why})` : ""}; allowed: ${ALLOWED_ITEMS.join(", ")}`,
  );
}

function parseNfs(opts: Options): NfsSpec {
  checkAllowed("nfs", opts, NFS_OPTIONS);
  for (const [name, why] of Object.entries(REFUSED)) {
    if (opts[name] !== undefined) throw invalid(`option ${name} is not supported by backend nfs: ${why}`);
  }
  parseBool("ro", opts.ro, false);
  const create = parseBool("create", opts.create, false);

  const server = new OneOf<string>("NFS servers");
  const exportPath = new OneOf<string>("exports");
  const vers = new OneOf<NfsVersion>("NFS versions");
  if (opts.server !== undefined) server.set(parseServer(opts.server, "server"), `server`);
  if (opts.export !== undefined) exportPath.set(parseExport(opts.export, "export"), "export");
  if (opts.vers !== undefined) vers.set(parseVers(opts.vers, "vers"), "vers");

  let type: "nfs" | "nfs4" | undefined;
  if (opts.type !== undefined) {
    if (opts.type !== "nfs" && opts.type !== "nfs4") {
      throw invalid(`type="${opts.type}" is not NFS: backend nfs takes type=nfs or type=nfs4`);
    }
    type = opts.type;
  }
  if (opts.device !== undefined) {
    const { host, path } = splitRemote(opts.device, "device", false);
    server.set(host, "device");
    exportPath.set(path, "device");
  }
  if (opts.share !== undefined) {
    const { host, path } = splitRemote(opts.share, "share", true);
    server.set(host, "share");
    exportPath.set(path, "share");
  }

  const items: { from: string; item: string }[] = [];
  let sessionMode: "ro" | "rw" | undefined;
  for (const item of (opts.o ?? "").split(",")) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (key === "addr" && eq > 0) server.set(parseServer(value, "o addr"), "o addr");
    else if ((key === "nfsvers" || key === "vers") && eq > 0)
      vers.set(parseVers(value, `o ${key}`), `o ${key}`);
    else if (item === "ro" || item === "rw") {
      if (sessionMode !== undefined && sessionMode !== item)
        throw invalid(`o gives both ro and rw: pick one`);
      sessionMode = item;
    } else items.push({ from: "o", item });
  }
  for (const item of (opts.nfs_opts ?? "").split(","))
    if (item !== "") items.push({ from: "nfs_opts", item });

  const families = new Map<string, string>();
  const sessionOpts: string[] = sessionMode === "ro" ? ["ro"] : [];
  for (const { from, item } of items) {
    const checked = checkItem(item, from);
    if (checked === undefined) continue;
    const before = families.get(checked.family);
    if (before !== undefined) {
      if (before === checked.item) continue;
      throw invalid(`mount options "${before}" and "${checked.item}" conflict: give one`);
    }
    families.set(checked.family, checked.item);
    sessionOpts.push(checked.item);
  }

  const host = server.get();
  if (host === undefined) {
    throw invalid(
      "backend nfs needs option server (the NFS server's host name or address), or share=HOST:/export, or o=addr=HOST with device=:/export",
    );
  }
  const exp = exportPath.get();
  if (exp === undefined) {
    throw invalid("backend nfs needs option export (the exported path on the server, like /exports/app)");
  }
  let version = vers.get();
  if (type === "nfs4" && version === "3") throw invalid("type=nfs4 conflicts with NFS version 3");
  version ??= "4";
  const path = opts.path === undefined ? "" : pathSegments(opts.path, "path").join("/");
  return { server: host, export: exp, path, vers: version, opts: sessionOpts.sort(), create };
}

/** IPv6 addresses in brackets, as mount sources and URLs want them. */
function hostPart(server: string): string {
  return server.includes(":") ? `[${server}]` : server;
}

/** `server:/export`, the mount source. */
function nfsSource(spec: NfsSpec): string {
  return `${hostPart(spec.server)}:${spec.export}`;
}

export function nfsConnectionKey(spec: NfsSpec): string {
  return JSON.stringify(["nfs", spec.server, spec.export, spec.vers, spec.opts]);
}

export function describeNfs(spec: NfsSpec): string {
  return `nfs://${hostPart(spec.server)}${spec.export}${spec.path === "" ? "" : `/${spec.path}`} (NFSv${spec.vers})`;
}

/** The argv of `mount` for the connection: never a shell, options fixed by the allow-list. */
export function nfsMountArgs(spec: NfsSpec, target: string): string[] {
  const opts = [...ALWAYS, `vers=${spec.vers}`, ...spec.opts];
  if (!spec.opts.some((o) => o.startsWith("retry="))) opts.push("retry=0");
  return ["-t", "nfs", "-o", opts.join(","), "--", nfsSource(spec), target];
}

function optionValue(spec: NfsSpec, key: string): number | undefined {
  const item = spec.opts.find((o) => o.startsWith(`${key}=`));
  return item === undefined ? undefined : Number(item.slice(key.length + 1));
}

/** Ports the mount needs open: NFS (port= or 2049), and rpcbind for v3 unless both ports are fixed. */
export function nfsPorts(spec: NfsSpec): { port: number; role: string }[] {
  const port = optionValue(spec, "port");
  const out = [{ port: port ?? NFS_PORT, role: "NFS" }];
  if (spec.vers === "3" && (port === undefined || optionValue(spec, "mountport") === undefined)) {
    out.push({ port: RPCBIND_PORT, role: "rpcbind, needed for NFSv3" });
  }
  return out;
}

/** Milliseconds left, never below 1 so timers still fire. */
const left = (until: number) => Math.max(1, until - Date.now());

const cancelled = (what: string) => timeout(`${what} was cancelled: Docker aborted the request`);
const noAnswer = (what: string, deadline: Deadline) =>
  timeout(`${what}: no answer within ${Math.round(deadline.timeoutMs / 1000)}s`);

/** `work`'s value, or a timeout error at the deadline (the work itself cannot be cancelled: a hung NFS stat). */
async function settle<T>(work: Promise<T>, until: number, deadline: Deadline, what: string): Promise<T> {
  if (deadline.signal?.aborted) throw cancelled(what);
  const result = await within(work, left(until));
  if (result === "late") throw noAnswer(what, deadline);
  if (deadline.signal?.aborted) throw cancelled(what);
  return result;
}

/** One TCP connection to address:port, closed at once; the socket never outlives the deadline. */
function tcpConnect(address: string, port: number, until: number, deadline: Deadline, what: string) {
  return new Promise<void>((resolve, reject) => {
    const socket = new Socket();
    const done = (err?: Error) => {
      clearTimeout(timer);
      deadline.signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => done(cancelled(what));
    const timer = setTimeout(() => done(noAnswer(what, deadline)), left(until));
    if (deadline.signal?.aborted) return onAbort();
    deadline.signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => done());
    socket.once("error", (err) => done(backendError(`${what}: ${err.message}`, err)));
    socket.connect({ host: address, port });
  });
}

/** The server name resolves and its ports accept TCP connections, within the deadline. */
async function checkReachable(spec: NfsSpec, until: number, deadline: Deadline): Promise<void> {
  const naming = `cannot resolve NFS server name ${spec.server}`;
  const { address } = await settle(lookup(spec.server), until, deadline, naming).catch((err: unknown) => {
    if (err instanceof VolgateError) throw err;
    throw backendError(`${naming}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  });
  for (const { port, role } of nfsPorts(spec)) {
    const where = `${hostPart(spec.server)}:${port}${role === "NFS" ? "" : ` (${role})`}`;
    await tcpConnect(address, port, until, deadline, `cannot reach NFS server ${where}`);
  }
}

/** mount.nfs's words, with what they mean for this volume. */
function mountFailure(spec: NfsSpec, result: RunResult): VolgateError {
  const said = lastLines(`${result.stdout}\n${result.stderr}`) || `exit code ${result.code}`;
  const source = nfsSource(spec);
  if (/No such file or directory|access denied by server/.test(said)) {
    return backendError(
      `export ${spec.export} does not exist on ${spec.server} or is not exported to this host (${said})`,
    );
  }
  if (/Protocol not supported|version or transport protocol is not supported/.test(said)) {
    return backendError(`${spec.server} does not serve NFS version ${spec.vers} (${said}): set -o vers`);
  }
  if (/Connection refused/.test(said)) {
    return backendError(`NFS server ${spec.server} refused the connection (${said})`);
  }
  return backendError(`mounting ${source} failed: ${said}`);
}

/** Mount the export root at `target` and wait until mountinfo shows it live; nothing left on failure. */
async function mountExport(spec: NfsSpec, target: string, ctx: BackendContext, deadline: Deadline) {
  const until = Date.now() + deadline.timeoutMs;
  const what = `NFS mount of ${nfsSource(spec)}`;
  await checkTargetFree(ctx, target, what);
  await checkReachable(spec, until, deadline);
  let result: RunResult;
  try {
    result = await ctx.runner.run("mount", nfsMountArgs(spec, target), {
      timeoutMs: left(until),
      ...(deadline.signal && { signal: deadline.signal }),
    });
  } catch (err) {
    // Killed mid-mount: the kernel may still have finished it.
    await unmountPath(ctx, target).catch(() => {});
    if (deadline.signal?.aborted) throw cancelled(what);
    if (err instanceof VolgateError && err.kind === "timeout") {
      throw timeout(
        `${what} did not complete within ${Math.round(deadline.timeoutMs / 1000)}s (the server accepts TCP connections but did not finish the mount): check the NFS server, or raise VOLGATE_MOUNT_TIMEOUT`,
      );
    }
    throw err;
  }
  if (result.code !== 0) {
    await unmountPath(ctx, target).catch(() => {});
    throw mountFailure(spec, result);
  }
  try {
    await waitForMount(ctx, target, { timeoutMs: Math.max(1000, left(until)) }, what);
  } catch (err) {
    await unmountPath(ctx, target).catch(() => {});
    throw err;
  }
}

const inside = (path: string, root: string) => path === root || path.startsWith(`${root}/`);

/** Why mkdir failed, in the terms of an NFS export. */
function mkdirHint(code: string | undefined): string {
  if (code === "EACCES" || code === "EPERM")
    return " (the server squashes root, or the directory is not writable)";
  if (code === "EROFS") return " (the export is read-only)";
  return "";
}

/** Walk (and with create, make) the volume's directory inside the mounted export `root`. */
async function ensureDirectory(
  spec: NfsSpec,
  root: string,
  until: number,
  deadline: Deadline,
): Promise<void> {
  const where = `in export ${spec.export} on ${spec.server}`;
  const what = `checking "${spec.path}" ${where}`;
  /** One file system call within the deadline; errno errors become messages without local paths. */
  const step = <T>(
    work: Promise<T>,
    fail = (err: NodeJS.ErrnoException) => backendError(`${what}: ${err.code ?? err.message}`, err),
  ) =>
    settle(work, until, deadline, what).catch((err: NodeJS.ErrnoException) => {
      throw err instanceof VolgateError ? err : fail(err);
    });
  const unless = (code: string) => (err: NodeJS.ErrnoException) => {
    if (err.code !== code) throw err;
    return undefined;
  };
  const realRoot = await step(realpath(root));
  let current = realRoot;
  for (const segment of spec.path === "" ? [] : spec.path.split("/")) {
    const next = join(current, segment);
    const info = await step(lstat(next).catch(unless("ENOENT")));
    if (info === undefined) {
      if (!spec.create) {
        throw invalid(`directory "${spec.path}" does not exist ${where}: create it, or pass -o create=true`);
      }
      await step(mkdir(next, { mode: 0o755 }).catch(unless("EEXIST")), (err) =>
        backendError(
          `cannot create directory "${spec.path}" ${where}: ${err.code}${mkdirHint(err.code)}`,
          err,
        ),
      );
      current = next;
      continue;
    }
    if (info.isSymbolicLink()) {
      current = await step(realpath(next));
      if (!inside(current, realRoot)) {
        throw invalid(`"${spec.path}" ${where} leads outside the export through a symlink: refusing it`);
      }
    } else current = next;
    if (!(await step(stat(current))).isDirectory()) {
      throw invalid(`"${spec.path}" ${where} is not a directory`);
    }
  }
}

export const nfsBackend: Backend<NfsSpec> = {
  name: "nfs",
  options: NFS_OPTIONS,
  secretOptions: [],
  parse: parseNfs,
  connectionKey: nfsConnectionKey,
  describe: describeNfs,

  async preflight(spec, ctx, deadline) {
    const until = Date.now() + deadline.timeoutMs;
    const dir = await mkdtemp(join(ctx.workDir, "nfs-check-"));
    try {
      await mountExport(spec, dir, ctx, deadline);
      try {
        await ensureDirectory(spec, dir, until, deadline);
      } finally {
        await unmountPath(ctx, dir);
      }
    } finally {
      await rmdir(dir).catch(() => {});
    }
    return spec.path;
  },

  mount: mountExport,
};
