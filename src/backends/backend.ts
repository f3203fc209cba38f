/**
 * The backend interface and the option helpers every backend shares.
 * A backend is a folder, NAME/: index.ts holds its Backend object, options.ts, argv.ts and preflight.ts its parts:
 * parse (allow-list, typed values, aliases) and connectionKey are pure; preflight checks the
 * remote side at create; mount puts one connection at a target directory through the injected runner.
 */
import { createHash } from "node:crypto";
import type { CommandRunner } from "../command.ts";
import { invalid } from "../errors.ts";
import type { Logger } from "../logger.ts";
import type { MountTable } from "../mountinfo.ts";

export type Options = Readonly<Record<string, string>>;

/** Everything a backend may touch, injected. */
export interface BackendContext {
  readonly runner: CommandRunner;
  readonly mounts: MountTable;
  readonly log: Logger;
  readonly secretsDir: string;
  /** A private directory (0700) for files a backend writes: known_hosts, passwd files, helper logs. */
  readonly workDir: string;
  readonly verifyHostKeys: boolean;
}

export interface Deadline {
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

export interface Backend<S = unknown> {
  readonly name: string;
  /** Every option this backend accepts (common ones and aliases included), for error messages. */
  readonly options: readonly string[];
  /** Options that carry a secret inline: refused unless the operator allows inline secrets. */
  readonly secretOptions: readonly string[];
  /** Validate and type the options; throws `invalid` naming the bad option and what is allowed. */
  parse(opts: Options): S;
  /** Everything that shapes the session; volumes with equal keys share one backend mount. */
  connectionKey(spec: S): string;
  /** Where the data lives, for Status and logs; never a secret. */
  describe(spec: S): string;
  /** Check login, identity and the remote directory; returns the volume's directory inside the connection. */
  preflight(spec: S, ctx: BackendContext, deadline: Deadline): Promise<string>;
  /** Mount the connection at `target` (an existing empty directory); kill and roll back on deadline. */
  mount(spec: S, target: string, ctx: BackendContext, deadline: Deadline): Promise<void>;
}

/** Options every backend understands. `ro` is applied to the volume's bind mount, the rest to the session. */
export interface CommonOptions {
  readonly credentials?: string;
  readonly ro: boolean;
  readonly create: boolean;
  readonly uid?: number;
  readonly gid?: number;
  readonly umask?: string;
  readonly allowOther: boolean;
}

export const COMMON_OPTIONS = ["credentials", "ro", "create", "uid", "gid", "umask", "allow_other"] as const;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** Volume and profile names: no path separators, no leading dot or dash. */
export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}

/** Refuse any option not in `allowed`, naming what is allowed. */
export function checkAllowed(backend: string, opts: Options, allowed: readonly string[]): void {
  const unknown = Object.keys(opts).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw invalid(
      `option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")} not allowed for backend ${backend}; allowed: ${[...allowed].sort().join(", ")}`,
    );
  }
}

/** `-o ro` arrives as "" and means true. */
export function parseBool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (["", "true", "yes", "1", "on"].includes(v)) return true;
  if (["false", "no", "0", "off"].includes(v)) return false;
  throw invalid(`option ${name}="${value}" is not a boolean: use true or false`);
}

export function parseIntRange(name: string, value: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw invalid(`option ${name}="${value}" must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

export function required(backend: string, opts: Options, name: string, hint: string): string {
  const value = opts[name];
  if (value === undefined || value === "") {
    throw invalid(`backend ${backend} needs option ${name} (${hint})`);
  }
  return value;
}

export function parseCommon(opts: Options): CommonOptions {
  const credentials = opts.credentials;
  if (credentials !== undefined && !isValidName(credentials)) {
    throw invalid(`credentials="${credentials}" is not a profile name: use letters, digits, _ . - only`);
  }
  const umask = opts.umask;
  if (umask !== undefined && !/^0?[0-7]{2,3}$/.test(umask)) {
    throw invalid(`option umask="${umask}" must be octal, like 022`);
  }
  return {
    ...(credentials !== undefined && { credentials }),
    ro: parseBool("ro", opts.ro, false),
    create: parseBool("create", opts.create, false),
    ...(opts.uid !== undefined && { uid: parseIntRange("uid", opts.uid, 0, 4294967294) }),
    ...(opts.gid !== undefined && { gid: parseIntRange("gid", opts.gid, 0, 4294967294) }),
    ...(umask !== undefined && { umask: umask.padStart(4, "0") }),
    allowOther: parseBool("allow_other", opts.allow_other, true),
  };
}

/** Session-shaping common options as FUSE -o values. */
export function fuseSessionOptions(c: CommonOptions): string[] {
  const out = ["nosuid", "nodev"];
  if (c.allowOther) out.push("allow_other");
  if (c.uid !== undefined) out.push(`uid=${c.uid}`);
  if (c.gid !== undefined) out.push(`gid=${c.gid}`);
  if (c.umask !== undefined) out.push(`umask=${c.umask}`);
  return out;
}

/** Session-shaping common options in a connection key; keys are compared as text, so this order is fixed. */
export function commonSessionKey(c: CommonOptions) {
  return { uid: c.uid ?? null, gid: c.gid ?? null, umask: c.umask ?? null, allowOther: c.allowOther };
}

/** A connection's short id: names its directory under conns/ and a backend's files in the work dir. */
export function connectionId(key: string): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}
