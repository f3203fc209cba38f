/**
 * The nfs checks' round trips (src/backends/nfs/preflight.ts): every file system call on an NFS
 * mount and every TCP connection is a round trip to the server, so the checks make none they do
 * not need. File system calls are counted through a wrapped node:fs/promises on a local directory.
 */
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseNfs } from "../../../../src/backends/nfs/options.ts";
import { checkReachable, ensureDirectory } from "../../../../src/backends/nfs/preflight.ts";
import { Deadline } from "../../../../src/deadline.ts";
import { type FakeEndpoint, fakeTcpPort } from "../../../fakes/endpoints.ts";

const calls = vi.hoisted(() => [] as string[]);

vi.mock("node:fs/promises", async (original) => {
  const fs = await original<typeof import("node:fs/promises")>();
  const counted =
    <A extends unknown[], R>(name: string, fn: (...a: A) => Promise<R>) =>
    (...a: A) => {
      calls.push(`${name} ${String(a[0])}`);
      return fn(...a);
    };
  return {
    ...fs,
    lstat: counted("lstat", fs.lstat),
    stat: counted("stat", fs.stat),
    realpath: counted("realpath", fs.realpath),
  };
});

describe("ensureDirectory", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "volgate-nfs-rt-"));
    await mkdir(join(root, "team/a"), { recursive: true });
    await symlink("team", join(root, "link"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const spec = (path: string) => parseNfs({ server: "nas", export: "/e", path });

  it("asks once per component (lstat), and stats only what a symlink leads to", async () => {
    calls.length = 0;
    await ensureDirectory(spec("team/a"), root, Deadline.after(2000));
    expect(calls).toEqual([`realpath ${root}`, `lstat ${root}/team`, `lstat ${root}/team/a`]);
    calls.length = 0;
    await ensureDirectory(spec("link/a"), root, Deadline.after(2000));
    expect(calls).toEqual([
      `realpath ${root}`,
      `lstat ${root}/link`,
      `realpath ${root}/link`,
      `stat ${root}/team`,
      `lstat ${root}/team/a`,
    ]);
  });
});

describe("checkReachable", () => {
  let nfsd: FakeEndpoint;
  beforeAll(async () => {
    nfsd = await fakeTcpPort();
  });
  afterAll(() => nfsd.close());

  it("opens the NFS and rpcbind connections of NFSv3 at once, not one after the other", async () => {
    const events: string[] = [];
    const connect = Socket.prototype.connect;
    const spy = vi.spyOn(Socket.prototype, "connect").mockImplementation(function (this: Socket, ...args) {
      const port = (args[0] as { port?: number }).port;
      events.push(`connect ${port}`);
      this.once("connect", () => events.push(`connected ${port}`));
      this.once("error", () => events.push(`failed ${port}`));
      return connect.apply(this, args as never);
    });
    try {
      const spec = parseNfs({ server: "127.0.0.1", export: "/e", vers: "3", nfs_opts: `port=${nfsd.port}` });
      // Whether rpcbind answers on this machine does not matter here: only the order does.
      await checkReachable(spec, Deadline.after(2000)).catch(() => {});
      expect(events.slice(0, 2)).toEqual([`connect ${nfsd.port}`, "connect 111"]);
    } finally {
      spy.mockRestore();
    }
  });
});
