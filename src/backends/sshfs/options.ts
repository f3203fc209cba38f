/**
 * The pure half of the sshfs backend: options -> typed spec (allow-list, aliases,
 * strict host/user/path values), the connection key and the description. The argv
 * is built in argv.ts. Nothing here touches the machine.
 */
import { invalid, shown } from "../../errors.ts";
import type { Options, Spec } from "../backend.ts";
import {
  COMMON_OPTIONS,
  type CommonOptions,
  checkAllowed,
  checkRefused,
  commonSessionKey,
  hostForUrl,
  parseBool,
  parseCommon,
  parseHost,
  parseIntRange,
  parseReadOnly,
  refusedByName,
} from "../options.ts";
import { parseHostKeys } from "./known-hosts.ts";
import { parseCiphers } from "./session.ts";

interface SshfsTuning {
  readonly reconnect: boolean;
  readonly serverAliveInterval: number;
  readonly serverAliveCountMax: number;
  readonly compression: boolean;
  /** sshfs dir_cache; undefined keeps sshfs's default (on). */
  readonly cache?: boolean;
  /** Parallel SSH connections (sshfs max_conns); undefined: the default (session.ts). Not with password logins. */
  readonly maxConns?: number;
  /** ssh ciphers, preferred first; undefined: the default (session.ts). */
  readonly ciphers?: readonly string[];
}

export interface SshfsSpec extends Spec {
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
  "ciphers",
];
const SSHFS_OPTIONS: readonly string[] = [
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

const SSH_RUNS = "it runs a command on this host";
const SSH_FILES = "it reads or writes files on this host";
const SSH_OURS =
  "volgate sets it itself (it verifies host keys unless the operator set VOLGATE_VERIFY_HOST_KEYS=false; secrets go through credentials)";

/** sshfs and ssh options that would run commands, touch files or undo what volgate sets. */
const SSHFS_REFUSED = refusedByName({
  ssh_command: SSH_RUNS,
  ProxyCommand: SSH_RUNS,
  ProxyJump: SSH_RUNS,
  LocalCommand: SSH_RUNS,
  PermitLocalCommand: SSH_RUNS,
  KnownHostsCommand: SSH_RUNS,
  sftp_server: SSH_RUNS,
  PKCS11Provider: SSH_FILES,
  SecurityKeyProvider: SSH_FILES,
  F: SSH_FILES,
  IdentityFile: SSH_FILES,
  IdentityAgent: SSH_FILES,
  CertificateFile: SSH_FILES,
  UserKnownHostsFile: SSH_FILES,
  GlobalKnownHostsFile: SSH_FILES,
  ControlPath: SSH_FILES,
  ControlMaster: SSH_FILES,
  uidfile: SSH_FILES,
  gidfile: SSH_FILES,
  modules: SSH_FILES,
  subdir: SSH_FILES,
  directport: SSH_OURS,
  passive: SSH_OURS,
  password_stdin: SSH_OURS,
  StrictHostKeyChecking: SSH_OURS,
});

const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

function parseUser(value: string, option = "user"): string {
  if (!USER_RE.test(value)) {
    throw invalid(
      `${option}="${shown(value)}" is not a valid user name: use letters, digits, _ . - (no leading -)`,
    );
  }
  return value;
}

function parsePath(value: string): string {
  if (/[\0\n\r,]/.test(value) || value.length > 4096) {
    throw invalid(
      `path="${shown(value)}" must not contain commas, newlines or NUL: pick a simpler remote directory`,
    );
  }
  return value;
}

/** `user@host:path`, `user@[v6]:path`; path may be empty (the login home). */
function parseSshcmd(value: string): { user: string; host: string; path: string } {
  const m = /^([^@]*)@(\[[^\]]*\]|[^:@[\]]*):(.*)$/s.exec(value);
  if (!m || m[1] === undefined || m[2] === undefined || m[3] === undefined) {
    throw invalid(
      `sshcmd="${shown(value)}" must look like user@host:path (path may be empty for the home directory)`,
    );
  }
  return {
    user: parseUser(m[1], "sshcmd user"),
    host: parseHost(m[2], "sshcmd host"),
    path: parsePath(m[3]),
  };
}

export function parseSshfs(opts: Options): SshfsSpec {
  checkRefused(opts, SSHFS_REFUSED, SSHFS_OPTIONS);
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
    host = parseHost(opts.host ?? "", "host");
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
    readOnly: parseReadOnly(opts),
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
      ...(opts.ciphers !== undefined && { ciphers: parseCiphers(opts.ciphers) }),
    },
  };
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
    ...commonSessionKey(c),
    tuning: spec.tuning,
  });
}

export function describeSshfs(spec: SshfsSpec): string {
  return `${spec.user}@${hostForUrl(spec.host)}:${spec.port}:${spec.path || "~"}`;
}
