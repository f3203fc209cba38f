/**
 * The built daemon as a process: start-up time with many volumes whose backends
 * are unreachable, SIGTERM with requests in flight, configuration errors, and
 * every way it listens (unix socket, systemd socket activation, mutual TLS).
 */
import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readState } from "../../src/state/load.ts";
import { call } from "../support/client.ts";
import { tierCanRun } from "../support/prereq.ts";
import { freePort } from "../support/sshd.ts";
import { makePki } from "../support/tls.ts";
import { startVolgate, VOLGATE_BUNDLE, type Volgate } from "../support/volgate.ts";

const exec = promisify(execFile);
const canRun = tierCanRun("daemon", ["systemd-socket-activate", "openssl"]);

/** 1,000 sshfs volumes, all counted as mounted, all pointing at a port nothing listens on. */
function unreachableState(count: number) {
  const volumes = Array.from({ length: count }, (_, i) => ({
    name: `vol${i}`,
    backend: "sshfs",
    options: {
      backend: "sshfs",
      host: "127.0.0.1",
      port: "1",
      user: "nobody",
      path: "/x",
      credentials: "none",
    },
    createdAt: new Date(1_700_000_000_000 + i).toISOString(),
    subdir: "x",
    mounts: { [`container${i}`]: 1 },
  }));
  return JSON.stringify({ version: 1, volumes });
}

describe.runIf(canRun)("daemon process", () => {
  let v: Volgate;
  beforeAll(async () => {
    v = await startVolgate();
  });
  afterAll(async () => {
    await v?.stop();
  });

  it("listens on a 0660 unix socket", async () => {
    expect((await stat(v.socket)).mode & 0o777).toBe(0o660);
    expect((await call(v.socket, "/Plugin.Activate")).json).toEqual({ Implements: ["VolumeDriver"] });
  });

  it("drops a client that trickles its request once the 10 s request timeout passes: 408 and an Err", async () => {
    const c = connect(v.socket);
    let got = "";
    c.on("data", (d: Buffer) => {
      got += d.toString();
    });
    c.on("error", () => {});
    const started = performance.now();
    const head = "POST /VolumeDriver.Get HTTP/1.1\r\nHost: plugin\r\n";
    let sent = 0;
    const trickle = setInterval(() => c.write(head[sent++ % head.length] ?? "x"), 500);
    await new Promise((r) => c.once("close", r));
    clearInterval(trickle);
    const ms = performance.now() - started;
    console.log(`trickling client dropped after ${Math.round(ms)} ms (${sent} bytes sent)`);
    // Node checks its request timeouts every 30 s unless told otherwise: dropped after 30 s, not 10.
    expect(ms).toBeGreaterThan(9_500);
    expect(ms).toBeLessThan(12_500);
    expect(got).toMatch(/^HTTP\/1\.1 408 /);
    expect(got).toContain('{"Err":"the request did not arrive whole in time: send it at once"}');
  }, 30_000);

  it("listens in under 1 s with 1,000 volumes whose backends are unreachable, and answers at once", async () => {
    await v.kill("SIGTERM");
    await writeFile(join(v.stateDir, "state.json"), unreachableState(1000), { mode: 0o600 });
    const listenMs = await v.restart();
    console.log(`listening after ${listenMs.toFixed(0)} ms with 1,000 volumes`);
    expect(listenMs).toBeLessThan(1000);
    const listed = await call(v.socket, "/VolumeDriver.List", {});
    expect(listed.json.Volumes).toHaveLength(1000);
    const got = await call(v.socket, "/VolumeDriver.Get", { Name: "vol7" });
    expect(got.json.Volume.CreatedAt).toBe(new Date(1_700_000_000_007).toISOString());
    const reconciled = await v.waitForLog(
      (l) => l.msg === "reconciled mounts after start" && l.failed > 0,
      60_000,
    );
    expect(reconciled).toMatchObject({ failed: 1000, remounted: 0 });
    const status = (await call(v.socket, "/VolumeDriver.Get", { Name: "vol7" })).json.Volume.Status;
    expect(status).toMatchObject({ mounted: true, health: "down", lastError: expect.stringMatching(/none/) });
    // Docker may still send Unmount for the old mount IDs: they work.
    expect((await call(v.socket, "/VolumeDriver.Unmount", { Name: "vol7", ID: "container7" })).status).toBe(
      200,
    );
  }, 90_000);

  it("exits within 10 s of SIGTERM with requests in flight, state saved", async () => {
    const inFlight = Array.from({ length: 20 }, (_, i) =>
      call(v.socket, "/VolumeDriver.Unmount", { Name: `vol${i + 100}`, ID: `container${i + 100}` }).catch(
        () => undefined,
      ),
    );
    await new Promise((r) => setTimeout(r, 5));
    const ended = await v.kill("SIGTERM");
    await Promise.all(inFlight);
    expect(ended.code).toBe(0);
    expect(ended.ms).toBeLessThan(10_000);
    const state = { volumes: [...(await readState(v.stateDir)).values()] };
    expect(state.volumes).toHaveLength(1000);
    expect(state.volumes.find((x) => x.name === "vol7")?.mounts).toEqual({});
    await v.restart();
  });
});

describe.runIf(canRun)("configuration and listening", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "volgate-listen-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const baseEnv = () => ({
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    VOLGATE_ROOT: join(dir, "root"),
    VOLGATE_STATE_DIR: join(dir, "state"),
    VOLGATE_SECRETS_DIR: join(dir, "secrets"),
    VOLGATE_LOG_FORMAT: "json",
  });

  it("prints every setting with --help", async () => {
    const { stdout } = await exec(process.execPath, [VOLGATE_BUNDLE, "--help"]);
    expect(stdout).toContain("VOLGATE_MOUNT_TIMEOUT");
    expect(stdout).toContain("VOLGATE_ALLOW_INLINE_SECRETS");
  });

  it("refuses a bad setting with exit code 2 and says which", async () => {
    const failed = await exec(process.execPath, [VOLGATE_BUNDLE], {
      env: { ...baseEnv(), VOLGATE_MOUNT_TIMEOUT: "99" },
    }).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/VOLGATE_MOUNT_TIMEOUT: must be a whole number of seconds from 1 to 28/),
    });
  });

  it("never listens on TCP without TLS unless told to", async () => {
    const env = { ...baseEnv(), VOLGATE_LISTEN: `tcp://127.0.0.1:${await freePort()}` };
    const failed = await exec(process.execPath, [VOLGATE_BUNDLE], { env }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(failed).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/needs TLS: set VOLGATE_TLS_CERT/),
    });
  });

  it("takes its socket from systemd (LISTEN_FDS)", async () => {
    const socket = join(dir, "activated.sock");
    const child = spawn(
      "systemd-socket-activate",
      [
        "-l",
        socket,
        ...Object.entries(baseEnv()).flatMap(([k, val]) => ["-E", `${k}=${val}`]),
        process.execPath,
        VOLGATE_BUNDLE,
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    try {
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      for (let i = 0; i < 50 && !out.includes("Listening on"); i++)
        await new Promise((r) => setTimeout(r, 50));
      child.stderr.on("data", (d: Buffer) => {
        out += d.toString();
      });
      const answer = await call(socket, "/Plugin.Activate");
      expect(answer.json).toEqual({ Implements: ["VolumeDriver"] });
      expect(out).toContain("systemd socket (fd 3)");
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });

  it("serves mutual TLS on TCP and refuses clients without a certificate", async () => {
    const pki = await makePki(join(dir, "tls"));
    const port = await freePort();
    const env = {
      ...baseEnv(),
      VOLGATE_LISTEN: `tcp://127.0.0.1:${port}`,
      VOLGATE_TLS_CERT: pki.serverCert,
      VOLGATE_TLS_KEY: pki.serverKey,
      VOLGATE_TLS_CA: pki.ca,
    };
    const child = spawn(process.execPath, [VOLGATE_BUNDLE], { env, stdio: ["ignore", "pipe", "inherit"] });
    try {
      await new Promise<void>((resolve) => {
        child.stdout.on("data", (d: Buffer) => {
          if (d.toString().includes('"listening"')) resolve();
        });
      });
      const ca = await readFile(pki.ca);
      const post = (withCert: boolean) =>
        new Promise<string>((resolve, reject) => {
          const req = request(
            {
              host: "127.0.0.1",
              port,
              path: "/VolumeDriver.Capabilities",
              method: "POST",
              ca,
              ...(withCert && {
                cert: readFileSync(pki.clientCert),
                key: readFileSync(pki.clientKey),
              }),
            },
            (res) => {
              let text = "";
              res.on("data", (d: Buffer) => {
                text += d.toString();
              });
              res.on("end", () => resolve(text));
            },
          );
          req.on("error", reject);
          req.end();
        });
      expect(await post(true)).toBe('{"Capabilities":{"Scope":"global"}}');
      await expect(post(false)).rejects.toThrow(/certificate|socket hang up|ECONNRESET|alert/i);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });
});
