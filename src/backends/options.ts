/**
 * Option values that end up on a helper's command line, checked the same way by every
 * backend that builds one: host names (never starting with `-`), bracketed IPv6, and file
 * paths inside a `-o` list.
 */
import { isIPv4, isIPv6 } from "node:net";
import { invalid, VolgateError } from "../errors.ts";

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
    `${option}="${value}" is not a host name, IPv4 address or [IPv6] address: use letters, digits, ${NAME_CHARS[names]} only (no leading -)`,
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
