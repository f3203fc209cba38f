/**
 * What every backend's options use: the options common to all of them, the allow-list and the
 * refusals, and the typed values (booleans, bounded integers, host names, file paths inside a
 * `-o` list) that a helper's command line may carry.
 */
import { isIPv4, isIPv6 } from "node:net";
import { invalid, shown, VolgateError } from "../errors.ts";
import { isValidName } from "../names.ts";
import type { Options } from "./backend.ts";

/** Options every backend understands (but `ro`, which is the volume's: see parseReadOnly), typed. */
export interface CommonOptions {
  readonly credentials?: string;
  readonly create: boolean;
  readonly uid?: number;
  readonly gid?: number;
  readonly umask?: string;
  readonly allowOther: boolean;
}

export const COMMON_OPTIONS = ["credentials", "ro", "create", "uid", "gid", "umask", "allow_other"] as const;

export function parseCommon(opts: Options): CommonOptions {
  const credentials = opts.credentials;
  if (credentials !== undefined && !isValidName(credentials)) {
    throw invalid(
      `credentials="${shown(credentials)}" is not a profile name: use letters, digits, _ . - only`,
    );
  }
  const umask = opts.umask;
  if (umask !== undefined && !/^0?[0-7]{2,3}$/.test(umask)) {
    throw invalid(`option umask="${shown(umask)}" must be octal, like 022`);
  }
  return {
    ...(credentials !== undefined && { credentials }),
    create: parseBool("create", opts.create, false),
    ...(opts.uid !== undefined && { uid: parseIntRange("uid", opts.uid, 0, 4294967294) }),
    ...(opts.gid !== undefined && { gid: parseIntRange("gid", opts.gid, 0, 4294967294) }),
    ...(umask !== undefined && { umask: umask.padStart(4, "0") }),
    allowOther: parseBool("allow_other", opts.allow_other, true),
  };
}

/** `-o ro`, Spec.readOnly: applied to the volume's bind mount, never to the session. */
export const parseReadOnly = (opts: Options): boolean => parseBool("ro", opts.ro, false);

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

/** Refuse any option not in `allowed`, naming what is allowed. */
export function checkAllowed(backend: string, opts: Options, allowed: readonly string[]): void {
  const unknown = Object.keys(opts).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw invalid(
      `option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${shown(k)}"`).join(", ")} not allowed for backend ${backend}; allowed: ${[...allowed].sort().join(", ")}`,
    );
  }
}

/**
 * Options people try that would hand a volume this host's commands, files, trust or secrets, each
 * with the reason; matched whatever their case.
 */
export type Refused = ReadonlyMap<string, string>;

export const refusedByName = (reasons: Record<string, string>): Refused =>
  new Map(Object.entries(reasons).map(([k, why]) => [k.toLowerCase(), why]));

/**
 * Throw for the first option that looks like a command-line flag or is in `refused`, naming why
 * and what is allowed: checked before the allow-list says the rest.
 */
export function checkRefused(opts: Options, refused: Refused, allowed: readonly string[]): void {
  for (const key of Object.keys(opts)) {
    const why = key.startsWith("-") ? "command-line flags cannot be passed" : refused.get(key.toLowerCase());
    if (why !== undefined) {
      throw invalid(`option "${shown(key)}" is refused: ${why}; allowed: ${[...allowed].sort().join(", ")}`);
    }
  }
}

/** `-o ro` arrives as "" and means true. */
export function parseBool(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.toLowerCase();
  if (["", "true", "yes", "1", "on"].includes(v)) return true;
  if (["false", "no", "0", "off"].includes(v)) return false;
  throw invalid(`option ${name}="${shown(value)}" is not a boolean: use true or false`);
}

export function parseIntRange(name: string, value: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw invalid(`option ${name}="${shown(value)}" must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}

/**
 * How a backend's helper spells host names: "labels" allows `_` in a label (ssh, S3 endpoints);
 * "dns" is strict DNS, with the root's trailing dot allowed (mount.nfs resolves it as such).
 */
type HostNames = "labels" | "dns";

const HOST_LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const DNS_LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const NAME_RES: Readonly<Record<HostNames, RegExp>> = {
  labels: new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`),
  dns: new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*\\.?$`),
};
const NAME_CHARS: Readonly<Record<HostNames, string>> = { labels: "- _ .", dns: "- ." };

/**
 * A host name (dot-separated labels of letters, digits, - and, as `names` says, _; none starting
 * or ending with -) or an IPv4 address.
 */
export function isHostName(value: string, names: HostNames = "labels"): boolean {
  if (value.length > 253) return false;
  return /^[0-9.]+$/.test(value) ? isIPv4(value) : NAME_RES[names].test(value);
}

/** A host option: a host name, IPv4, or IPv6 bare or in brackets. Returns it without brackets. */
export function parseHost(value: string, option: string, names: HostNames = "labels"): string {
  const bare = value.startsWith("[") && value.endsWith("]") ? value.slice(1, -1) : value;
  if (isIPv6(bare) && /^[0-9A-Fa-f:.]+$/.test(bare)) return bare;
  if (bare === value && isHostName(bare, names)) return bare;
  throw invalid(
    `${option}="${shown(value)}" is not a host name, IPv4 address or [IPv6] address: use letters, digits, ${NAME_CHARS[names]} only (no leading -)`,
  );
}

/** IPv6 addresses in brackets, as URLs, ssh, known_hosts and mount sources want them. */
export function hostForUrl(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * A file path inside a -o value: absolute, no commas (the option separator), no whitespace,
 * quotes or backslashes (ssh splits on them). Volgate's own paths only: a failure is a bug here.
 */
export function optionPath(path: string, helper: string): string {
  if (!/^\/[^,\s"'\\]*$/.test(path)) {
    throw new VolgateError(
      "internal",
      `path ${path} cannot be passed to ${helper}: it has a comma, space or quote`,
    );
  }
  return path;
}
