/**
 * The nfs backend without a server: option parsing, the `local`/netshare aliases, the nfs_opts
 * allow-list and injection attempts, the connection key and mount argv; preflight and mount on the
 * fake host (the "export" is a local directory its mount fills), with a real TCP listener on
 * 127.0.0.1 standing in for the server's NFS port.
 */
import { lstat, mkdir, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Options } from "../../../src/backends/backend.ts";
import { nfsBackend } from "../../../src/backends/nfs/index.ts";
import type { CommandRunner } from "../../../src/command.ts";
import { Deadline } from "../../../src/deadline.ts";
import type { VolgateError } from "../../../src/errors.ts";
import type { BackendContext } from "../../../src/host.ts";
import { type FakeEndpoint, fakeTcpPort } from "../../fakes/endpoints.ts";
import { FakeHost } from "../../fakes/host.ts";
import { captureLog } from "../../fakes/log.ts";
import { failure, refusal } from "../../support/expect-error.ts";
import { fakeMachine, type Machine, targetAt } from "../../support/machine.ts";
import { freePort } from "../../support/peer.ts";

const parse = (o: Options) => nfsBackend.parse(o);

/** A TCP port on 127.0.0.1 standing in for the server's NFS port, and one where nothing listens. */
let nfsd: FakeEndpoint;
let port = 0;
let closedPort = 0;
beforeAll(async () => {
  nfsd = await fakeTcpPort();
  port = nfsd.port;
  closedPort = await freePort();
});
afterAll(() => nfsd.close());

/** Mount `o` at `target` on a new fake host; returns the host, after the mount. */
async function mountedOn(o: Options, target: string): Promise<FakeHost> {
  const host = new FakeHost();
  const ctx = host.context({ log: captureLog().log, secretsDir: "/nonexistent", workDir: "/nonexistent" });
  await nfsBackend.mount(parse(o), targetAt(target), ctx, Deadline.after(3000));
  return host;
}

/** The argv of the one `mount -t nfs` that mounting `o` at `target` runs. */
async function mountArgv(o: Options, target: string): Promise<readonly string[]> {
  const calls = (await mountedOn(o, target)).callsOf("mount");
  expect(calls).toHaveLength(1);
  return calls[0]?.args ?? [];
}
const base: Options = { server: "nas.example.com", export: "/exports/app" };
const parseError = (o: Options) => refusal(() => parse(o), `parse(${JSON.stringify(o)})`);

describe("parse", () => {
  it("types a minimal volume with the documented defaults (NFSv4, export root)", () => {
    expect(parse(base)).toEqual({
      server: "nas.example.com",
      export: "/exports/app",
      path: "",
      vers: "4",
      opts: [],
      readOnly: false,
      create: false,
    });
  });

  it("takes every option and normalizes server, paths and numbers", () => {
    const spec = parse({
      server: "NAS.Example.com",
      export: "//exports//app/",
      path: "/team/a/",
      vers: "4.1",
      nfs_opts:
        "hard,timeo=0600,retrans=3,rsize=1048576,wsize=65536,nconnect=4,proto=tcp,noac,lookupcache=none",
      ro: "",
      create: "true",
    });
    expect(spec).toEqual({
      server: "nas.example.com",
      export: "/exports/app",
      path: "team/a",
      vers: "4.1",
      opts: [
        "hard",
        "lookupcache=none",
        "nconnect=4",
        "noac",
        "proto=tcp",
        "retrans=3",
        "rsize=1048576",
        "timeo=600",
        "wsize=65536",
      ],
      readOnly: true,
      create: true,
    });
  });

  it("accepts each NFS version and nothing else", () => {
    for (const vers of ["3", "4", "4.0", "4.1", "4.2"]) expect(parse({ ...base, vers }).vers).toBe(vers);
    for (const vers of ["2", "4.3", "v4", "4.2 ", "", "4,suid"]) {
      expect(parseError({ ...base, vers }).message).toMatch(/is not an NFS version: use 3, 4, 4.0, 4.1, 4.2/);
    }
  });

  it("takes IPv4 and IPv6 servers, bare or bracketed, and drops redundant nosuid,nodev", () => {
    expect(parse({ ...base, server: "10.0.0.1" }).server).toBe("10.0.0.1");
    expect(parse({ ...base, server: "[FD00::1]" }).server).toBe("fd00::1");
    expect(parse({ ...base, server: "fd00::1" }).server).toBe("fd00::1");
    expect(parse({ ...base, nfs_opts: "nosuid,nodev,soft,soft," }).opts).toEqual(["soft"]);
  });

  it("refuses unknown options, listing what is allowed", () => {
    const err = parseError({ ...base, mountopts: "x" });
    expect(err.message).toMatch(
      /"mountopts" not allowed for backend nfs; allowed: .*nfs_opts.*server.*share/,
    );
  });

  it("refuses credentials, uid, gid, umask and allow_other with the reason", () => {
    expect(parseError({ ...base, credentials: "nas" }).message).toMatch(
      /credentials is not supported by backend nfs: NFS \(sec=sys\) has no login/,
    );
    for (const o of ["uid", "gid", "umask"]) {
      expect(parseError({ ...base, [o]: "1000" }).message).toMatch(
        new RegExp(`option ${o} is not supported by backend nfs: the kernel NFS client has no uid/gid/umask`),
      );
    }
    expect(parseError({ ...base, allow_other: "true" }).message).toMatch(/allow_other is a FUSE option/);
  });

  it("needs a server and an export, absolute", () => {
    expect(parseError({ export: "/x" }).message).toMatch(/needs option server/);
    expect(parseError({ server: "nas" }).message).toMatch(/needs option export/);
    expect(parseError({ ...base, export: "exports/app" }).message).toMatch(/must be an absolute path/);
  });

  it("checks ro and create as booleans", () => {
    expect(parseError({ ...base, ro: "maybe" }).message).toMatch(/ro="maybe" is not a boolean/);
    expect(parseError({ ...base, create: "2" }).message).toMatch(/create="2" is not a boolean/);
  });
});

describe("aliases", () => {
  it("reads the local driver's type/o/device form", () => {
    const spec = parse({
      type: "nfs",
      o: "addr=10.0.0.1,rw,nfsvers=4.1,soft,timeo=100,",
      device: ":/exports/app1",
    });
    expect(spec).toEqual({
      server: "10.0.0.1",
      export: "/exports/app1",
      path: "",
      vers: "4.1",
      opts: ["soft", "timeo=100"],
      readOnly: false,
      create: false,
    });
  });

  it("type=nfs4 means NFSv4 and refuses version 3", () => {
    expect(parse({ type: "nfs4", o: "addr=nas", device: ":/e" }).vers).toBe("4");
    expect(parse({ type: "nfs4", o: "addr=nas,vers=4.2", device: ":/e" }).vers).toBe("4.2");
    expect(parseError({ type: "nfs4", o: "addr=nas,nfsvers=3", device: ":/e" }).message).toMatch(
      /type=nfs4 conflicts with NFS version 3/,
    );
    expect(parseError({ type: "cifs", o: "addr=nas", device: ":/e" }).message).toMatch(
      /type="cifs" is not NFS/,
    );
  });

  it("o=ro makes the session read-only; ro and rw together are an error", () => {
    expect(parse({ o: "addr=nas,ro", device: ":/e" }).opts).toEqual(["ro"]);
    expect(parseError({ o: "addr=nas,ro,rw", device: ":/e" }).message).toMatch(/both ro and rw/);
  });

  it("device may carry the host; every source of server, export and version must agree", () => {
    expect(parse({ device: "nas:/e" })).toMatchObject({ server: "nas", export: "/e" });
    expect(parse({ device: "[fd00::2]:/e" }).server).toBe("fd00::2");
    expect(parse({ device: "nas:/e", o: "addr=nas", server: "nas", export: "/e" }).server).toBe("nas");
    expect(parseError({ device: "a:/e", o: "addr=b" }).message).toMatch(
      /conflicting NFS servers: device says a, o addr says b/,
    );
    expect(parseError({ ...base, device: ":/other" }).message).toMatch(/conflicting exports/);
    expect(parseError({ ...base, vers: "3", o: "nfsvers=4" }).message).toMatch(/conflicting NFS versions/);
    expect(parseError({ device: "/e", o: "addr=nas" }).message).toMatch(/must look like \[HOST\]:\/export/);
  });

  it("reads netshare's share=host:/export, with path inside it", () => {
    expect(parse({ share: "nas.lan:/exports/app1", path: "db" })).toEqual({
      server: "nas.lan",
      export: "/exports/app1",
      path: "db",
      vers: "4",
      opts: [],
      readOnly: false,
      create: false,
    });
    expect(parseError({ share: ":/exports/app1" }).message).toMatch(/must look like HOST:\/export/);
    expect(parseError({ share: "a:/e", server: "b" }).message).toMatch(/conflicting NFS servers/);
  });
});

describe("allow-list and injection", () => {
  const optsError = (nfs_opts: string) => parseError({ ...base, nfs_opts }).message;

  it("refuses suid, dev and exec: NFS volumes are always nosuid,nodev", () => {
    for (const bad of ["suid", "dev", "soft,suid", "nolock,dev,soft"]) {
      expect(optsError(bad)).toMatch(/is not allowed \(NFS volumes are always mounted nosuid,nodev\)/);
    }
    expect(optsError("exec")).toMatch(/"exec" is not allowed/);
    expect(parse({ ...base, nfs_opts: "noexec" }).opts).toEqual(["noexec"]);
  });

  it("refuses SELinux contexts, FS-Cache, bg, addresses and version or mode smuggled in nfs_opts", () => {
    expect(optsError("context=system_u:object_r:nfs_t:s0")).toMatch(/SELinux labels/);
    expect(optsError('context="a,b"')).toMatch(/not allowed/);
    for (const o of ["fscontext=x", "defcontext=x", "rootcontext=x"]) expect(optsError(o)).toMatch(/SELinux/);
    expect(optsError("fsc")).toMatch(/FS-Cache/);
    expect(optsError("bg")).toMatch(/foreground/);
    expect(optsError("addr=10.9.9.9")).toMatch(/use -o server=HOST/);
    expect(optsError("clientaddr=10.9.9.9")).toMatch(/not allowed/);
    expect(optsError("vers=3")).toMatch(/use -o vers=/);
    expect(optsError("nfsvers=3")).toMatch(/use -o vers=/);
    expect(optsError("ro")).toMatch(/use -o ro=true/);
    expect(optsError("sec=krb5p")).toMatch(/sec="krb5p" is not allowed: use sys \(only sec=sys/);
    expect(optsError("proto=udp")).toMatch(/proto="udp" is not allowed: use tcp or tcp6/);
  });

  it("refuses names every object has (valueOf, constructor, __proto__): the allow-list is its own entries only", () => {
    for (const name of ["valueOf", "constructor", "toString", "hasOwnProperty", "__proto__"]) {
      expect(optsError(name)).toMatch(new RegExp(`nfs_opts item "${name}" is not allowed; allowed: `));
      expect(optsError(`${name}=1`)).toMatch(/is not allowed; allowed: /);
    }
  });

  it("refuses o= items outside the allow-list the same way", () => {
    expect(parseError({ o: "addr=nas,suid", device: ":/e" }).message).toMatch(/o item "suid" is not allowed/);
    expect(parseError({ o: "addr=nas,context=x", device: ":/e" }).message).toMatch(/o item "context=x"/);
  });

  it("checks values: numbers in range, flags without values, one item per family", () => {
    expect(optsError("timeo=0")).toMatch(/timeo="0" must be a whole number from 1 to 6000/);
    expect(optsError("timeo=5=6")).toMatch(/must be a whole number/);
    expect(optsError("nconnect=17")).toMatch(/from 1 to 16/);
    expect(optsError("timeo")).toMatch(/"timeo" needs a value/);
    expect(optsError("soft=1")).toMatch(/"soft=1" takes no value: use soft/);
    expect(optsError("soft,hard")).toMatch(/"soft" and "hard" conflict/);
    expect(optsError("timeo=5,timeo=6")).toMatch(/"timeo=5" and "timeo=6" conflict/);
    expect(parseError({ ...base, o: "soft", nfs_opts: "hard" }).message).toMatch(/conflict/);
    expect(optsError(" soft")).toMatch(/" soft" is not allowed/);
    expect(optsError("SOFT")).toMatch(/not allowed/);
  });

  it("refuses hosts that are options or carry separators", () => {
    for (const server of ["-oexec", "-h", "nas,suid", "nas -o", "nas:/x", "[-oX]", "", "a..b", "1.2.3"]) {
      expect(parseError({ ...base, server }).message).toMatch(/is not a host name/);
    }
    expect(parseError({ share: "-oexec:/e" }).message).toMatch(/share host="-oexec" is not a host name/);
    expect(parseError({ share: "[-oX]:/p" }).message).toMatch(/is not a host name/);
    expect(parseError({ o: "addr=-x", device: ":/e" }).message).toMatch(/o addr="-x" is not a host name/);
  });

  it("refuses paths with commas, spaces, control characters or .. components", () => {
    for (const exp of ["/x,suid", "/a b", "/a\nb", "/a\\b", "/a/../b", "/./a"]) {
      expect(parseError({ ...base, export: exp }).message).toMatch(/export=/);
    }
    for (const path of ["../etc", "a/../../b", "a,b", "a\0b"]) {
      expect(parseError({ ...base, path }).message).toMatch(/path=/);
    }
  });

  it("whatever nfs_opts holds, an accepted spec mounts nosuid,nodev with allow-listed items only", async () => {
    const item = fc.oneof(
      fc.string({ maxLength: 12 }),
      fc.constantFrom(
        "suid",
        "dev",
        "exec",
        "soft",
        "hard",
        "timeo=5",
        "context=x",
        "ro",
        "rw",
        "noac",
        "a=b",
      ),
    );
    // The server is this host's fake NFS port: nfs_opts says which, after whatever the items are.
    const local = { server: "127.0.0.1", export: "/exports/app" };
    await fc.assert(
      fc.asyncProperty(fc.array(item, { maxLength: 5 }), async (items) => {
        const o = { ...local, nfs_opts: [...items, `port=${port}`].join(",") };
        try {
          parse(o);
        } catch (err) {
          expect((err as VolgateError).kind).toBe("invalid");
          return;
        }
        const args = await mountArgv(o, "/t");
        const opts = (args[3] ?? "").split(",");
        expect(opts.slice(0, 2)).toEqual(["nosuid", "nodev"]);
        for (const o of opts) {
          expect(o).toMatch(/^[a-z_]+(=[a-z0-9]+)?$/);
          expect(["suid", "dev", "exec", "rw"]).not.toContain(o);
          expect(o).not.toMatch(/context/);
        }
        expect(args.slice(-3)).toEqual(["--", "127.0.0.1:/exports/app", "/t"]);
      }),
    );
  });
});

describe("connection key, description, argv", () => {
  const key = (o: Options) => nfsBackend.connectionKey(parse(o));

  it("shares a connection across paths and ro, not across server, export, version or options", () => {
    const k = key(base);
    expect(key({ ...base, path: "a" })).toBe(k);
    expect(key({ ...base, ro: "true", create: "true" })).toBe(k);
    expect(key({ share: "NAS.example.com:/exports/app/" })).toBe(k);
    expect(key({ ...base, nfs_opts: "soft,timeo=5" })).toBe(key({ ...base, nfs_opts: "timeo=5,soft" }));
    const others: Options[] = [
      { ...base, server: "nas2" },
      { ...base, export: "/exports/other" },
      { ...base, vers: "4.2" },
      { ...base, nfs_opts: "soft" },
      { o: "addr=nas.example.com,ro", device: ":/exports/app" },
    ];
    for (const other of others) expect(key(other)).not.toBe(k);
  });

  it("describes the volume as a URL", () => {
    expect(nfsBackend.describe(parse({ ...base, path: "db" }))).toBe(
      "nfs://nas.example.com/exports/app/db (NFSv4)",
    );
    expect(nfsBackend.describe(parse({ share: "[fd00::1]:/e", vers: "3" }))).toBe(
      "nfs://[fd00::1]/e (NFSv3)",
    );
  });

  it("builds mount -t nfs argv: nosuid,nodev, the version, retry=0 unless given, -- before the source", async () => {
    expect(
      await mountArgv({ server: "127.0.0.1", export: "/exports/app", nfs_opts: `port=${port}` }, "/mnt/c"),
    ).toEqual([
      "-t",
      "nfs",
      "-o",
      `nosuid,nodev,vers=4,port=${port},retry=0`,
      "--",
      "127.0.0.1:/exports/app",
      "/mnt/c",
    ]);
    const given = { share: "127.0.0.1:/e", vers: "4.2", nfs_opts: `retry=2,soft,port=${port}`, o: "ro" };
    expect(await mountArgv(given, "/mnt/d")).toEqual([
      "-t",
      "nfs",
      "-o",
      `nosuid,nodev,vers=4.2,port=${port},retry=2,ro,soft`,
      "--",
      "127.0.0.1:/e",
      "/mnt/d",
    ]);
  });

  it("brackets an IPv6 server in the mount source", async () => {
    // A mount where one is already live is refused before anything runs, naming the source.
    const host = new FakeHost();
    host.table.set("/mnt/e", {
      mountPoint: "/mnt/e",
      fsType: "nfs4",
      source: "other:/x",
      options: "rw",
      root: "/",
      dev: "0:9",
    });
    const ctx = host.context({ log: captureLog().log, secretsDir: "/nonexistent", workDir: "/nonexistent" });
    const spec = parse({ share: "[fd00::1]:/e", vers: "4.2" });
    const err = await failure(nfsBackend.mount(spec, targetAt("/mnt/e"), ctx, Deadline.after(3000)));
    expect(err.message).toBe(
      "NFS mount of [fd00::1]:/e refused: /mnt/e is already mounted (live); unmount it first",
    );
    expect(host.calls).toEqual([]);
  });
});

/**
 * The fake host's `mount -t nfs` with an export the test lays out: `exportContent` fills the target
 * when it mounts; at unmount what it holds is recorded and goes away with the mount. `lie`: mount
 * says it worked without mounting.
 */
class FakeExport {
  readonly host = new FakeHost();
  exportContent: (root: string) => Promise<void> = async () => {};
  lie = false;
  /** What was on the export when it was unmounted. */
  seenAtUnmount: string[] = [];

  /** `inner` runs the commands (the fake host's runner, as the machine records it). */
  runner(inner: CommandRunner): CommandRunner {
    return {
      run: async (file, args, options) => {
        const target = args.at(-1) ?? "";
        if (file === "umount") await this.unmounting(target);
        if (file === "mount" && this.lie) return { code: 0, stdout: "", stderr: "" };
        const result = await inner.run(file, args, options);
        if (file === "mount" && result.code === 0) await this.exportContent(target);
        return result;
      },
      start() {
        throw new Error("nfs never starts a long-running helper");
      },
    };
  }

  private async unmounting(target: string): Promise<void> {
    this.seenAtUnmount = await listTree(target);
    for (const name of await readdir(target)) await rm(join(target, name), { recursive: true, force: true });
  }
}

async function listTree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const rel = `${prefix}${entry.name}`;
    out.push(entry.isDirectory() ? `${rel}/` : rel);
    if (entry.isDirectory()) out.push(...(await listTree(join(dir, entry.name), `${rel}/`)));
  }
  return out.sort();
}

describe("preflight and mount with a fake mount", () => {
  let work: string;
  let fake: FakeExport;
  let machine: Machine;
  let ctx: BackendContext;
  const spec = (o: Options = {}) =>
    parse({ server: "127.0.0.1", export: "/exports/data", nfs_opts: `port=${port}`, ...o });
  const deadline = () => Deadline.after(3000);

  beforeEach(async () => {
    fake = new FakeExport();
    machine = await fakeMachine(fake.host);
    ctx = { ...machine.harness.ctx, runner: fake.runner(machine.harness.ctx.runner) };
    work = ctx.workDir;
    return () => machine.close();
  });

  const mountCalls = () => fake.host.callsOf("mount");
  /** The mount of spec()'s export at `target`. */
  const exportMount = (target: string) => [
    "-t",
    "nfs",
    "-o",
    `nosuid,nodev,vers=4,port=${port},retry=0`,
    "--",
    "127.0.0.1:/exports/data",
    target,
  ];
  /** Every mount on the fake host. */
  const mounted = () => [...fake.host.table.values()];

  it("returns the volume's directory, mounts once with the built argv, walks it in children and leaves nothing behind", async () => {
    fake.exportContent = (root) => mkdir(join(root, "team/a"), { recursive: true }).then(() => {});
    const s = spec({ path: "team/a" });
    expect(await nfsBackend.preflight(s, ctx, deadline())).toBe("team/a");
    const [call] = mountCalls();
    const checkDir = call?.args.at(-1) ?? "";
    expect(checkDir).toMatch(new RegExp(`^${work}/nfs-check-`));
    expect(call?.args).toEqual(exportMount(checkDir));
    // The walk through the export runs in children (a hung server must not hold the daemon's threads).
    expect(fake.host.calls.map((c) => [c.file, c.args.at(-1)])).toEqual([
      ["mount", checkDir],
      ["realpath", checkDir],
      ["stat", join(checkDir, "team")],
      ["stat", join(checkDir, "team/a")],
      ["umount", checkDir],
    ]);
    expect(mounted()).toEqual([]);
    expect(await readdir(work)).toEqual([]);
  });

  it("a missing directory is an error naming create=true; create=true makes it", async () => {
    const err = await failure(nfsBackend.preflight(spec({ path: "team/a" }), ctx, deadline()));
    expect(err.kind).toBe("invalid");
    expect(err.message).toBe(
      'directory "team/a" does not exist in export /exports/data on 127.0.0.1: create it, or pass -o create=true',
    );
    expect(mounted()).toEqual([]);
    expect(await nfsBackend.preflight(spec({ path: "team/a", create: "true" }), ctx, deadline())).toBe(
      "team/a",
    );
    expect(fake.seenAtUnmount).toEqual(["team/", "team/a/"]);
    expect(await readdir(work)).toEqual([]);
  });

  it("follows symlinks inside the export, refuses ones that leave it, and non-directories", async () => {
    fake.exportContent = async (root) => {
      await mkdir(join(root, "real"));
      await symlink("real", join(root, "inside"));
      await symlink("/etc", join(root, "escape"));
      await writeFile(join(root, "file"), "x");
    };
    expect(await nfsBackend.preflight(spec({ path: "inside" }), ctx, deadline())).toBe("inside");
    const outside = await failure(
      nfsBackend.preflight(spec({ path: "escape/x", create: "true" }), ctx, deadline()),
    );
    expect(outside.message).toMatch(
      /"escape\/x" in export \/exports\/data on 127.0.0.1 leads outside the export/,
    );
    await expect(lstat("/etc/x")).rejects.toThrow();
    const file = await failure(nfsBackend.preflight(spec({ path: "file" }), ctx, deadline()));
    expect(file.message).toMatch(/"file" in export \/exports\/data on 127.0.0.1 is not a directory/);
    expect(mounted()).toEqual([]);
  });

  it("explains a missing export from mount.nfs's words", async () => {
    fake.host.faults.set("127.0.0.1:/exports/nope", {
      code: 32,
      said: "mounting 127.0.0.1:/exports/nope failed, reason given by server: No such file or directory",
    });
    const err = await failure(nfsBackend.preflight(spec({ export: "/exports/nope" }), ctx, deadline()));
    expect(err.kind).toBe("backend");
    expect(err.message).toMatch(
      /^export \/exports\/nope does not exist on 127.0.0.1 or is not exported to this host/,
    );
    // The fake's mount.nfs: "access denied by server while mounting 127.0.0.1:/exports/data".
    fake.host.faults.set("127.0.0.1:/exports/data", "fail");
    expect((await failure(nfsBackend.mount(spec(), targetAt(work), ctx, deadline()))).message).toMatch(
      /does not exist/,
    );
    expect(await readdir(work)).toEqual([]);
  });

  it("refuses an unreachable server before running mount", async () => {
    const s = parse({ server: "127.0.0.1", export: "/e", nfs_opts: `port=${closedPort}` });
    const err = await failure(nfsBackend.preflight(s, ctx, deadline()));
    expect(err.kind).toBe("backend");
    expect(err.message).toBe(
      `cannot reach NFS server 127.0.0.1:${closedPort}: connect ECONNREFUSED 127.0.0.1:${closedPort}`,
    );
    expect(fake.host.calls).toEqual([]);
  });

  it("names an unresolvable server", async () => {
    const s = parse({ server: "no-such-host.invalid", export: "/e" });
    const err = await failure(nfsBackend.mount(s, targetAt(work), ctx, Deadline.after(2000)));
    expect(err.message).toMatch(/^cannot resolve NFS server name no-such-host.invalid: /);
    expect(fake.host.calls).toEqual([]);
  });

  it("a mount that hangs fails at the deadline, and one Docker aborts is cancelled", async () => {
    fake.host.faults.set("127.0.0.1:/exports/data", "hang");
    const started = Date.now();
    const err = await failure(nfsBackend.mount(spec(), targetAt(work), ctx, Deadline.after(500)));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.kind).toBe("timeout");
    expect(err.message).toBe(
      "NFS mount of 127.0.0.1:/exports/data timed out after 0.5s: the server accepts TCP connections but did not finish the mount; check the NFS server, or raise VOLGATE_MOUNT_TIMEOUT",
    );
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const cancelled = await failure(
      nfsBackend.mount(spec(), targetAt(work), ctx, Deadline.after(5000, abort.signal)),
    );
    expect(cancelled.message).toBe(
      "NFS mount of 127.0.0.1:/exports/data was cancelled because Docker aborted the request",
    );
    expect(mounted()).toEqual([]);
  });

  it("does not trust mount's exit code: the mount must show up in the mount table", async () => {
    fake.lie = true;
    const err = await failure(nfsBackend.mount(spec(), targetAt(work), ctx, Deadline.after(300)));
    expect(err.kind).toBe("timeout");
    expect(err.message).toBe(
      "NFS mount of 127.0.0.1:/exports/data timed out after 0.3s: check that the server is reachable, or raise VOLGATE_MOUNT_TIMEOUT",
    );
  });

  it("mounts the export root at the target", async () => {
    const target = join(work, "conn");
    await mkdir(target);
    await nfsBackend.mount(spec(), targetAt(target), ctx, deadline());
    expect(mountCalls().map((c) => c.args)).toEqual([exportMount(target)]);
    expect(await fake.host.mounts.probe(target)).toBe("live");
  });
});
