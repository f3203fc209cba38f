/**
 * The s3fs backend end to end: a private dockerd, volgate on a legacy socket, s3rver on
 * 127.0.0.1. A container writes, the object lands in the bucket, another container reads it,
 * and common mistakes fail at `docker volume create` with their own message.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Dockerd,
  optionArgs,
  pluginSocketPath,
  startDockerd,
  uniquePluginName,
} from "../support/dockerd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { startS3, type TestS3, writeS3Profile } from "../support/s3.ts";
import { startVolgate, type Volgate } from "../support/volgate.ts";

const missing = process.getuid?.() === 0 && existsSync("/dev/fuse") ? [] : ["root and /dev/fuse"];
const canRun = tierCanRun("e2e s3fs (dockerd)", ["dockerd", "s3fs"], missing);

describe.skipIf(!canRun)("s3fs volumes through a real dockerd", () => {
  const plugin = uniquePluginName();
  let s3: TestS3;
  let volgate: Volgate;
  let dockerd: Dockerd;

  const create = (name: string, opts: Record<string, string>) =>
    dockerd.docker([
      "volume",
      "create",
      "-d",
      plugin,
      ...optionArgs({ backend: "s3fs", endpoint: s3.endpoint, credentials: "s3", ...opts }),
      name,
    ]);
  const run = (volume: string, script: string) =>
    dockerd.docker([
      "run",
      "--rm",
      "--network",
      "none",
      "-v",
      `${volume}:/data`,
      dockerd.image,
      "sh",
      "-c",
      script,
    ]);

  beforeAll(async () => {
    s3 = await startS3(["e2e-bucket"]);
    volgate = await startVolgate({ socket: pluginSocketPath(plugin) });
    await writeS3Profile(volgate.secretsDir, "s3", {
      access_key_id: s3.accessKeyId,
      secret_access_key: s3.secretAccessKey,
    });
    await writeS3Profile(volgate.secretsDir, "nobody", {
      access_key_id: "NOSUCHKEY",
      secret_access_key: "whatever-secret",
    });
    dockerd = await startDockerd();
  });
  afterAll(async () => {
    await dockerd?.stop();
    await volgate?.stop();
    await s3?.stop();
  });

  it("writes from one container and reads from another; the object is in the bucket", async () => {
    const created = await create("s3v", { bucket: "e2e-bucket", prefix: "app1", create: "true" });
    expect(created.code, created.stderr).toBe(0);
    expect((await dockerd.docker(["volume", "inspect", "--format", "{{.Scope}}", "s3v"])).stdout.trim()).toBe(
      "global",
    );
    const written = await run("s3v", "echo from-s3 > /data/hello.txt");
    expect(written.code, written.stderr).toBe(0);
    expect(await readFile(s3.objectFile("e2e-bucket", "app1/hello.txt"), "utf8")).toBe("from-s3\n");
    const read = await run("s3v", "cat /data/hello.txt");
    expect(read.stdout).toBe("from-s3\n");
    const inspect = (await dockerd.docker(["volume", "inspect", "s3v"])).stdout;
    expect(inspect).toContain('"backend": "s3fs"');
    expect(inspect + volgate.output()).not.toContain(s3.secretAccessKey);
    expect((await dockerd.docker(["volume", "rm", "s3v"])).code).toBe(0);
    expect(existsSync(s3.objectFile("e2e-bucket", "app1/hello.txt"))).toBe(true); // remove never deletes data
  });

  it.each([
    ["a missing bucket", { bucket: "no-such-bucket" }, /bucket no-such-bucket does not exist/],
    ["an unknown access key", { bucket: "e2e-bucket", credentials: "nobody" }, /access denied/i],
    ["a missing prefix without create", { bucket: "e2e-bucket", prefix: "nothing-here" }, /create=true/],
    ["a dangerous option", { bucket: "e2e-bucket", passwd_file: "/etc/shadow" }, /passwd_file/],
  ])("refuses %s at create", async (_what, opts, message) => {
    const created = await create("s3bad", opts);
    expect(created.code).not.toBe(0);
    expect(created.stderr).toMatch(message);
    expect(
      (await dockerd.docker(["volume", "ls", "-q", "--filter", `driver=${plugin}`])).stdout,
    ).not.toContain("s3bad");
  });
});
