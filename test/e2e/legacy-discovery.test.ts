/**
 * Legacy discovery beyond the plain socket, each driven by a real dockerd: a `.spec` file
 * pointing at plain TCP (only because the operator said VOLGATE_INSECURE_TCP=true), a `.json`
 * file with mutual TLS, and a socket handed over by systemd-socket-activate the way systemd does.
 * In each case a container writes through an sshfs volume and the file lands on the server.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Dockerd,
  optionArgs,
  PLUGIN_SOCKET_DIR,
  removeDirSafely,
  startDockerd,
  uniquePluginName,
} from "../support/dockerd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { freePort, sshfsOptions, startSshd, type TestSshd, writeProfile } from "../support/sshd.ts";
import { makePki } from "../support/tls.ts";
import { startVolgate, VOLGATE_BUNDLE, type Volgate } from "../support/volgate.ts";

const SPEC_DIR = "/etc/docker/plugins";
const missing = process.getuid?.() === 0 && existsSync("/dev/fuse") ? [] : ["root and /dev/fuse"];
const canRun = tierCanRun(
  "e2e discovery",
  ["dockerd", "sshd", "sshfs", "openssl", "systemd-socket-activate"],
  missing,
);

describe.skipIf(!canRun)("legacy discovery with a real dockerd", () => {
  let sshd: TestSshd;
  let dockerd: Dockerd;
  let remote: string;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    sshd = await startSshd();
    remote = join(sshd.home, `${uniquePluginName()}-remote`);
    await mkdir(remote, { recursive: true });
    await chown(remote, sshd.uid, sshd.gid);
    dockerd = await startDockerd();
  });
  afterAll(async () => {
    await dockerd?.stop();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await sshd?.stop();
    if (remote) await removeDirSafely(remote);
  });

  /** Create a volume through `plugin`, write from a container, and check the file on the server. */
  async function writesThrough(plugin: string, secretsDir: string): Promise<void> {
    await writeProfile(secretsDir, "pw", {
      password: sshd.password,
      known_hosts: `${sshd.knownHostsLine}\n`,
    });
    const create = await dockerd.docker([
      "volume",
      "create",
      "-d",
      plugin,
      ...optionArgs(sshfsOptions(sshd, remote, "pw")),
      `${plugin}-v`,
    ]);
    expect(create.code, create.stderr).toBe(0);
    const scope = await dockerd.docker([
      "volume",
      "inspect",
      "--format",
      "{{.Driver}} {{.Scope}}",
      `${plugin}-v`,
    ]);
    expect(scope.stdout.trim()).toBe(`${plugin} global`);
    const write = await dockerd.docker([
      "run",
      "--rm",
      "--network",
      "none",
      "-v",
      `${plugin}-v:/data`,
      dockerd.image,
      "sh",
      "-c",
      `echo ${plugin} > /data/${plugin}.txt`,
    ]);
    expect(write.code, write.stderr).toBe(0);
    expect(await readFile(join(remote, `${plugin}.txt`), "utf8")).toBe(`${plugin}\n`);
    expect((await dockerd.docker(["volume", "rm", `${plugin}-v`])).code).toBe(0);
  }

  /** dockerd reads .spec and .json files from /etc/docker/plugins (sockets only from /run/docker/plugins). */
  async function specFile(name: string, text: string): Promise<void> {
    const path = join(SPEC_DIR, name);
    await mkdir(SPEC_DIR, { recursive: true });
    await writeFile(path, text);
    cleanups.push(() => rm(path, { force: true }));
  }

  async function daemon(env: Record<string, string>): Promise<Volgate> {
    const v = await startVolgate({ env });
    cleanups.push(() => v.stop());
    return v;
  }

  it("finds volgate through a .spec file on plain TCP the operator allowed", async () => {
    const plugin = uniquePluginName();
    const port = await freePort();
    const v = await daemon({ VOLGATE_LISTEN: `tcp://127.0.0.1:${port}`, VOLGATE_INSECURE_TCP: "true" });
    await specFile(`${plugin}.spec`, `tcp://127.0.0.1:${port}\n`);
    await writesThrough(plugin, v.secretsDir);
  });

  it("finds volgate through a .json file with mutual TLS", async () => {
    const plugin = uniquePluginName();
    const port = await freePort();
    const pki = await makePki(join(dockerd.dir, `pki-${plugin}`));
    const v = await daemon({
      VOLGATE_LISTEN: `tcp://127.0.0.1:${port}`,
      VOLGATE_TLS_CERT: pki.serverCert,
      VOLGATE_TLS_KEY: pki.serverKey,
      VOLGATE_TLS_CA: pki.ca,
    });
    const spec = {
      Name: plugin,
      Addr: `https://127.0.0.1:${port}`,
      TLSConfig: {
        InsecureSkipVerify: false,
        CAFile: pki.ca,
        CertFile: pki.clientCert,
        KeyFile: pki.clientKey,
      },
    };
    await specFile(`${plugin}.json`, JSON.stringify(spec));
    await writesThrough(plugin, v.secretsDir);
  });

  it("starts on the first connection to a socket systemd holds (LISTEN_FDS)", async () => {
    const plugin = uniquePluginName();
    const socket = join(PLUGIN_SOCKET_DIR, `${plugin}.sock`);
    const dir = join(dockerd.dir, `activated-${plugin}`);
    const env = {
      VOLGATE_ROOT: join(dir, "root"),
      VOLGATE_STATE_DIR: join(dir, "state"),
      VOLGATE_SECRETS_DIR: join(dir, "secrets"),
      VOLGATE_LOG_FORMAT: "json",
    };
    const args = ["-l", socket, ...Object.entries(env).flatMap(([k, v]) => ["-E", `${k}=${v}`])];
    const child: ChildProcess = spawn(
      "systemd-socket-activate",
      [...args, process.execPath, VOLGATE_BUNDLE],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on("data", (d: Buffer) => {
      output += d.toString();
    });
    cleanups.push(async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await rm(socket, { force: true });
      await removeDirSafely(dir);
    });
    for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
    expect(output).not.toContain('"listening"'); // nothing runs until Docker connects
    await writesThrough(plugin, env.VOLGATE_SECRETS_DIR);
    expect(output).toContain("systemd socket (fd 3)");
  });
});
