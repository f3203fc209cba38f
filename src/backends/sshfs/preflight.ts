/**
 * The sshfs control plane: an ssh2 login that verifies the host key, authenticates, and
 * resolves/creates the remote directory over SFTP (remote-dir.ts), all within the deadline.
 * Messages say what failed and what to do, never a secret.
 */
import { Client, type ConnectConfig, type ServerHostKeyAlgorithm, type SFTPWrapper } from "ssh2";
import type { Deadline } from "../../deadline.ts";
import { backendError, invalid, messageOf, timeout, VolgateError } from "../../errors.ts";
import type { Logger } from "../../logger.ts";
import { hostForUrl } from "../options.ts";
import { fingerprint, type HostKeyMatch, NO_KNOWN_HOSTS } from "./known-hosts.ts";
import { type RemoteDir, resolveRemoteDir } from "./remote-dir.ts";

/** How often the login sends a keepalive during the check, so the server's ACK wait is short. */
const ACK_CARRIER_MS = 10;

/** The key type named inside an SSH public key blob. */
function blobType(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  return blob.subarray(4, 4 + blob.readUInt32BE(0)).toString("latin1");
}

const SIMPLE_HOST_KEY_TYPES: readonly ServerHostKeyAlgorithm[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
];

/** ssh-keyscan's -t name for a key type. */
const keyscanType = (type: string) =>
  type === "ssh-rsa" ? "rsa" : type.startsWith("ecdsa") ? "ecdsa" : "ed25519";

/** Host key algorithms ssh2 should ask for, so the server presents a key we know. */
function hostKeyAlgorithms(keys: readonly string[]): ServerHostKeyAlgorithm[] {
  const out = new Set<ServerHostKeyAlgorithm>();
  for (const key of keys) {
    const type = key.split(" ")[0] ?? "";
    if (type === "ssh-rsa") for (const a of ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] as const) out.add(a);
    else if (SIMPLE_HOST_KEY_TYPES.includes(type as ServerHostKeyAlgorithm))
      out.add(type as ServerHostKeyAlgorithm);
  }
  return [...out];
}

/** Which host keys this login accepts. */
interface HostKeyPolicy {
  /** undefined: do not verify (operator turned verification off). */
  readonly keys?: HostKeyMatch;
  /** Where the keys came from, for messages: `the host_key option`, a file path. */
  readonly source: string;
}

export interface SshLogin {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly auth: { readonly privateKey: Buffer } | { readonly password: string };
  /** How the credentials were found, for messages: `private_key of credentials profile "x"`. */
  readonly authSource: string;
  readonly hostKeys: HostKeyPolicy;
}

function connectError(err: unknown, login: SshLogin, where: string): VolgateError {
  if (err instanceof VolgateError) return err;
  const e = err as Error & { code?: string; level?: string };
  if (e.level === "client-authentication") {
    const methods = "privateKey" in login.auth ? "publickey" : "password, keyboard-interactive";
    return backendError(
      `authentication failed for ${login.user}@${where} (tried ${methods} with the ${login.authSource}): check the credentials profile, and that the user may log in`,
    );
  }
  switch (e.code) {
    case "ECONNREFUSED":
      return backendError(
        `cannot connect to ${where}: connection refused (is sshd running there, on that port?)`,
      );
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return backendError(
        `cannot connect to ${where}: host name ${login.host} does not resolve (DNS lookup failed)`,
      );
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return backendError(`cannot connect to ${where}: no route to host`);
    case "ETIMEDOUT":
      return timeout(`cannot connect to ${where}: connection timed out`);
  }
  if (/no matching host key/i.test(e.message)) {
    return backendError(
      `${where} offers none of the host key types in ${login.hostKeys.source}: check host_key/known_hosts for that server`,
    );
  }
  if (/timed out/i.test(e.message)) {
    return timeout(
      `no SSH handshake from ${where} in time: check that the address and port are an SSH server`,
    );
  }
  return backendError(`SSH connection to ${where} failed: ${e.message}`);
}

/**
 * Log in, verify the host key, and return the real absolute path of the remote directory.
 * Everything (DNS, TCP, handshake, SFTP) counts against `deadline`.
 */
export async function sshPreflight(
  login: SshLogin,
  dir: RemoteDir,
  deadline: Deadline,
  log: Logger,
): Promise<string> {
  const where = `${hostForUrl(login.host)}:${login.port}`;
  const policy = login.hostKeys;
  let hostKeyProblem: VolgateError | undefined;
  const verify = (key: Buffer): boolean => {
    const seen = `${blobType(key)} ${key.toString("base64")}`;
    const print = `${blobType(key)} key ${fingerprint(key)}`;
    if (policy.keys === undefined) {
      log.warn(
        { host: where, fingerprint: fingerprint(key) },
        "SSH host key not verified (VOLGATE_VERIFY_HOST_KEYS=false)",
      );
      return true;
    }
    if (policy.keys.revoked.includes(seen)) {
      hostKeyProblem = backendError(`host key of ${where} (${print}) is marked @revoked in ${policy.source}`);
    } else if (policy.keys.accepted.length === 0) {
      hostKeyProblem = invalid(
        `no known host key for ${where}${policy.source === NO_KNOWN_HOSTS ? "" : ` in ${policy.source}`} (the server presented ${print}): check that fingerprint, then pass -o host_key="$(ssh-keyscan -t ${keyscanType(blobType(key))} -p ${login.port} ${login.host} 2>/dev/null)" or add the host to known_hosts in the credentials profile`,
      );
    } else if (!policy.keys.accepted.includes(seen)) {
      hostKeyProblem = backendError(
        `host key verification failed for ${where}: the server presented ${print}, which is not the key in ${policy.source}: the host key changed or the server is not the one you expect; if the change is legitimate, update host_key or known_hosts`,
      );
    }
    return hostKeyProblem === undefined;
  };
  const algorithms = policy.keys ? hostKeyAlgorithms(policy.keys.accepted) : [];
  const config: ConnectConfig = {
    host: login.host,
    port: login.port,
    username: login.user,
    readyTimeout: deadline.left(),
    // sshd leaves Nagle on for a session without a tty: right after the login it sends small
    // messages (host keys, key options) and holds its next answer until we ACK them, which our
    // kernel delays ~40 ms when we have nothing to send. A keepalive now and then carries that ACK
    // (measured on loopback: median 74 -> 43 ms); the deadline, not the count, ends a dead server.
    keepaliveInterval: ACK_CARRIER_MS,
    keepaliveCountMax: Number.POSITIVE_INFINITY,
    hostVerifier: verify,
    ...(algorithms.length > 0 && { algorithms: { serverHostKey: algorithms } }),
    ...("privateKey" in login.auth
      ? { privateKey: login.auth.privateKey, authHandler: ["publickey"] }
      : {
          password: login.auth.password,
          tryKeyboard: true,
          authHandler: ["password", "keyboard-interactive"],
        }),
  };
  const client = new Client();
  const password = "password" in login.auth ? login.auth.password : undefined;
  client.on("keyboard-interactive", (_name, _instructions, _lang, prompts, finish) => {
    finish(prompts.map(() => password ?? ""));
  });
  const work = async () => {
    await new Promise<void>((resolve, reject) => {
      client.on("ready", resolve);
      client.on("error", (err) => reject(hostKeyProblem ?? connectError(err, login, where)));
      client.on("close", () =>
        reject(hostKeyProblem ?? backendError(`${where} closed the SSH connection during login`)),
      );
      try {
        client.connect(config);
        // ssh2 leaves Nagle on: each login step and SFTP request would wait ~40 ms for a delayed ACK.
        client.setNoDelay(true);
      } catch (err) {
        reject(
          invalid(
            `cannot use the ${login.authSource}: ${messageOf(err)} (volgate needs an unencrypted private key)`,
          ),
        );
      }
    });
    const opened = new Promise<SFTPWrapper>((resolve, reject) =>
      client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))),
    );
    const sftp = await opened.catch((err: unknown) => {
      throw backendError(
        `SFTP is not available on ${where}: ${messageOf(err)} (the server needs an sftp subsystem)`,
      );
    });
    return resolveRemoteDir(sftp, dir, where).catch((err: unknown) => {
      if (err instanceof VolgateError) throw err;
      throw backendError(`cannot check remote directory ${dir.path || "~"} on ${where}: ${messageOf(err)}`);
    });
  };
  try {
    return await deadline.race(work(), `SSH check of ${where}`, "check that it is reachable");
  } finally {
    client.end();
    client.destroy();
  }
}
