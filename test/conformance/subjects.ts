/**
 * The conformance subjects of the three backends, built the same way for the fake host and for
 * real: a run gives where the server is and how a mount fails there; the volumes, secrets,
 * refused options and aliases are the same everywhere.
 */
import type { Options } from "../../src/backends/backend.ts";
import { type NfsSpec, nfsBackend } from "../../src/backends/nfs/index.ts";
import { type S3fsSpec, s3fsBackend } from "../../src/backends/s3fs/index.ts";
import { type SshfsSpec, sshfsBackend } from "../../src/backends/sshfs/index.ts";
import type { Machine } from "../support/machine.ts";
import { writeProfile } from "../support/profile.ts";
import { strangerKeyLine } from "../support/sshd.ts";
import type { Subject } from "./suite.ts";

interface Run {
  readonly machine: Machine;
  /** Options (over the run's base options) of a volume whose mount fails. */
  readonly failing: Options;
  /** Where preflight can run for real. */
  readonly preflight: boolean;
  readonly mountTimeoutMs: number;
  /** Stop the run's servers. */
  close(): Promise<void>;
}

/** The machine first (nothing stays mounted), then the servers. */
async function closeRun(run: Run): Promise<void> {
  await run.machine.close();
  await run.close();
}

/** A run of a backend with secrets: it also fails with one. */
interface SecretRun extends Run {
  readonly failingWithSecret: Options;
}

export interface SshfsRun extends SecretRun {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly hostKey: string;
  /** Two directories on the server, for two volumes. */
  readonly dirs: readonly [string, string];
  readonly privateKey: string;
  /** The login password (for the `pw` profile and inline); `badpw` holds a wrong one. */
  readonly password: string;
}

export async function sshfsSubject(run: SshfsRun): Promise<Subject<SshfsSpec>> {
  const wrongPassword = "not-the-password-Conf0rm";
  const secretsDir = run.machine.secretsDir;
  await writeProfile(secretsDir, "key", { private_key: run.privateKey });
  await writeProfile(secretsDir, "pw", {
    password: `${run.password}\n`,
    known_hosts: `[${run.host}]:${run.port} ${run.hostKey}\n`,
  });
  await writeProfile(secretsDir, "badpw", { password: wrongPassword });
  const [a, b] = run.dirs;
  const base = { host: run.host, port: String(run.port), user: run.user, host_key: run.hostKey };
  const withKey = { ...base, credentials: "key" };
  return {
    backend: sshfsBackend,
    harness: run.machine.harness,
    volume: { ...withKey, path: a },
    sameConnection: { ...withKey, path: b, ro: "true", create: "true" },
    otherConnections: {
      host: { ...withKey, host: "localhost" },
      port: { ...withKey, port: String(run.port + 1) },
      user: { ...withKey, user: "nobody" },
      credentials: { ...base, credentials: "pw" },
      "host key": { ...withKey, host_key: strangerKeyLine() },
      uid: { ...withKey, uid: "1000" },
      reconnect: { ...withKey, reconnect: "false" },
      keepalive: { ...withKey, ServerAliveInterval: "5" },
    },
    secrets: {
      // The password, the wrong one, and the private key's first line of base64.
      values: [run.password, wrongPassword, run.privateKey.split("\n")[1] ?? run.privateKey],
      volumes: [
        { ...base, credentials: "pw", path: a },
        {
          sshcmd: `${run.user}@${run.host}:${b}`,
          port: base.port,
          host_key: run.hostKey,
          password: run.password,
        },
      ],
      failing: { ...base, ...run.failingWithSecret },
    },
    unknownOption: ["follow_symlinks", ""],
    dangerousOptions: [
      ["ssh_command", "/bin/sh -c id"],
      ["ProxyCommand", "nc evil 22"],
      ["-F", "/tmp/ssh_config"],
      ["IdentityFile", "/etc/shadow"],
      ["sftp_server", "/bin/sh"],
      ["StrictHostKeyChecking", "no"],
    ],
    aliases: [
      {
        input: {
          sshcmd: `${run.user}@${run.host}:${a}`,
          port: base.port,
          host_key: run.hostKey,
          credentials: "key",
        },
        canonical: { ...withKey, path: a },
      },
      {
        input: {
          sshcmd: `${run.user}@[fd00::5]:`,
          port: base.port,
          host_key: run.hostKey,
          credentials: "key",
        },
        canonical: { ...withKey, host: "fd00::5" },
      },
      { input: { ...withKey, ro: "" }, canonical: { ...withKey, ro: "true" } },
    ],
    failing: { ...withKey, ...run.failing },
    ...(run.preflight && {
      preflight: { volume: { ...withKey, path: a }, directory: a.replace(/^\/+/, "") },
    }),
    mountTimeoutMs: run.mountTimeoutMs,
    close: () => closeRun(run),
  };
}

export interface S3fsRun extends SecretRun {
  /** `http://127.0.0.1:PORT`: also reached as localhost for another connection. */
  readonly endpoint: string;
  /** Two buckets; the first holds the directories vols/a and vols/b. */
  readonly buckets: readonly [string, string];
  /** The access key id the server knows; any other is refused. */
  readonly accessKeyId: string;
}

export async function s3fsSubject(run: S3fsRun): Promise<Subject<S3fsSpec>> {
  const secrets = {
    profile: "profile/Secret+Conf0rmance",
    inline: "inline/Secret+Conf0rmance",
    stranger: "stranger-Secret-Conf0rm",
  };
  await writeProfile(run.machine.secretsDir, "s3", {
    access_key_id: `${run.accessKeyId}\n`,
    secret_access_key: `${secrets.profile}\n`,
  });
  await writeProfile(run.machine.secretsDir, "stranger", {
    access_key_id: "AKIASTRANGER0000",
    secret_access_key: secrets.stranger,
  });
  const base = { bucket: run.buckets[0], endpoint: run.endpoint };
  const withProfile = { ...base, credentials: "s3" };
  const inline = { access_key_id: run.accessKeyId, secret_access_key: secrets.inline };
  const volume = { ...withProfile, prefix: "vols/a" };
  return {
    backend: s3fsBackend,
    harness: run.machine.harness,
    volume,
    sameConnection: { ...withProfile, prefix: "vols/b", ro: "true", create: "true" },
    otherConnections: {
      bucket: { ...withProfile, bucket: run.buckets[1] },
      endpoint: { ...withProfile, endpoint: run.endpoint.replace("127.0.0.1", "localhost") },
      credentials: { ...base, credentials: "stranger" },
      "inline keys": { ...base, ...inline },
      region: { ...withProfile, region: "eu-west-1" },
      "path style": { ...withProfile, path_style: "false" },
      uid: { ...withProfile, uid: "1000" },
      sse: { ...withProfile, sse: "true" },
      tuning: { ...withProfile, multipart_size: "64" },
    },
    secrets: {
      values: Object.values(secrets),
      volumes: [volume, { ...base, prefix: "vols/b", ...inline }],
      failing: { ...base, prefix: "x", ...run.failingWithSecret },
    },
    unknownOption: ["nonempty", ""],
    dangerousOptions: [
      ["passwd_file", "/etc/shadow"],
      ["credlib", "/tmp/evil.so"],
      ["use_cache", "/tmp"],
      ["no_check_certificate", ""],
      ["suid", ""],
      ["dev", ""],
      ["url", "http://evil.example.com"],
      ["-o", "allow_root"],
    ],
    aliases: [
      {
        input: { ...withProfile, endpoint: `${run.endpoint.toUpperCase()}/`, prefix: "/vols/a/" },
        canonical: volume,
      },
      { input: { ...withProfile, sse: "AES256" }, canonical: { ...withProfile, sse: "true" } },
      { input: withProfile, canonical: { ...withProfile, path_style: "true", region: "us-east-1" } },
    ],
    failing: { ...withProfile, prefix: "x", ...run.failing },
    ...(run.preflight && { preflight: { volume, directory: "vols/a" } }),
    mountTimeoutMs: run.mountTimeoutMs,
    close: () => closeRun(run),
  };
}

export interface NfsRun extends Run {
  /** The NFS server's address, also reached as localhost for another connection. */
  readonly server: string;
  /** Its NFS port, given as nfs_opts port=. */
  readonly port: number;
  /** An export holding the directories a and b. */
  readonly export: string;
}

export async function nfsSubject(run: NfsRun): Promise<Subject<NfsSpec>> {
  const port = `port=${run.port}`;
  const base = { server: run.server, export: run.export, nfs_opts: port };
  return {
    backend: nfsBackend,
    harness: run.machine.harness,
    volume: { ...base, path: "a" },
    sameConnection: { ...base, path: "b", ro: "true", create: "true" },
    otherConnections: {
      server: { ...base, server: "localhost" },
      export: { ...base, export: `${run.export}-other` },
      version: { ...base, vers: "4.2" },
      "mount options": { ...base, nfs_opts: `${port},soft` },
      "read-only session": { o: `addr=${run.server},ro,${port}`, device: `:${run.export}` },
    },
    secrets: { values: [], volumes: [] },
    unknownOption: ["mountopts", "x"],
    dangerousOptions: [
      ["nfs_opts", "suid"],
      ["nfs_opts", "dev"],
      ["o", `addr=${run.server},suid`],
      ["nfs_opts", "sec=krb5"],
      ["nfs_opts", "fsc"],
      ["nfs_opts", "soft,context=system_u:object_r:tmp_t:s0"],
    ],
    aliases: [
      {
        input: { type: "nfs", o: `addr=${run.server},${port}`, device: `:${run.export}`, path: "a" },
        canonical: { ...base, path: "a" },
      },
      {
        input: { type: "nfs4", o: `addr=${run.server},vers=4.1`, device: `:${run.export}` },
        canonical: { server: run.server, export: run.export, vers: "4.1" },
      },
      { input: { share: `${run.server}:${run.export}/`, nfs_opts: port }, canonical: base },
    ],
    failing: { ...base, ...run.failing },
    ...(run.preflight && { preflight: { volume: { ...base, path: "a" }, directory: "a" } }),
    mountTimeoutMs: run.mountTimeoutMs,
    close: () => closeRun(run),
  };
}
