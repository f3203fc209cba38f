/**
 * Credentials profiles: secrets by reference. `-o credentials=NAME` names the
 * directory <secretsDir>/NAME holding files password, private_key, known_hosts,
 * access_key_id, secret_access_key. Read at each use, so rotation needs no restart.
 */
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { invalid } from "./errors.ts";

export type SecretFile =
  | "password"
  | "private_key"
  | "known_hosts"
  | "access_key_id"
  | "secret_access_key"
  | "username"
  | "ca.pem"
  | "cert.pem"
  | "key.pem";

/** Files of a profile that are not secret: they may be readable by others. */
const PUBLIC: ReadonlySet<SecretFile> = new Set(["known_hosts", "username", "ca.pem", "cert.pem"]);

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
