/**
 * Host keys, as OpenSSH reads them: the host_key option (public key lines, or ssh-keyscan
 * output), and known_hosts matching: plain and hashed (`|1|salt|hash`) entries, `[host]:port`
 * names, globs and negation, @revoked and @cert-authority markers. Pure: the ssh2 control plane
 * and the sshfs mount both use it.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { invalid } from "../../errors.ts";

const KEY_TYPES = [
  "ssh-ed25519",
  "ssh-rsa",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "sk-ssh-ed25519@openssh.com",
  "sk-ecdsa-sha2-nistp256@openssh.com",
];

/**
 * host_key: one or more public key lines, `type base64 [comment]`, optionally prefixed by a
 * host pattern as ssh-keyscan prints them; `#` lines are skipped. Returns `type base64` each.
 */
export function parseHostKeys(value: string): string[] {
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

/** The name a known_hosts line uses for this endpoint. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

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
