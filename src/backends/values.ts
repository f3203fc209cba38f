/**
 * Option values that end up on a helper's command line, checked the same way by every
 * backend that builds one: host names (never starting with `-`), bracketed IPv6, and file
 * paths inside a `-o` list.
 */
import { isIPv4 } from "node:net";
import { VolgateError } from "../errors.ts";

const HOST_LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const HOSTNAME_RE = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/** A host name (dot-separated labels of letters, digits, - and _, no label starting or ending with -) or an IPv4 address. */
export function isHostName(value: string): boolean {
  if (value.length > 253) return false;
  return /^[0-9.]+$/.test(value) ? isIPv4(value) : HOSTNAME_RE.test(value);
}

/** IPv6 addresses in brackets, as URLs, ssh and known_hosts want them. */
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
