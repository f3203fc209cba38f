/**
 * The nfs checks' round trips (src/backends/nfs/preflight.ts): every file system call on an NFS
 * mount and every TCP connection is a round trip to the server, so the checks make none they do
 * not need. File calls (children through the runner, never the daemon's own threads) are counted
 * on a local directory.
 */
import { mkdir, mkdtemp, rm, symlink } from "node:fs/promises";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseNfs } from "../../../../src/backends/nfs/options.ts";
import { checkReachable, ensureDirectory } from "../../../../src/backends/nfs/preflight.ts";
import { type CommandRunner, createRunner } from "../../../../src/command.ts";
import { Deadline } from "../../../../src/deadline.ts";
import { type FakeEndpoint, fakeTcpPort } from "../../../fakes/endpoints.ts";

const calls: string[] = [];
/** The real runner, recording each file call a check makes through the mount (each a round trip). */
const runner: CommandRunner = (() => {
  const real = createRunner(tmpdir());
  return {
    run(file, args, options) {
      calls.push(`${file} ${args.at(-1)}`);
      return real.run(file, args, options);
    },
    start: real.start,
  };
})();

describe("ensureDirectory", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "volgate-nfs-rt-"));
    await mkdir(join(root, "team/a"), { recursive: true });
    await symlink("team", join(root, "link"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  const spec = (path: string) => parseNfs({ server: "nas", export: "/e", path });

  it("asks once per component, and looks again only at what a symlink leads to", async () => {
    calls.length = 0;
    await ensureDirectory(spec("team/a"), root, runner, Deadline.after(2000));
    expect(calls).toEqual([`realpath ${root}`, `stat ${root}/team`, `stat ${root}/team/a`]);
    calls.length = 0;
    await ensureDirectory(spec("link/a"), root, runner, Deadline.after(2000));
    expect(calls).toEqual([
      `realpath ${root}`,
      `stat ${root}/link`,
      `realpath ${root}/link`,
      `stat ${root}/team`,
      `stat ${root}/team/a`,
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
