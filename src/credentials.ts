/**
 * Credentials profiles: secrets by reference. `-o credentials=NAME` names the
 * directory <secretsDir>/NAME holding files password, private_key, known_hosts,
 * access_key_id, secret_access_key, and allowed_hosts: where the profile may be used.
 * Read at each use, so rotation needs no restart.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { invalid, shown } from "./errors.ts";

export type SecretFile =
  | "password"
  | "private_key"
  | "known_hosts"
  | "access_key_id"
  | "secret_access_key"
  | "username"
  | "allowed_hosts"
  | "ca.pem"
  | "cert.pem"
  | "key.pem";

/** Files of a profile that are not secret: they may be readable by others. */
const PUBLIC: ReadonlySet<SecretFile> = new Set([
  "known_hosts",
  "username",
  "allowed_hosts",
  "ca.pem",
  "cert.pem",
]);

export interface Profile {
  readonly name: string;
  readonly dir: string;
}

export async function openProfile(secretsDir: string, name: string): Promise<Profile> {
  const dir = join(secretsDir, name);
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw invalid(
      `credentials profile "${name}" not found: create the directory ${dir} holding the files it needs (password, private_key, known_hosts, access_key_id, secret_access_key)`,
    );
  }
  return { name, dir };
}

/** The path of a profile file if it exists; private keys must not be readable by others. */
export async function profileFile(profile: Profile, file: SecretFile): Promise<string | undefined> {
  const path = join(profile.dir, file);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  if (!PUBLIC.has(file) && (info.mode & 0o077) !== 0) {
    throw invalid(`${path} is readable by group or others: chmod 600 ${path}`);
  }
  return path;
}

/** A profile secret as text, without its trailing newline; undefined when the file is absent. */
export async function readSecret(profile: Profile, file: SecretFile): Promise<string | undefined> {
  const path = await profileFile(profile, file);
  if (path === undefined) return undefined;
  return (await readFile(path, "utf8")).replace(/\r?\n$/, "");
}

/** One line of allowed_hosts: a host glob (`*`, `?`; case-insensitive) and a port, or any port. */
interface HostPattern {
  readonly host: RegExp;
  readonly port?: number;
}

const glob = (text: string) =>
  new RegExp(
    `^${text
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
    "i",
  );

/** `host`, `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 address (any port). */
function parsePattern(line: string, where: string): HostPattern {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(line) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(line);
  const bareV6 = line.split(":").length > 2 && /^[0-9A-Fa-f:.*?]+$/.test(line);
  const host = m?.[1] ?? (bareV6 ? line : undefined);
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  if (host === undefined || (port !== undefined && (port < 1 || port > 65535)) || /\s/.test(line)) {
    throw invalid(
      `${where}: "${shown(line)}" is not a host or host:port pattern (like files.example.com, *.corp.example:22 or [fd00::1]:2222)`,
    );
  }
  return { host: glob(host), ...(port !== undefined && { port }) };
}

/**
 * Where a profile may be used: its allowed_hosts file, one host or host:port pattern a line
 * (globs allowed, # comments). A volume that names another host (and port) is refused before the
 * profile's secrets are read, so they never reach a server the operator did not list. Without the
 * file, the profile may be used for any host.
 */
export async function checkAllowedHost(profile: Profile, host: string, port: number): Promise<void> {
  const path = await profileFile(profile, "allowed_hosts");
  if (path === undefined) return;
  const lines = (await readFile(path, "utf8"))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const patterns = lines.map((l) => parsePattern(l, path));
  if (patterns.some((p) => p.host.test(host) && (p.port === undefined || p.port === port))) return;
  const where = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  throw invalid(
    `credentials profile "${profile.name}" may not be used for ${where}: its allowed_hosts (${path}) lists only ${shown(lines.join(", ")) || "nothing"}; use a profile meant for that host, or add it there`,
  );
}
