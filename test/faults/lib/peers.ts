/**
 * Real sshfs volumes for the fault scenarios: a private sshd with a key profile in volgate's
 * secrets dir and a remote directory under the test user's home, and the round every scenario
 * makes with a volume on a healthy peer while another one is faulty (create, mount, write, read
 * back on the server, unmount, remove).
 */
import { randomBytes } from "node:crypto";
import { chown, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { call } from "../../support/client.ts";
import { writeProfile } from "../../support/profile.ts";
import { sshfsOptions, startSshd, type TestSshd } from "../../support/sshd.ts";
import type { Volgate } from "../../support/volgate.ts";

export interface SshPeer {
  readonly sshd: TestSshd;
  readonly profile: string;
  /** The base directory on the server (a local directory: the sshd is local). */
  readonly remote: string;
  /** The -o options of a volume in `<remote>/<sub>` (made, owned by the login user). */
  options(sub: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
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
export async function exercise(v: Volgate, peer: SshPeer, name: string): Promise<string> {
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
  const onServer = await readFile(join(peer.remote, name, "during.txt"), "utf8");
  if (onServer !== text) throw new Error(`${name}: the server has ${JSON.stringify(onServer)}`);
  await step("/VolumeDriver.Unmount", { Name: name, ID: "exercise" });
  await step("/VolumeDriver.Remove", { Name: name });
  return `ok (create/mount/write/unmount/remove in ${since(started)} ms)`;
}
