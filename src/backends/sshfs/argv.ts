/**
 * The sshfs command line for a connection: the remote root, FUSE and ssh options from the
 * typed spec, strict host keys, and the login method. Secrets never appear here: a password
 * goes through stdin (password_stdin), a key by its file.
 */
import { VolgateError } from "../../errors.ts";
import { fuseSessionOptions, hostForUrl, optionPath } from "../options.ts";
import type { SshfsSpec } from "./options.ts";
import type { SessionShape } from "./session.ts";

type SshfsAuth = { readonly kind: "key"; readonly identityFile: string } | { readonly kind: "password" };

export interface SshfsArgvInput {
  readonly spec: SshfsSpec;
  readonly target: string;
  readonly auth: SshfsAuth;
  /** Ciphers and connections, the options' or this machine's defaults (session.ts). */
  readonly session: SessionShape;
  /** The known_hosts file ssh checks; ignored when host keys are not verified. */
  readonly knownHostsFile?: string;
  readonly verifyHostKeys: boolean;
}

/** ssh's TCP + banner timeout, also for reconnects; the mount deadline is enforced by the supervisor. */
const CONNECT_TIMEOUT_S = 10;

/** `sshfs -f user@host:/ TARGET -F /dev/null -o ...`: the whole remote root; secrets never appear here. */
export function buildSshfsArgv(input: SshfsArgvInput): string[] {
  const { spec, auth, session, verifyHostKeys } = input;
  const t = spec.tuning;
  // idmap=user: the login's files show as root's here, so dockerd (root) can chown them on copy-up and docker cp.
  const o = [...fuseSessionOptions(spec.common), "idmap=user"];
  if (t.reconnect) o.push("reconnect");
  if (t.cache !== undefined) o.push(`dir_cache=${t.cache ? "yes" : "no"}`);
  // max_conns above 1 with a password is refused with the login (login.ts), before anything runs.
  if (session.maxConns !== undefined) o.push(`max_conns=${session.maxConns}`);
  o.push(`ServerAliveInterval=${t.serverAliveInterval}`, `ServerAliveCountMax=${t.serverAliveCountMax}`);
  if (t.compression) o.push("Compression=yes");
  // Commas inside a value are escaped for FUSE's option parser, as below.
  if (session.ciphers !== undefined) o.push(`Ciphers=${session.ciphers.join("\\,")}`);
  if (verifyHostKeys) {
    if (input.knownHostsFile === undefined) {
      throw new VolgateError("internal", "no known_hosts file for a verified sshfs mount");
    }
    o.push("StrictHostKeyChecking=yes", `UserKnownHostsFile=${optionPath(input.knownHostsFile, "sshfs")}`);
  } else {
    o.push("StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null");
  }
  o.push("GlobalKnownHostsFile=/dev/null", "CheckHostIP=no", "UpdateHostKeys=no", `Port=${spec.port}`);
  if (auth.kind === "key") {
    o.push(
      `IdentityFile=${optionPath(auth.identityFile, "sshfs")}`,
      "IdentitiesOnly=yes",
      "PreferredAuthentications=publickey",
      "PasswordAuthentication=no",
      "KbdInteractiveAuthentication=no",
      "BatchMode=yes",
    );
  } else {
    // The comma inside a value is escaped for FUSE's option parser; ssh receives it unescaped.
    o.push(
      "password_stdin",
      "PubkeyAuthentication=no",
      "PreferredAuthentications=password\\,keyboard-interactive",
      "NumberOfPasswordPrompts=1",
    );
  }
  o.push(`ConnectTimeout=${CONNECT_TIMEOUT_S}`);
  const remote = `${spec.user}@${hostForUrl(spec.host)}:/`;
  return ["-f", remote, input.target, "-F", "/dev/null", "-o", o.join(",")];
}
