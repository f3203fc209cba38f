/**
 * The daemon bundle (dist/bundle/, npm run build) as it ships: what start-up loads, and that a
 * copy outside the checkout (no node_modules anywhere above it) runs on its own, lazy chunks and
 * pino's pretty-log worker included.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../support/client.ts";
import { writeProfile } from "../support/profile.ts";
import { VOLGATE_BUNDLE } from "../support/volgate.ts";

const BUNDLE_DIR = dirname(VOLGATE_BUNDLE);
/** Text only ssh2 / the AWS S3 client carry (ssh2's identification string, the SDK's command class). */
const SSH2 = "SSH-2.0-ssh2js";
const AWS_SDK = "HeadBucketCommand";

const read = (file: string) => readFileSync(join(BUNDLE_DIR, file), "utf8");
const staticImports = (code: string) =>
  [...code.matchAll(/(?:from|import)\s*"\.\/([^"]+\.mjs)"/g)].map((m) => m[1] as string);
const dynamicImports = (code: string) =>
  [...code.matchAll(/import\(\s*"\.\/([^"]+\.mjs)"\s*\)/g)].map((m) => m[1] as string);

/** Every file Node evaluates before volgate.mjs runs: it and its static imports, transitively. */
function startupFiles(): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const next of staticImports(read(file))) visit(next);
  };
  visit("volgate.mjs");
  return seen;
}

describe("daemon bundle", () => {
  beforeAll(() => {
    if (!existsSync(VOLGATE_BUNDLE)) throw new Error(`${VOLGATE_BUNDLE} is missing: npm run build`);
  });

  it("loads neither ssh2 nor the AWS SDK at start-up; both are chunks it imports on demand", () => {
    const startup = startupFiles();
    for (const file of startup) {
      expect(read(file), `${file} is loaded at start-up`).not.toContain(SSH2);
      expect(read(file), `${file} is loaded at start-up`).not.toContain(AWS_SDK);
    }
    const lazy = [...startup].flatMap((f) => dynamicImports(read(f)));
    expect(lazy.some((f) => read(f).includes(SSH2))).toBe(true);
    expect(lazy.some((f) => read(f).includes(AWS_SDK))).toBe(true);
  });

  describe("copied outside the checkout", () => {
    let dir = "";
    let child: ChildProcess | undefined;
    let output = "";
    const socket = () => join(dir, "volgate.sock");

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "volgate-bundle-"));
      await cp(BUNDLE_DIR, join(dir, "app"), { recursive: true });
      const secrets = join(dir, "secrets");
      await writeProfile(secrets, "ssh", {
        password: "not-used",
        known_hosts:
          "127.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
      });
      await writeProfile(secrets, "s3", { access_key_id: "AKIDEXAMPLE", secret_access_key: "not-used" });
      child = spawn(process.execPath, [join(dir, "app", "volgate.mjs")], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          VOLGATE_SOCKET: socket(),
          VOLGATE_ROOT: join(dir, "root"),
          VOLGATE_STATE_DIR: join(dir, "state"),
          VOLGATE_SECRETS_DIR: secrets,
          VOLGATE_LOG_FORMAT: "pretty",
          VOLGATE_MOUNT_TIMEOUT: "5",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const c = child;
      c.stderr?.on("data", (d: Buffer) => {
        output += d.toString();
      });
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" within 10 s:\n${output}`)), 10_000);
        c.once("exit", (code) => reject(new Error(`volgate exited (${code}):\n${output}`)));
        c.stdout?.on("data", (d: Buffer) => {
          output += d.toString();
          if (/INFO.*listening/.test(output)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
    });

    afterAll(async () => {
      child?.kill("SIGTERM");
      if (child && child.exitCode === null) await new Promise((r) => child?.once("exit", r));
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it("logs through pino's pretty worker (its own file in the bundle)", () => {
      expect(output).toMatch(/INFO.*\(volgate\).*listening/);
      expect(output).not.toMatch(/Error|unable to determine transport target/);
    });

    it("loads the ssh2 chunk for an sshfs Create and reports the unreachable server", async () => {
      const r = await call(socket(), "/VolumeDriver.Create", {
        Name: "s1",
        Opts: { backend: "sshfs", host: "127.0.0.1", port: "1", user: "u", path: "/x", credentials: "ssh" },
      });
      // ssh2's connection error, as the preflight in that chunk words it
      expect(r.json.Err).toMatch(/^cannot connect to 127\.0\.0\.1:1: connection refused/);
    });

    it("loads the etcd client chunk (and its gRPC definitions) in catalog mode and reports an unreachable catalog", async () => {
      const catalog = join(dir, "catalog");
      const etcd = spawn(process.execPath, [join(dir, "app", "volgate.mjs")], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          VOLGATE_SOCKET: join(catalog, "volgate.sock"),
          VOLGATE_ROOT: join(catalog, "root"),
          VOLGATE_STATE_DIR: join(catalog, "state"),
          VOLGATE_SECRETS_DIR: join(dir, "secrets"),
          VOLGATE_LOG_FORMAT: "json",
          VOLGATE_CATALOG: "etcd://127.0.0.1:1",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let log = "";
      etcd.stdout?.on("data", (d: Buffer) => {
        log += d.toString();
      });
      etcd.stderr?.on("data", (d: Buffer) => {
        log += d.toString();
      });
      try {
        let err = "";
        for (let i = 0; i < 100 && !/is unreachable/.test(err); i++) {
          await new Promise((r) => setTimeout(r, 100));
          const r = await call(join(catalog, "volgate.sock"), "/VolumeDriver.Create", {
            Name: "c1",
            Opts: { backend: "nfs", server: "127.0.0.1", export: "/x" },
          }).catch(() => undefined);
          err = r?.json.Err ?? "";
        }
        // The client loaded and tried (a missing rpc.proto would make the catalog unusable instead).
        expect(err).toMatch(/^the volume catalog etcd:\/\/127\.0\.0\.1:1\/volgate\/ is unreachable/);
        expect(log).not.toMatch(/cannot use the volume catalog/);
      } finally {
        etcd.kill("SIGTERM");
        if (etcd.exitCode === null) await new Promise((r) => etcd.once("exit", r));
      }
    });

    it("loads the AWS SDK chunk for an s3fs Create and reports the unreachable endpoint", async () => {
      const r = await call(socket(), "/VolumeDriver.Create", {
        Name: "b1",
        Opts: {
          backend: "s3fs",
          endpoint: "http://127.0.0.1:1",
          bucket: "volgate-bucket",
          credentials: "s3",
        },
      });
      // the SDK's connection error, as the preflight in that chunk words it
      expect(r.json.Err).toMatch(/^cannot reach S3 endpoint http:\/\/127\.0\.0\.1:1: connection refused/);
    });
  });
});
