/**
 * No secret at rest after a crash: the built daemon is killed (SIGKILL) while s3fs is mounting a
 * volume against a real S3 server, its passwd file (the secret key) in the work dir; when it starts
 * again, the file is gone before the socket answers its first request.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../support/client.ts";
import { tierCanRun } from "../support/prereq.ts";
import { eventually } from "../support/procs.ts";
import { writeProfile } from "../support/profile.ts";
import { startS3, type TestS3 } from "../support/s3.ts";
import { type StallingS3, stallingS3 } from "../support/s3-stall.ts";
import { startVolgate, type Volgate } from "../support/volgate.ts";

const extra = [
  ...(process.getuid?.() === 0 ? [] : ["root"]),
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
];
const canRun = tierCanRun("crash secrets", ["s3fs"], extra);

const BUCKET = "volgate-crash";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(canRun)("a crash while s3fs mounts", () => {
  let s3: TestS3;
  let stall: StallingS3;
  let v: Volgate;
  const workDir = () => join(v.stateDir, "work");
  const passwdFiles = async () => (await readdir(workDir())).filter((f) => f.endsWith(".passwd"));

  beforeAll(async () => {
    s3 = await startS3([BUCKET]);
    // Lookups under held/ hang while holding: s3fs's proof of its mount then waits, passwd file written.
    stall = await stallingS3(s3.port, "held");
    stall.holding = false;
    v = await startVolgate({ env: { VOLGATE_MOUNT_TIMEOUT: "20" } });
    await writeProfile(v.secretsDir, "s3", {
      access_key_id: s3.accessKeyId,
      secret_access_key: s3.secretAccessKey,
    });
  });

  afterAll(async () => {
    await stall?.close();
    await v?.stop();
    await s3?.stop();
  });

  it("leaves no passwd file once it starts again: removed before the socket answers", async () => {
    const opts = {
      backend: "s3fs",
      bucket: BUCKET,
      endpoint: stall.endpoint,
      prefix: "held/vol",
      create: "true",
    };
    const created = await call(v.socket, "/VolumeDriver.Create", {
      Name: "crash",
      Opts: { ...opts, credentials: "s3" },
    });
    expect(created.json).toEqual({});
    stall.holding = true;
    const mounting = call(v.socket, "/VolumeDriver.Mount", { Name: "crash", ID: "m1" }).catch(
      () => undefined,
    );
    expect(await eventually(async () => stall.held.length > 0, 15_000)).toBe(true);
    const left = await passwdFiles();
    expect(left).toHaveLength(1);
    const secretFile = join(workDir(), left[0] ?? "");
    expect(await readFile(secretFile, "utf8")).toContain(s3.secretAccessKey);

    const killed = await v.kill("SIGKILL");
    expect(killed.signal).toBe("SIGKILL");
    await mounting;
    expect(existsSync(secretFile)).toBe(true);

    // Start again; the first answer of the socket must find the file gone.
    const restarting = v.restart();
    let answered = false;
    for (let i = 0; i < 2000 && !answered; i++) {
      answered = await call(v.socket, "/Plugin.Activate").then(
        () => true,
        () => false,
      );
      if (!answered) await sleep(5);
    }
    const goneAtFirstAnswer = !existsSync(secretFile);
    await restarting;
    expect(answered).toBe(true);
    expect(goneAtFirstAnswer).toBe(true);
    expect(await passwdFiles()).toEqual([]);
    const warned = await v.waitForLog((l) => l.msg === "removed secret files a crash left in the work dir");
    expect(warned.files).toEqual(left);
    expect(v.output()).not.toContain(s3.secretAccessKey);
  });
});
