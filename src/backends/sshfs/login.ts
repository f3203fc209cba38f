/**
 * Who logs in, and which host keys to trust: the credential from a profile (private_key or
 * password; only for the hosts its allowed_hosts lists, if it has one) or the inline password; the
 * known keys from the profile's known_hosts, host_key or <secretsDir>/known_hosts; and the
 * known_hosts file ssh reads. Read at each use, so a rotated profile needs no restart.
 */
import { chmod, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { checkAllowedHost, openProfile, type Profile, profileFile, readSecret } from "../../credentials.ts";
import { invalid, type VolgateError, workFileError } from "../../errors.ts";
import type { BackendContext } from "../../host.ts";
import { hostForUrl } from "../options.ts";
import { type HostKeyMatch, knownHostsName, matchKnownHosts, NO_KNOWN_HOSTS } from "./known-hosts.ts";
import type { SshfsSpec } from "./options.ts";

type Auth = { kind: "key"; path: string; key: Buffer } | { kind: "password"; password: string };

export interface Login {
  readonly auth: Auth;
  /** For messages: where the credential came from. */
  readonly authSource: string;
  /** Known keys for this host and where they came from; `file` when ssh can read them directly. */
  readonly known: { keys: HostKeyMatch; source: string; file?: string };
}

export async function resolveLogin(spec: SshfsSpec, ctx: BackendContext): Promise<Login> {
  const name = spec.common.credentials;
  const profile = name === undefined ? undefined : await openProfile(ctx.secretsDir, name);
  if (profile) await checkAllowedHost(profile, spec.host, spec.port);
  const keyPath = profile && (await profileFile(profile, "private_key"));
  const stored = profile && (await readSecret(profile, "password"));
  let auth: Auth;
  let authSource: string;
  if (keyPath !== undefined) {
    auth = { kind: "key", path: keyPath, key: await readFile(keyPath) };
    authSource = `private_key of credentials profile "${name}"`;
  } else if (stored !== undefined || spec.password !== undefined) {
    const password = stored ?? spec.password ?? "";
    if (/[\n\r\0]/.test(password))
      throw invalid("the password contains a newline or NUL: sshfs cannot send it");
    auth = { kind: "password", password };
    authSource =
      stored !== undefined ? `password of credentials profile "${name}"` : "inline password option";
  } else {
    throw invalid(
      profile
        ? `credentials profile "${name}" (${profile.dir}) has neither a private_key nor a password file: add one`
        : `no credentials for ${spec.user}@${spec.host}: pass -o credentials=PROFILE naming a directory under ${ctx.secretsDir} that holds private_key or password`,
    );
  }
  if (auth.kind === "password" && (spec.tuning.maxConns ?? 1) > 1) {
    throw invalid(
      "max_conns above 1 needs key authentication: sshfs sends a password to one connection only",
    );
  }
  return { auth, authSource, known: await knownKeys(spec, ctx, profile) };
}

/**
 * Which host keys to trust: a profile's known_hosts first (it pins the servers its secrets are
 * for: a volume's host_key cannot swap in another server's key), then host_key, then the shared
 * <secretsDir>/known_hosts.
 */
async function knownKeys(spec: SshfsSpec, ctx: BackendContext, profile: Profile | undefined) {
  const pinned = profile && (await profileFile(profile, "known_hosts"));
  if (pinned !== undefined && spec.hostKeys) {
    ctx.log.warn(
      { profile: profile?.name, knownHosts: pinned, host: `${hostForUrl(spec.host)}:${spec.port}` },
      "-o host_key ignored: the credentials profile has its own known_hosts, which alone says which host keys to trust",
    );
  }
  if (pinned === undefined && spec.hostKeys)
    return { keys: { accepted: [...spec.hostKeys], revoked: [] }, source: "the host_key option" };
  const shared = join(ctx.secretsDir, "known_hosts");
  const file = pinned ?? ((await stat(shared).catch(() => undefined))?.isFile() ? shared : undefined);
  if (file === undefined) return { keys: { accepted: [], revoked: [] }, source: NO_KNOWN_HOSTS };
  return { keys: matchKnownHosts(await readFile(file, "utf8"), spec.host, spec.port), source: file, file };
}

function noKnownKey(spec: SshfsSpec, source: string): VolgateError {
  const where = `${hostForUrl(spec.host)}:${spec.port}`;
  const none = source === NO_KNOWN_HOSTS ? "" : ` in ${source}`;
  return invalid(
    `no known host key for ${where}${none}: pass -o host_key="$(ssh-keyscan -t ed25519 -p ${spec.port} ${spec.host} 2>/dev/null)" after checking its fingerprint, or add known_hosts to the credentials profile`,
  );
}

/** The known_hosts file ssh reads: the profile's (or the shared) file as is, or one written for host_key. */
export async function knownHostsFile(spec: SshfsSpec, login: Login, ctx: BackendContext, id: string) {
  if (login.known.keys.accepted.length === 0) throw noKnownKey(spec, login.known.source);
  if (login.known.file !== undefined) return login.known.file;
  const path = join(ctx.workDir, `sshfs-${id}.known_hosts`);
  const name = knownHostsName(spec.host.toLowerCase(), spec.port);
  const lines = login.known.keys.accepted.map((k) => `${name} ${k}\n`).join("");
  await writeFile(path, lines, { mode: 0o600 })
    .then(() => chmod(path, 0o600))
    .catch((err: unknown) => {
      throw workFileError(ctx.workDir, err);
    });
  return path;
}
