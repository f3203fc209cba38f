/**
 * The pure half of the sshfs backend: options -> typed spec (allow-list, aliases,
 * strict host/user/path values), the connection key, and the sshfs argv.
 * Nothing here touches the machine.
 */
import { isIPv4, isIPv6 } from "node:net";
import { invalid, VolgateError } from "../errors.ts";
import {
  COMMON_OPTIONS,
  type CommonOptions,
  checkAllowed,
  fuseSessionOptions,
  type Options,
  parseBool,
  parseCommon,
  parseIntRange,
} from "./backend.ts";

interface SshfsTuning {
  readonly reconnect: boolean;
  readonly serverAliveInterval: number;
  readonly serverAliveCountMax: number;
  readonly compression: boolean;
  /** sshfs dir_cache; undefined keeps sshfs's default (on). */
  readonly cache?: boolean;
  /** Parallel SSH connections (sshfs max_conns); undefined = 1. Not with password logins. */
  readonly maxConns?: number;
}

export interface SshfsSpec {
  /** Hostname, IPv4, or IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** Remote directory as given: absolute, or relative to the login home ("" = home). */
  readonly path: string;
  /** Accepted host keys, each `type base64`, from the host_key option. */
  readonly hostKeys?: readonly string[];
  /** Inline secret (refused by the driver unless the operator allows inline secrets). */
  readonly password?: string;
  readonly common: CommonOptions;
  readonly tuning: SshfsTuning;
}

const TUNING = [
  "reconnect",
  "ServerAliveInterval",
  "ServerAliveCountMax",
  "compression",
  "cache",
  "max_conns",
];
export const SSHFS_OPTIONS: readonly string[] = [
  ...COMMON_OPTIONS,
  "host",
  "port",
  "user",
  "path",
  "sshcmd",
  "host_key",
  "password",
  ...TUNING,
];

/** Options people try that would hand a volume this host's commands, files or trust: refused by name. */
const RUNS = "it runs a command on this host";
const FILES = "it reads or writes files on this host";
const OURS = "volgate sets it itself (host keys are always verified; secrets go through credentials)";
const REFUSED = new Map<string, string>(
  Object.entries({
    ssh_command: RUNS,
    ProxyCommand: RUNS,
    ProxyJump: RUNS,
    LocalCommand: RUNS,
    PermitLocalCommand: RUNS,
    KnownHostsCommand: RUNS,
    sftp_server: RUNS,
    PKCS11Provider: FILES,
    SecurityKeyProvider: FILES,
    F: FILES,
    IdentityFile: FILES,
    IdentityAgent: FILES,
    CertificateFile: FILES,
    UserKnownHostsFile: FILES,
    GlobalKnownHostsFile: FILES,
    ControlPath: FILES,
    ControlMaster: FILES,
    uidfile: FILES,
    gidfile: FILES,
    modules: FILES,
    subdir: FILES,
    directport: OURS,
    passive: OURS,
    password_stdin: OURS,
    StrictHostKeyChecking: OURS,
  }).map(([k, why]) => [k.toLowerCase(), why]),
);

const HOST_LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const HOSTNAME_RE = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
];

/** A host value: hostname, IPv4, IPv6 bare or in brackets. Returns it without brackets. */
function parseHost(value: string, option = "host"): string {
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (isIPv6(bare) && /^[0-9A-Fa-f:.]+$/.test(bare)) return bare;
  const dotted = /^[0-9.]+$/.test(bare);
  if (bare === value && bare.length <= 253 && (dotted ? isIPv4(bare) : HOSTNAME_RE.test(bare))) return bare;
  throw invalid(
    `${option}="${value}" is not a host name, IPv4 address or [IPv6] address: use letters, digits, - _ . only (no leading -)`,
  );
}

function parseUser(value: string, option = "user"): string {
  if (!USER_RE.test(value)) {
    throw invalid(`${option}="${value}" is not a valid user name: use letters, digits, _ . - (no leading -)`);
  }
  return value;
}

function parsePath(value: string): string {
  if (/[\0\n\r,]/.test(value) || value.length > 4096) {
    throw invalid(
      `path="${value}" must not contain commas, newlines or NUL: pick a simpler remote directory`,
    );
  }
  return value;
}

/** `user@host:path`, `user@[v6]:path`; path may be empty (the login home). */
function parseSshcmd(value: string): { user: string; host: string; path: string } {
  const m = /^([^@]*)@(\[[^\]]*\]|[^:@[\]]*):(.*)$/s.exec(value);
  if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) {
    throw invalid(
      `sshcmd="${value}" must look like user@host:path (path may be empty for the home directory)`,
    );
  }
  return {
    user: parseUser(m[1], "sshcmd user"),
    host: parseHost(m[2], "sshcmd host"),
    path: parsePath(m[3]),
  };
}

/**
 * host_key: one or more public key lines, `type base64 [comment]`, optionally prefixed by a
 * host pattern as ssh-keyscan prints them; `#` lines are skipped. Returns `type base64` each.
 */
function parseHostKeys(value: string): string[] {
  const keys: string[] = [];
  for (const raw of value.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    const at = fields.findIndex((f) => KEY_TYPES.includes(f));
    const type = fields[at];
    const blob = fields[at + 1];
    if (at < 0 || at > 1 || type === undefined || blob === undefined || !keyBlobMatches(type, blob)) {
      throw invalid(
        `host_key must be a public host key line like "ssh-ed25519 AAAA...": get it with ssh-keyscan -t ed25519 -p PORT HOST and check its fingerprint`,
      );
    }
    keys.push(`${type} ${blob}`);
  }
  if (keys.length === 0) throw invalid(`host_key is empty: pass a line like "ssh-ed25519 AAAA..."`);
  return keys;
}

/** The base64 blob decodes and starts with its own type name, as every SSH public key does. */
function keyBlobMatches(type: string, b64: string): boolean {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const blob = Buffer.from(b64, "base64");
  if (blob.length < 4) return false;
  const len = blob.readUInt32BE(0);
  return len === type.length && blob.subarray(4, 4 + len).toString("latin1") === type;
}

export function parseSshfs(opts: Options): SshfsSpec {
  for (const key of Object.keys(opts)) {
    const why = key.startsWith("-") ? "command-line flags cannot be passed" : REFUSED.get(key.toLowerCase());
    if (why !== undefined) {
      throw invalid(`option "${key}" is refused: ${why}; allowed: ${[...SSHFS_OPTIONS].sort().join(", ")}`);
    }
  }
  checkAllowed("sshfs", opts, SSHFS_OPTIONS);
  let host: string;
  let user: string;
  let path: string;
  if (opts.sshcmd !== undefined) {
    const clash = ["host", "user", "path"].filter((k) => opts[k] !== undefined);
    if (clash.length > 0) {
      throw invalid(
        `sshcmd cannot be combined with ${clash.join(", ")}: use either sshcmd=user@host:path or host=, user=, path=`,
      );
    }
    ({ host, user, path } = parseSshcmd(opts.sshcmd));
  } else {
    const need = ["host", "user"].filter((k) => !opts[k]);
    if (need.length > 0) {
      throw invalid(`backend sshfs needs option ${need.join(" and ")} (or sshcmd=user@host:path)`);
    }
    host = parseHost(opts.host ?? "");
    user = parseUser(opts.user ?? "");
    path = parsePath(opts.path ?? "");
  }
  const max = opts.max_conns;
  const cache = opts.cache;
  return {
    host,
    port: opts.port === undefined ? 22 : parseIntRange("port", opts.port, 1, 65535),
    user,
    path,
    ...(opts.host_key !== undefined && { hostKeys: parseHostKeys(opts.host_key) }),
    ...(opts.password !== undefined && { password: opts.password }),
    common: parseCommon(opts),
    tuning: {
      reconnect: parseBool("reconnect", opts.reconnect, true),
      serverAliveInterval:
        opts.ServerAliveInterval === undefined
          ? 15
          : parseIntRange("ServerAliveInterval", opts.ServerAliveInterval, 0, 3600),
      serverAliveCountMax:
        opts.ServerAliveCountMax === undefined
          ? 3
          : parseIntRange("ServerAliveCountMax", opts.ServerAliveCountMax, 1, 100),
      compression: parseBool("compression", opts.compression, false),
      ...(cache !== undefined && { cache: parseBool("cache", cache, true) }),
      ...(max !== undefined && { maxConns: parseIntRange("max_conns", max, 1, 16) }),
    },
  };
}

/** IPv6 addresses in brackets, as ssh and known_hosts want them. */
export function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/** The name a known_hosts line uses for this endpoint. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Everything that shapes the session; never the path, ro, or a secret (only whether one is inline). */
export function sshfsConnectionKey(spec: SshfsSpec): string {
  const c = spec.common;
  return JSON.stringify({
    backend: "sshfs",
    host: spec.host.toLowerCase(),
    port: spec.port,
    user: spec.user,
    credentials: c.credentials ?? null,
    hostKeys: spec.hostKeys ?? null,
    inlinePassword: spec.password !== undefined,
    uid: c.uid ?? null,
    gid: c.gid ?? null,
    umask: c.umask ?? null,
    allowOther: c.allowOther,
    tuning: spec.tuning,
  });
}

export function describeSshfs(spec: SshfsSpec): string {
  return `${spec.user}@${hostForUrl(spec.host)}:${spec.port}:${spec.path || "~"}`;
}

type SshfsAuth = { readonly kind: "key"; readonly identityFile: string } | { readonly kind: "password" };

export interface SshfsArgvInput {
  readonly spec: SshfsSpec;
  readonly target: string;
  readonly auth: SshfsAuth;
  /** The known_hosts file ssh checks; ignored when host keys are not verified. */
  readonly knownHostsFile?: string;
  readonly verifyHostKeys: boolean;
}

/** ssh's TCP + banner timeout, also for reconnects; the mount deadline is enforced by the supervisor. */
const CONNECT_TIMEOUT_S = 10;

/** A file path inside a -o value: no commas (option separator) and no whitespace or quotes (ssh splits them). */
function optionPath(path: string): string {
  if (!/^\/[^,\s"'\\]*$/.test(path)) {
    throw new VolgateError(
      "internal",
      `path ${path} cannot be passed to sshfs: it has a comma, space or quote`,
    );
  }
  return path;
}

/** `sshfs -f user@host:/ TARGET -F /dev/null -o ...`: the whole remote root; secrets never appear here. */
export function buildSshfsArgv(input: SshfsArgvInput): string[] {
  const { spec, auth, verifyHostKeys } = input;
  const t = spec.tuning;
  // idmap=user: the login's files show as root's here, so dockerd (root) can chown them on copy-up and docker cp.
  const o = [...fuseSessionOptions(spec.common), "idmap=user"];
  if (t.reconnect) o.push("reconnect");
  if (t.cache !== undefined) o.push(`dir_cache=${t.cache ? "yes" : "no"}`);
  if (t.maxConns !== undefined) {
    if (auth.kind === "password" && t.maxConns > 1) {
      throw invalid(
        "max_conns above 1 needs key authentication: sshfs sends a password to one connection only",
      );
    }
    o.push(`max_conns=${t.maxConns}`);
  }
  o.push(`ServerAliveInterval=${t.serverAliveInterval}`, `ServerAliveCountMax=${t.serverAliveCountMax}`);
  if (t.compression) o.push("Compression=yes");
  if (verifyHostKeys) {
    if (input.knownHostsFile === undefined) {
      throw new VolgateError("internal", "no known_hosts file for a verified sshfs mount");
    }
    o.push("StrictHostKeyChecking=yes", `UserKnownHostsFile=${optionPath(input.knownHostsFile)}`);
  } else {
    o.push("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null");
  }
  o.push("GlobalKnownHostsFile=/dev/null", "CheckHostIP=no", "UpdateHostKeys=no", `Port=${spec.port}`);
  if (auth.kind === "key") {
    o.push(
      `IdentityFile=${optionPath(auth.identityFile)}`,
      "IdentitiesOnly=yes",
      "PreferredAuthentications=publickey",
      "PasswordAuthentication=no",
      "KbdInteractiveAuthentication=no",
      "BatchMode=yes",
    );
  } else {
    // The comma inside a value is escaped for FUSE's option parser; ssh receives it unescaped.
    o.push(
      "password_stdin",
      "PubkeyAuthentication=no",
      "PreferredAuthentications=password\\,keyboard-interactive",
      "NumberOfPasswordPrompts=1",
    );
  }
  o.push(`ConnectTimeout=${CONNECT_TIMEOUT_S}`);
  const remote = `${spec.user}@${hostForUrl(spec.host)}:/`;
  return ["-f", remote, input.target, "-F", "/dev/null", "-o", o.join(",")];
}
