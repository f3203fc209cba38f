/**
 * The s3fs backend against a real S3 server (s3rver on 127.0.0.1), with the real runner,
 * real s3fs/FUSE mounts and the real mount table. Needs root and /dev/fuse.
 *
 * The "s3fs itself" cases start s3fs under supervision directly (s3fs/start.ts, with the keys
 * s3fs/access.ts reads): through the Backend, mount asks S3 first and never lets s3fs meet a
 * refused endpoint, a missing bucket or an unknown key, which is how s3fs's own lies are seen.
 */
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Options } from "../../../src/backends/backend.ts";
import { resolveAccess } from "../../../src/backends/s3fs/access.ts";
import { s3fsBackend } from "../../../src/backends/s3fs/index.ts";
import { startS3fs } from "../../../src/backends/s3fs/start.ts";
import { Deadline } from "../../../src/deadline.ts";
import type { BackendContext } from "../../../src/host.ts";
import { failure } from "../../support/expect-error.ts";
import { type Machine, realMachine, targetAt } from "../../support/machine.ts";
import { freePort, silentServers } from "../../support/peer.ts";
import { tierCanRun } from "../../support/prereq.ts";
import { eventually, helpersFor, mountEntry, processes } from "../../support/procs.ts";
import { writeProfile } from "../../support/profile.ts";
import { startS3, type TestS3 } from "../../support/s3.ts";
import { stallingS3 } from "../../support/s3-stall.ts";

const exec = promisify(execFile);

const extra = [
  ...(process.getuid?.() === 0 ? [] : ["root"]),
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
];
const canRun = tierCanRun("s3fs integration", ["s3fs"], extra);

const BUCKET = "volgate-it";

const s3fsFor = (target: string) => helpersFor("s3fs", target);

const md5 = (data: Buffer) => createHash("md5").update(data).digest("hex");
const mibps = (bytes: number, ms: number) => (bytes / 1048576 / (ms / 1000)).toFixed(1);

describe.skipIf(!canRun)("s3fs backend against s3rver", () => {
  let s3: TestS3;
  let sdk: S3Client;
  let machine: Machine;
  let root: string;
  let ctx: BackendContext;
  let secretsDir: string;
  let logs: ReadonlyArray<Record<string, unknown>>;
  const silent = silentServers();

  const opts = (o: Options): Options => ({ bucket: BUCKET, endpoint: s3.endpoint, credentials: "s3", ...o });
  const newTarget = () => machine.harness.newTarget();
  const exists = (key: string) =>
    sdk.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(
      () => true,
      () => false,
    );

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    sdk = new S3Client({
      endpoint: s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    machine = await realMachine("s3fs");
    ({ root, secretsDir } = machine);
    ({ ctx, logs } = machine.harness);
    await writeProfile(secretsDir, "s3", {
      access_key_id: `${s3.accessKeyId}\n`,
      secret_access_key: `${s3.secretAccessKey}\n`,
    });
    await writeProfile(secretsDir, "stranger", {
      access_key_id: "AKIASTRANGER0000",
      secret_access_key: "stranger-secret-77",
    });
    await sdk.send(new PutObjectCommand({ Bucket: BUCKET, Key: "existing/keep.txt", Body: "kept" }));
  });

  afterAll(async () => {
    silent.close();
    sdk?.destroy();
    await s3?.stop();
    await machine?.close();
  });

  describe("preflight", () => {
    it("accepts an existing bucket and prefix, and returns the prefix as the volume's directory", async () => {
      const spec = s3fsBackend.parse(opts({ prefix: "/existing/" }));
      const started = Date.now();
      expect(await s3fsBackend.preflight(spec, ctx, Deadline.after(10_000))).toBe("existing");
      console.log(`s3 preflight: ${Date.now() - started} ms`);
      expect(await s3fsBackend.preflight(s3fsBackend.parse(opts({})), ctx, Deadline.after(10_000))).toBe("");
    });

    it("warns that a plain http endpoint is unencrypted", () => {
      expect(logs.some((l) => l.level === 40 && String(l.msg).includes("plain http"))).toBe(true);
    });

    it("works with inline keys too", async () => {
      const spec = s3fsBackend.parse({
        bucket: BUCKET,
        endpoint: s3.endpoint,
        prefix: "existing",
        access_key_id: s3.accessKeyId,
        secret_access_key: s3.secretAccessKey,
      });
      expect(await s3fsBackend.preflight(spec, ctx, Deadline.after(10_000))).toBe("existing");
    });

    it("reports a missing bucket", async () => {
      const spec = s3fsBackend.parse(opts({ bucket: "no-such-bucket", prefix: "x" }));
      const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.kind).toBe("invalid");
      expect(err.message).toBe(
        `bucket no-such-bucket does not exist at ${s3.endpoint}: create it or check -o bucket`,
      );
    });

    it("reports an unknown access key as access denied, naming the profile and no secret", async () => {
      const spec = s3fsBackend.parse(opts({ credentials: "stranger", prefix: "existing" }));
      const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.message).toBe(
        `access denied to bucket ${BUCKET}: check the access key in credentials profile "stranger", and that it may use this bucket`,
      );
      expect(err.message).not.toContain("stranger-secret-77");
    });

    it("reports a refused endpoint as unreachable", async () => {
      const port = await freePort();
      const spec = s3fsBackend.parse(opts({ endpoint: `http://127.0.0.1:${port}` }));
      const started = Date.now();
      const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      console.log(`s3 preflight, refused: ${Date.now() - started} ms`);
      expect(err.message).toBe(
        `cannot reach S3 endpoint http://127.0.0.1:${port}: connection refused (is the S3 server running there, on that port?)`,
      );
    });

    it("probe (the health check's question to S3): quiet while S3 answers, says why when it does not", async () => {
      await s3fsBackend.probe?.(s3fsBackend.parse(opts({})), ctx, Deadline.after(2000));
      const port = await freePort();
      const gone = s3fsBackend.parse(opts({ endpoint: `http://127.0.0.1:${port}` }));
      const err = await failure(s3fsBackend.probe?.(gone, ctx, Deadline.after(2000)) ?? Promise.resolve());
      expect(err.message).toBe(
        `cannot reach S3 endpoint http://127.0.0.1:${port}: connection refused (is the S3 server running there, on that port?)`,
      );
      const silentPort = await silent.open();
      const hung = s3fsBackend.parse(opts({ endpoint: `http://127.0.0.1:${silentPort}` }));
      const started = Date.now();
      await failure(s3fsBackend.probe?.(hung, ctx, Deadline.after(500)) ?? Promise.resolve());
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it("gives up at the deadline on an endpoint that never answers", async () => {
      const port = await silent.open();
      const spec = s3fsBackend.parse(opts({ endpoint: `http://127.0.0.1:${port}` }));
      const started = Date.now();
      const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(1500)));
      const elapsed = Date.now() - started;
      expect(err.kind).toBe("timeout");
      expect(err.message).toBe(
        `S3 check of http://127.0.0.1:${port} timed out after 1.5s: check that it is reachable`,
      );
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThan(3000);
    });

    it("keeps each call's own deadline on a client it reuses", async () => {
      const port = await silent.open();
      const spec = s3fsBackend.parse(opts({ endpoint: `http://127.0.0.1:${port}` }));
      for (const ms of [1500, 600]) {
        const started = Date.now();
        const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(ms)));
        const elapsed = Date.now() - started;
        expect(err.kind).toBe("timeout");
        expect(elapsed).toBeGreaterThanOrEqual(ms - 100);
        expect(elapsed).toBeLessThan(ms + 1000);
      }
    });

    // s3rver checks the access key, not the signature: a rotated secret alone is covered by the unit tests.
    it("uses rotated keys on the next call", async () => {
      await writeProfile(secretsDir, "rotating", {
        access_key_id: s3.accessKeyId,
        secret_access_key: s3.secretAccessKey,
      });
      const spec = s3fsBackend.parse(opts({ credentials: "rotating", prefix: "existing" }));
      expect(await s3fsBackend.preflight(spec, ctx, Deadline.after(10_000))).toBe("existing");
      await writeProfile(secretsDir, "rotating", {
        access_key_id: "AKIAROTATED",
        secret_access_key: "not-the-secret-41",
      });
      const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.message).toMatch(/credentials profile "rotating"/);
      expect(err.message).not.toContain("not-the-secret-41");
      await writeProfile(secretsDir, "rotating", {
        access_key_id: s3.accessKeyId,
        secret_access_key: s3.secretAccessKey,
      });
      expect(await s3fsBackend.preflight(spec, ctx, Deadline.after(10_000))).toBe("existing");
    });

    it("stops when the request is aborted", async () => {
      const port = await silent.open();
      const spec = s3fsBackend.parse(opts({ endpoint: `http://127.0.0.1:${port}` }));
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const started = Date.now();
      const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(20_000, controller.signal)));
      expect(err.kind).toBe("timeout");
      expect(err.message).toMatch(/cancelled/);
      expect(Date.now() - started).toBeLessThan(2000);
    });

    it("reports a missing prefix, and create=true makes it as a directory marker", async () => {
      const missing = s3fsBackend.parse(opts({ prefix: "new/vol-a" }));
      const err = await failure(s3fsBackend.preflight(missing, ctx, Deadline.after(10_000)));
      expect(err.kind).toBe("invalid");
      expect(err.message).toBe(
        `directory new/vol-a does not exist in bucket ${BUCKET} at ${s3.endpoint}: create it or pass -o create=true`,
      );
      expect(await exists("new/vol-a/")).toBe(false);

      const create = s3fsBackend.parse(opts({ prefix: "new/vol-a", create: "true" }));
      expect(await s3fsBackend.preflight(create, ctx, Deadline.after(10_000))).toBe("new/vol-a");
      const head = await sdk.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "new/vol-a/" }));
      expect(head.ContentLength).toBe(0);
      expect(head.Metadata?.mode).toBe(String(0o40755));
      // a second create is a no-op
      expect(await s3fsBackend.preflight(create, ctx, Deadline.after(10_000))).toBe("new/vol-a");
    });

    it("refuses a prefix that is a file", async () => {
      const spec = s3fsBackend.parse(opts({ prefix: "existing/keep.txt", create: "true" }));
      const err = await failure(s3fsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.message).toBe(
        `s3://${BUCKET}/existing/keep.txt is an object (a file), not a directory: pick another prefix`,
      );
    });
  });

  describe("mount", () => {
    let target: string;
    let prefix: string;

    it("mounts the bucket: a file written in the volume's directory becomes an object, and reads back", async () => {
      const spec = s3fsBackend.parse(opts({ prefix: "vols/one", create: "true" }));
      prefix = await s3fsBackend.preflight(spec, ctx, Deadline.after(10_000));
      target = await newTarget();
      const started = Date.now();
      await s3fsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000));
      console.log(`s3fs mount (HeadBucket + s3fs + proof): ${Date.now() - started} ms`);

      const entry = await mountEntry(target);
      expect(entry?.fsType).toBe("fuse.s3fs");
      expect(entry?.options.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
      expect(await ctx.mounts.probe(target)).toBe("live");
      const dir = await stat(join(target, prefix));
      expect(dir.isDirectory()).toBe(true);
      expect(dir.mode & 0o777).toBe(0o755);

      await writeFile(join(target, prefix, "hello.txt"), "through s3fs");
      expect(await readFile(s3.objectFile(BUCKET, "vols/one/hello.txt"), "utf8")).toBe("through s3fs");
      const got = await sdk.send(new GetObjectCommand({ Bucket: BUCKET, Key: "vols/one/hello.txt" }));
      expect(await got.Body?.transformToString()).toBe("through s3fs");
      expect(await readFile(join(target, prefix, "hello.txt"), "utf8")).toBe("through s3fs");
      // objects written by others show up too
      await sdk.send(new PutObjectCommand({ Bucket: BUCKET, Key: "vols/one/from-sdk.txt", Body: "sdk" }));
      expect(await readFile(join(target, prefix, "from-sdk.txt"), "utf8")).toBe("sdk");
    });

    it("keeps the secret off every command line and deletes its passwd file once mounted", async () => {
      const helpers = await s3fsFor(target);
      expect(helpers).toHaveLength(1);
      const cmdline = await readFile(`/proc/${helpers[0]?.pid}/cmdline`, "utf8");
      const passwd = /passwd_file=([^,\0]+)/.exec(cmdline)?.[1] ?? "";
      expect(passwd.startsWith(`${ctx.workDir}/s3fs-`)).toBe(true);
      expect(existsSync(passwd)).toBe(false);
      const withSecret = (await processes()).filter((p) => p.argv.join(" ").includes(s3.secretAccessKey));
      expect(withSecret).toEqual([]);
      // s3fs read the file once at start: without it, it still signs requests
      await writeFile(join(target, prefix, "after-delete.txt"), "still signed");
      expect(await readFile(s3.objectFile(BUCKET, "vols/one/after-delete.txt"), "utf8")).toBe("still signed");
    });

    it("measures write and read throughput through the mount (32 MiB)", async () => {
      const size = 32 * 1048576;
      const file = join(target, prefix, "big.bin");
      const data = randomBytes(size);
      const local = join(root, "big.bin");
      await writeFile(local, data);

      let started = Date.now();
      await exec("dd", [`if=${local}`, `of=${file}`, "bs=1M", "conv=fsync", "status=none"]);
      const writeMs = Date.now() - started;
      const stored = await readFile(s3.objectFile(BUCKET, "vols/one/big.bin"));
      expect(stored.length).toBe(size);
      expect(md5(stored)).toBe(md5(data));

      // read from a second, fresh connection, so nothing comes from the first one's caches
      const spec2 = s3fsBackend.parse(opts({ prefix: "vols/one", uid: "0" }));
      const target2 = await newTarget();
      await s3fsBackend.mount(spec2, targetAt(target2), ctx, Deadline.after(20_000));
      started = Date.now();
      const { stdout } = await exec("md5sum", [join(target2, prefix, "big.bin")]);
      const readMs = Date.now() - started;
      expect(stdout.split(" ")[0]).toBe(md5(data));
      console.log(
        `s3fs 32 MiB: write ${writeMs} ms (${mibps(size, writeMs)} MiB/s), read ${readMs} ms (${mibps(size, readMs)} MiB/s)`,
      );
      await exec("umount", [target2]);
      expect(await mountEntry(target2)).toBeUndefined();
      expect(await eventually(async () => (await s3fsFor(target2)).length === 0)).toBe(true);
    });

    it("renames a big file with norenameapi (s3rver has no UploadPartCopy)", async () => {
      const spec = s3fsBackend.parse(opts({ prefix: "vols/one", norenameapi: "true" }));
      const t = await newTarget();
      await s3fsBackend.mount(spec, targetAt(t), ctx, Deadline.after(20_000));
      expect((await mountEntry(t))?.fsType).toBe("fuse.s3fs");
      const cmdline = await readFile(`/proc/${(await s3fsFor(t))[0]?.pid}/cmdline`, "utf8");
      expect(cmdline).toContain(",norenameapi");
      const started = Date.now();
      await exec("mv", [join(t, prefix, "big.bin"), join(t, prefix, "big-renamed.bin")]);
      console.log(`s3fs rename of 32 MiB with norenameapi: ${Date.now() - started} ms`);
      expect((await stat(s3.objectFile(BUCKET, "vols/one/big-renamed.bin"))).size).toBe(32 * 1048576);
      expect(existsSync(s3.objectFile(BUCKET, "vols/one/big.bin"))).toBe(false);
      await exec("umount", [t]);
    });

    it("mounts a whole bucket (no prefix): the bucket root is the volume", async () => {
      const spec = s3fsBackend.parse(opts({ umask: "022" }));
      expect(await s3fsBackend.preflight(spec, ctx, Deadline.after(10_000))).toBe("");
      const t = await newTarget();
      await s3fsBackend.mount(spec, targetAt(t), ctx, Deadline.after(20_000));
      // s3rver lists a common prefix only when objects sit directly under it: "vols/" and "new/"
      // (whose objects are deeper) are missing from its listing, though they can be looked up.
      expect(await readdir(t)).toEqual(expect.arrayContaining(["existing"]));
      expect((await stat(join(t, "vols", "one"))).isDirectory()).toBe(true);
      // a prefix with objects under it but no marker object is a directory too
      expect((await stat(join(t, "existing"))).isDirectory()).toBe(true);
      await writeFile(join(t, "at-root.txt"), "root of the bucket");
      expect(await readFile(s3.objectFile(BUCKET, "at-root.txt"), "utf8")).toBe("root of the bucket");
      expect((await stat(t)).mode & 0o777).toBe(0o755);
      await exec("umount", [t]);
      expect(await mountEntry(t)).toBeUndefined();
    });

    it("s3fs itself against a refused endpoint hangs: killed at the deadline, nothing left", async () => {
      const port = await freePort();
      const spec = s3fsBackend.parse(opts({ endpoint: `http://127.0.0.1:${port}`, prefix: "vols/one" }));
      const t = await newTarget();
      const started = Date.now();
      const err = await failure(
        startS3fs(spec, await resolveAccess(spec, ctx), targetAt(t), ctx, Deadline.after(3000)),
      );
      const elapsed = Date.now() - started;
      console.log(`s3fs alone, refused endpoint: ${err.message} (${elapsed} ms)`);
      expect(err.kind).toBe("timeout");
      expect(err.message).toMatch(/^s3fs mount of .* timed out after 3s: /);
      expect(elapsed).toBeGreaterThanOrEqual(2900);
      expect(elapsed).toBeLessThan(6000);
      expect(await eventually(async () => (await mountEntry(t)) === undefined)).toBe(true);
      expect(await eventually(async () => (await s3fsFor(t)).length === 0)).toBe(true);
      // the daemon's own file I/O is not stuck behind the dead mount
      const at = Date.now();
      await writeFile(join(root, "probe.txt"), "x");
      expect(Date.now() - at).toBeLessThan(500);
    });

    it("with a work dir that cannot be written says so (not an internal error), leaving nothing", async () => {
      // Found by the fault suite (state dir read-only): the passwd file write was an internal error.
      const work = ctx.workDir;
      await exec("mount", ["--bind", work, work]);
      try {
        await exec("mount", ["-o", "remount,ro,bind", work]);
        const spec = s3fsBackend.parse(opts({ prefix: "vols/one" }));
        const t = await newTarget();
        const err = await failure(s3fsBackend.mount(spec, targetAt(t), ctx, Deadline.after(20_000)));
        expect(err.message).toBe(
          `cannot write volgate's work files in ${work} (EROFS: the file system is read-only): free space or make the directory writable, then try again`,
        );
        expect(await mountEntry(t)).toBeUndefined();
        expect(await s3fsFor(t)).toEqual([]);
      } finally {
        await exec("umount", [work]);
      }
    });

    it("a mount against a missing bucket fails at HeadBucket, and starts nothing", async () => {
      const spec = s3fsBackend.parse(opts({ bucket: "no-such-bucket", prefix: "x" }));
      const t = await newTarget();
      const err = await failure(s3fsBackend.mount(spec, targetAt(t), ctx, Deadline.after(20_000)));
      expect(err.message).toBe(
        `bucket no-such-bucket does not exist at ${s3.endpoint}: create it or check -o bucket`,
      );
      expect(await mountEntry(t)).toBeUndefined();
      expect(await s3fsFor(t)).toEqual([]);
    });

    it("s3fs itself against a missing bucket: exits 0, quoted, nothing mounted, no process left", async () => {
      const spec = s3fsBackend.parse(opts({ bucket: "no-such-bucket", prefix: "x" }));
      const t = await newTarget();
      const started = Date.now();
      const err = await failure(
        startS3fs(spec, await resolveAccess(spec, ctx), targetAt(t), ctx, Deadline.after(20_000)),
      );
      console.log(`s3fs alone, missing bucket: ${err.message} (${Date.now() - started} ms)`);
      expect(err.kind).toBe("backend");
      expect(err.message).toContain(`bucket or key not found(host=${s3.endpoint})`);
      expect(err.message).toContain(`bucket no-such-bucket does not exist at ${s3.endpoint}`);
      expect(await mountEntry(t)).toBeUndefined();
      expect(await eventually(async () => (await s3fsFor(t)).length === 0)).toBe(true);
      expect((await readdir(ctx.workDir)).filter((f) => f.endsWith(".passwd"))).toEqual([]);
    });

    it("s3fs itself with an unknown key: mounts, then exits 0; seen through, nothing left", async () => {
      const spec = s3fsBackend.parse(opts({ credentials: "stranger", prefix: "vols/one" }));
      const t = await newTarget();
      const started = Date.now();
      const err = await failure(
        startS3fs(spec, await resolveAccess(spec, ctx), targetAt(t), ctx, Deadline.after(20_000)),
      );
      console.log(`s3fs alone, unknown key: ${err.message} (${Date.now() - started} ms)`);
      expect(err.kind).toBe("backend");
      expect(err.message).toContain(`invalid credentials(host=${s3.endpoint})`);
      expect(err.message).toContain('check credentials profile "stranger"');
      expect(err.message).not.toContain("stranger-secret-77");
      expect(await mountEntry(t)).toBeUndefined();
      expect(await eventually(async () => (await s3fsFor(t)).length === 0)).toBe(true);
    });

    it("lookups through s3fs that hang hold no thread of this process: four at once, files still answer", async () => {
      // A peer that answers HeadBucket and s3fs's own check, then never answers a lookup under `hang`.
      const stall = await stallingS3(s3.port, "hang");
      try {
        const spec = s3fsBackend.parse(opts({ endpoint: stall.endpoint, prefix: "hang/vol" }));
        const access = await resolveAccess(spec, ctx);
        const targets = await Promise.all([1, 2, 3, 4].map(() => newTarget()));
        const mounts = targets.map((t) =>
          failure(startS3fs(spec, access, targetAt(t), ctx, Deadline.after(6000))),
        );
        await eventually(async () => stall.held.length >= 4, 5000);
        // The proofs now wait on S3 in the kernel: in this process, libuv's four threads must be free.
        const at = Date.now();
        await writeFile(join(root, "pool-probe.txt"), "x");
        const localMs = Date.now() - at;
        const errors = await Promise.all(mounts);
        console.log(
          `4 s3fs proofs hung (${stall.held.length} lookups held): a local write took ${localMs} ms`,
        );
        expect(stall.held.length).toBeGreaterThanOrEqual(4);
        expect(localMs).toBeLessThan(500);
        for (const err of errors) {
          expect(err.kind).toBe("timeout");
          expect(err.message).toBe(
            `s3fs mount of s3://${BUCKET}/hang/vol @ ${stall.endpoint} timed out after 6s: no answer through the mount; check that ${stall.endpoint} is reachable, or raise VOLGATE_MOUNT_TIMEOUT`,
          );
        }
        for (const t of targets) {
          expect(await eventually(async () => (await mountEntry(t)) === undefined)).toBe(true);
          expect(await eventually(async () => (await s3fsFor(t)).length === 0)).toBe(true);
        }
      } finally {
        await stall.close();
      }
    });

    it("leaves no passwd file behind, whatever happened", async () => {
      const left = (await readdir(ctx.workDir)).filter((f) => f.endsWith(".passwd"));
      expect(left).toEqual([]);
      expect((await readdir(ctx.workDir)).filter((f) => f.endsWith(".log")).length).toBeGreaterThan(0);
    });
  });
});
