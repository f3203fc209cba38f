/**
 * A private S3 server for the s3fs tiers: s3rver 3.7.1 as a child process on 127.0.0.1
 * (a port the kernel picks), its storage in a temp dir, the given buckets made at start.
 *
 * s3rver knows one account, access key S3RVER / secret S3RVER; it does not verify
 * secrets (any secret passes), only an unknown access key id gets 403. Its paged
 * ListObjectsV2 encrypts its continuation token with DES, which OpenSSL 3 (Node 20 and 24)
 * keeps in its legacy provider, hence NODE_OPTIONS.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { killOnExit, stopChild } from "./peer.ts";

export { writeProfile as writeS3Profile } from "./profile.ts";

export interface TestS3 {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly port: number;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** s3rver's storage root: `<dir>/<bucket>/<key>._S3rver_object`. */
  readonly dir: string;
  readonly buckets: readonly string[];
  /** Where s3rver keeps the bytes of `key` in `bucket`. */
  objectFile(bucket: string, key: string): string;
  /** What s3rver printed (its request log). */
  log(): string;
  /** Kill the server: the endpoint refuses connections; the stored objects stay. */
  down(): Promise<void>;
  /** Start it again after down(): same port, same storage. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

const S3RVER_KEY = "S3RVER";
const S3RVER_SECRET = "S3RVER";

const require = createRequire(import.meta.url);

export async function startS3(buckets: readonly string[] = ["volgate-test"]): Promise<TestS3> {
  const bin = require.resolve("s3rver/bin/s3rver.js");
  const dir = await mkdtemp(join(tmpdir(), "volgate-s3rver-"));
  let output = "";
  const MAX = 256 * 1024;
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-MAX);
  };

  /** Spawn s3rver on `port` (0: the kernel picks) and resolve with it and the port it listens on. */
  const launch = (wanted: number) => {
    const args = [bin, "-d", dir, "-a", "127.0.0.1", "-p", String(wanted)];
    for (const b of buckets) args.push("--configure-bucket", b);
    const child = spawn(process.execPath, args, {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NODE_OPTIONS: "--openssl-legacy-provider" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    killOnExit(child);
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const from = output.length;
    return new Promise<{ child: ChildProcess; port: number }>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error("s3rver did not start within 15s")), 15_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`${err.message}: ${output.trim()}`));
      };
      const onData = () => {
        const m = /S3rver listening on 127\.0\.0\.1:(\d+)/.exec(output.slice(from));
        if (!m) return;
        clearTimeout(timer);
        child.stdout?.off("data", onData);
        resolve({ child, port: Number(m[1]) });
      };
      child.stdout?.on("data", onData);
      child.once("exit", (code) => fail(new Error(`s3rver exited with code ${code}`)));
      child.once("error", fail);
    });
  };

  let { child, port } = await launch(0).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true });
    throw err;
  });

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    accessKeyId: S3RVER_KEY,
    secretAccessKey: S3RVER_SECRET,
    dir,
    buckets,
    objectFile: (bucket, key) => join(dir, bucket, `${key}._S3rver_object`),
    log: () => output,
    async down() {
      const c = child;
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGKILL");
      await exited;
    },
    async up() {
      ({ child, port } = await launch(port));
    },
    async stop() {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
