/**
 * known_hosts matching, as OpenSSH does it: plain and hashed (`|1|salt|hash`)
 * entries, `[host]:port` names, globs and negation, @revoked and @cert-authority
 * markers. Pure: the ssh2 control plane and the sshfs mount both use it.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { knownHostsName } from "./sshfs-args.ts";

/** Where known keys came from when there is no file at all. */
export const NO_KNOWN_HOSTS = "no known_hosts file";

export interface HostKeyMatch {
  /** Accepted keys, `type base64`. */
  readonly accepted: string[];
  /** Keys marked @revoked, `type base64`. */
  readonly revoked: string[];
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

/** `|1|salt|hash`: HMAC-SHA1 of the host name keyed by the salt (ssh-keygen -H). */
function hashedMatches(entry: string, name: string): boolean {
  const [, magic, salt, hash] = entry.split("|");
  if (magic !== "1" || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, "base64");
  const actual = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** OpenSSH host pattern lists: comma-separated globs, `!` negates, hashed entries match exactly. */
function hostsMatch(field: string, name: string): boolean {
  if (field.startsWith("|")) return hashedMatches(field, name);
  let matched = false;
  for (const pattern of field.split(",")) {
    const negated = pattern.startsWith("!");
    if (!globToRegExp(negated ? pattern.slice(1) : pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** The keys a known_hosts text holds for host:port (`[host]:port` unless the port is 22). */
export function matchKnownHosts(text: string, host: string, port: number): HostKeyMatch {
  const name = knownHostsName(host.toLowerCase(), port);
  const accepted: string[] = [];
  const revoked: string[] = [];
  for (const raw of text.split("\n")) {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === "" || fields[0].startsWith("#")) continue;
    const marker = fields[0].startsWith("@") ? fields.shift() : undefined;
    const [hosts, type, blob] = fields;
    if (hosts === undefined || type === undefined || blob === undefined) continue;
    if (marker === "@cert-authority" || !hostsMatch(hosts, name)) continue;
    (marker === "@revoked" ? revoked : accepted).push(`${type} ${blob}`);
  }
  return { accepted, revoked };
}

/** `SHA256:...` as ssh-keygen -l prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}
