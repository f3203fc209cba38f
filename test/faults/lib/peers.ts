/**
 * Real volumes for the fault scenarios: a private sshd with a key (or password) profile in volgate's
 * secrets dir and a remote directory under the test user's home, or an s3rver bucket with its
 * keys; and the round every scenario makes with a volume on a healthy peer while another one is
 * faulty (create, mount, write, read back on the server, unmount, remove).
 */
import { randomBytes } from "node:crypto";
import { chown, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { call } from "../../support/client.ts";
import { writeProfile } from "../../support/profile.ts";
import { startS3, type TestS3 } from "../../support/s3.ts";
import { sshfsOptions, startSshd, type TestSshd } from "../../support/sshd.ts";
import type { Volgate } from "../../support/volgate.ts";

/** A server volumes live on, as a scenario uses it. */
export interface Peer {
  /** The -o options of a volume in the server's directory `sub` (made where it must exist). */
  options(sub: string): Promise<Record<string, string>>;
  /** The content of `file` in volume directory `sub`, read on the server's side. */
  read(sub: string, file: string): Promise<string>;
  stop(): Promise<void>;
}

export interface SshPeer extends Peer {
  readonly sshd: TestSshd;
  readonly profile: string;
  /** The base directory on the server (a local directory: the sshd is local). */
  readonly remote: string;
}

export interface S3Peer extends Peer {
  readonly s3: TestS3;
}

/** An s3rver with one bucket and a profile holding its keys; a volume is a prefix in the bucket. */
export async function s3Peer(v: Volgate, profile: string): Promise<S3Peer> {
  const bucket = "faults";
  const s3 = await startS3([bucket]);
  await writeProfile(v.secretsDir, profile, {
    access_key_id: s3.accessKeyId,
    secret_access_key: s3.secretAccessKey,
  });
  return {
    s3,
    options: async (sub) => ({
      backend: "s3fs",
      bucket,
      endpoint: s3.endpoint,
      prefix: sub,
      create: "true",
      credentials: profile,
    }),
    read: (sub, file) => readFile(s3.objectFile(bucket, `${sub}/${file}`), "utf8"),
    stop: () => s3.stop(),
  };
}

export async function sshPeer(
  v: Volgate,
  profile: string,
  auth: "key" | "password" = "key",
): Promise<SshPeer> {
  const sshd = await startSshd();
  const remote = join(sshd.home, `faults-${randomBytes(4).toString("hex")}`);
  await mkdir(remote, { recursive: true });
  await chown(remote, sshd.uid, sshd.gid);
  const login =
    auth === "key"
      ? { private_key: await readFile(sshd.privateKeyPath, "utf8") }
      : { password: sshd.password };
  await writeProfile(v.secretsDir, profile, { ...login, known_hosts: `${sshd.knownHostsLine}\n` });
  return {
    sshd,
    profile,
    remote,
    read: (sub, file) => readFile(join(remote, sub, file), "utf8"),
    async options(sub) {
      const dir = join(remote, sub);
      await mkdir(dir, { recursive: true });
      await chown(dir, sshd.uid, sshd.gid);
      return sshfsOptions(sshd, dir, profile);
    },
    async stop() {
      await sshd.stop();
      await rm(remote, { recursive: true, force: true });
    },
  };
}

const since = (t: number) => Math.round(performance.now() - t);

/**
 * Create, mount, write (and read the file back on the server), unmount and remove volume `name`
 * on `peer`; throws what went wrong, else says how long the round took.
 */
export async function exercise(v: Volgate, peer: Peer, name: string): Promise<string> {
  const started = performance.now();
  const step = async (path: string, body: object) => {
    const answer = await call(v.socket, path, body, { signal: AbortSignal.timeout(20_000) });
    if (answer.status !== 200) throw new Error(`${path} of ${name}: ${answer.status} ${answer.text}`);
    return answer.json;
  };
  await step("/VolumeDriver.Create", { Name: name, Opts: await peer.options(name) });
  const { Mountpoint } = await step("/VolumeDriver.Mount", { Name: name, ID: "exercise" });
  const text = `written during the fault at ${new Date().toISOString()}\n`;
  await writeFile(join(Mountpoint, "during.txt"), text);
  const onServer = await peer.read(name, "during.txt");
  if (onServer !== text) throw new Error(`${name}: the server has ${JSON.stringify(onServer)}`);
  await step("/VolumeDriver.Unmount", { Name: name, ID: "exercise" });
  await step("/VolumeDriver.Remove", { Name: name });
  return `ok (create/mount/write/unmount/remove in ${since(started)} ms)`;
}
