/**
 * The sshfs backend against a real OpenSSH server on 127.0.0.1, with the real runner,
 * real sshfs/FUSE mounts and the real mount table. Needs root and /dev/fuse.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { Socket } from "node:net";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Options } from "../../../src/backends/backend.ts";
import { sshfsBackend } from "../../../src/backends/sshfs/index.ts";
import { Deadline } from "../../../src/deadline.ts";
import type { BackendContext } from "../../../src/host.ts";
import { failure } from "../../support/expect-error.ts";
import { type Machine, realMachine, targetAt } from "../../support/machine.ts";
import { freePort, silentServers } from "../../support/peer.ts";
import { tierCanRun } from "../../support/prereq.ts";
import { eventually, helpersFor, mountEntry, processes } from "../../support/procs.ts";
import { writeProfile } from "../../support/profile.ts";
import { startSshd, strangerKeyLine, type TestSshd } from "../../support/sshd.ts";

const exec = promisify(execFile);

const extra = [
  ...(process.getuid?.() === 0 ? [] : ["root"]),
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
];
const canRun = tierCanRun("sshfs integration", ["sshd", "sshfs", "ssh-keygen"], extra);

const sshfsFor = (target: string) => helpersFor("sshfs", target);

describe.skipIf(!canRun)("sshfs backend against a real sshd", () => {
  let sshd: TestSshd;
  let machine: Machine;
  let remote: string; // a directory on the sshd side, which is this machine
  let ctx: BackendContext;
  let secretsDir: string;
  let logs: ReadonlyArray<Record<string, unknown>>;
  const silent = silentServers();

  const opts = (extraOpts: Options): Options => ({
    host: sshd.host,
    port: String(sshd.port),
    user: sshd.user,
    host_key: sshd.hostKeyLine,
    ...extraOpts,
  });
  const newTarget = () => machine.harness.newTarget();

  beforeAll(async () => {
    sshd = await startSshd();
    machine = await realMachine("sshfs");
    ({ secretsDir } = machine);
    ({ ctx, logs } = machine.harness);
    const key = await readFile(sshd.privateKeyPath, "utf8");
    await writeProfile(secretsDir, "key", { private_key: key });
    await writeProfile(secretsDir, "pw", {
      password: `${sshd.password}\n`,
      known_hosts: `${sshd.knownHostsLine}\n`,
    });
    await writeProfile(secretsDir, "badpw", { password: "not-the-password-9x" });
    await writeProfile(secretsDir, "nothing", {});
    remote = join(sshd.home, `it-${process.pid}-${Date.now()}`);
    await mkdir(join(remote, "data"), { recursive: true });
    await writeFile(join(remote, "plain-file"), "x");
    for (const p of [remote, join(remote, "data"), join(remote, "plain-file")]) {
      await chown(p, sshd.uid, sshd.gid);
    }
  });

  afterAll(async () => {
    silent.close();
    await sshd?.stop();
    await machine?.close();
    if (remote) await rm(remote, { recursive: true, force: true });
  });

  describe("preflight", () => {
    it("logs in with a private key and returns the directory inside the remote root", async () => {
      const spec = sshfsBackend.parse(opts({ credentials: "key", path: join(remote, "data") }));
      const started = Date.now();
      const dir = await sshfsBackend.preflight(spec, ctx, Deadline.after(10_000));
      console.log(`preflight (key): ${Date.now() - started} ms`);
      expect(dir).toBe(join(remote, "data").slice(1));
    });

    it("turns Nagle off on its socket, and sends keepalives that carry ACKs the server's Nagle waits for", async () => {
      const spec = sshfsBackend.parse(opts({ credentials: "key", path: join(remote, "data") }));
      const noDelay = vi.spyOn(Socket.prototype, "setNoDelay");
      const connect = vi.spyOn(Client.prototype, "connect");
      try {
        await sshfsBackend.preflight(spec, ctx, Deadline.after(10_000));
        expect(noDelay.mock.calls.length).toBeGreaterThan(0);
        expect(noDelay.mock.calls.every(([on]) => on !== false)).toBe(true);
        const [config] = connect.mock.calls[0] ?? [];
        expect(config?.keepaliveInterval).toBeLessThanOrEqual(20);
        expect(config?.keepaliveCountMax).toBe(Number.POSITIVE_INFINITY);
      } finally {
        noDelay.mockRestore();
        connect.mockRestore();
      }
    });

    it("logs in with a profile password, checks the profile's known_hosts, resolves a home-relative path", async () => {
      const relative = join(remote.slice(sshd.home.length + 1), "data");
      const spec = sshfsBackend.parse({
        sshcmd: `${sshd.user}@${sshd.host}:${relative}`,
        port: String(sshd.port),
        credentials: "pw",
      });
      const started = Date.now();
      const dir = await sshfsBackend.preflight(spec, ctx, Deadline.after(10_000));
      console.log(`preflight (password): ${Date.now() - started} ms`);
      expect(dir).toBe(join(remote, "data").slice(1));
    });

    it("logs in with an inline password; an empty sshcmd path is the home directory", async () => {
      const spec = sshfsBackend.parse({
        sshcmd: `${sshd.user}@${sshd.host}:`,
        port: String(sshd.port),
        host_key: sshd.hostKeyLine,
        password: sshd.password,
      });
      expect(await sshfsBackend.preflight(spec, ctx, Deadline.after(10_000))).toBe(sshd.home.slice(1));
    });

    it("refuses a server whose host key is not the known one, naming the fingerprint it saw", async () => {
      const spec = sshfsBackend.parse(
        opts({ credentials: "key", path: remote, host_key: strangerKeyLine() }),
      );
      const started = Date.now();
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(Date.now() - started).toBeLessThan(3000);
      const seen = (await exec("ssh-keygen", ["-lf", join(sshd.dir, "host_ed25519.pub")])).stdout.split(
        " ",
      )[1];
      expect(err.message).toMatch(/host key verification failed for 127\.0\.0\.1:\d+/);
      expect(err.message).toContain(`the server presented ssh-ed25519 key ${seen}`);
      expect(err.message).toMatch(/changed or the server is not the one you expect/);
    });

    it("with no known key at all, tells the user how to pass host_key", async () => {
      const spec = sshfsBackend.parse({
        host: sshd.host,
        port: String(sshd.port),
        user: sshd.user,
        credentials: "key",
      });
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.kind).toBe("invalid");
      expect(err.message).toContain(`no known host key for 127.0.0.1:${sshd.port}`);
      expect(err.message).toContain(`ssh-keyscan -t ed25519 -p ${sshd.port} 127.0.0.1`);
    });

    it("accepts any host key when verification is off, and logs a warning", async () => {
      const spec = sshfsBackend.parse({
        host: sshd.host,
        port: String(sshd.port),
        user: sshd.user,
        credentials: "key",
      });
      const before = logs.length;
      const dir = await sshfsBackend.preflight(
        spec,
        { ...ctx, verifyHostKeys: false },
        Deadline.after(10_000),
      );
      expect(dir).toBe(sshd.home.slice(1));
      expect(logs.slice(before).some((l) => l.level === 40 && String(l.msg).includes("not verified"))).toBe(
        true,
      );
    });

    it("reports a wrong password as an authentication failure, without the password", async () => {
      const spec = sshfsBackend.parse(opts({ credentials: "badpw", path: remote }));
      const started = Date.now();
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      console.log(`preflight (wrong password): ${Date.now() - started} ms`);
      expect(err.message).toContain(`authentication failed for volgate-test@127.0.0.1:${sshd.port}`);
      expect(err.message).toContain('password of credentials profile "badpw"');
      expect(err.message).toContain("check the credentials profile");
      expect(err.message).not.toContain("not-the-password-9x");
    });

    it("says what is missing when a profile holds no credential", async () => {
      const spec = sshfsBackend.parse(opts({ credentials: "nothing", path: remote }));
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.message).toMatch(/has neither a private_key nor a password/);
    });

    it("reports a missing remote directory, and create=true creates every missing component", async () => {
      const wanted = join(remote, "new", "deeper", "dir");
      const missing = sshfsBackend.parse(opts({ credentials: "key", path: wanted }));
      const err = await failure(sshfsBackend.preflight(missing, ctx, Deadline.after(10_000)));
      expect(err.message).toBe(
        `remote directory ${wanted} does not exist on 127.0.0.1:${sshd.port}: create it or pass -o create=true`,
      );
      expect(existsSync(join(remote, "new"))).toBe(false);

      const create = sshfsBackend.parse(opts({ credentials: "key", path: wanted, create: "true" }));
      expect(await sshfsBackend.preflight(create, ctx, Deadline.after(10_000))).toBe(wanted.slice(1));
      const info = await stat(wanted);
      expect(info.isDirectory()).toBe(true);
      expect(info.uid).toBe(sshd.uid); // made by the remote user, over SFTP
    });

    it("refuses a remote path that is a file", async () => {
      const spec = sshfsBackend.parse(opts({ credentials: "key", path: join(remote, "plain-file") }));
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.message).toMatch(/plain-file on 127\.0\.0\.1:\d+ is not a directory/);
    });

    it("reports a refused connection with host:port", async () => {
      const port = await freePort();
      const spec = sshfsBackend.parse(opts({ credentials: "key", port: String(port) }));
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(10_000)));
      expect(err.message).toBe(
        `cannot connect to 127.0.0.1:${port}: connection refused (is sshd running there, on that port?)`,
      );
    });

    it("gives up at the deadline on a server that never answers", async () => {
      const port = await silent.open();
      const spec = sshfsBackend.parse(opts({ credentials: "key", port: String(port) }));
      const started = Date.now();
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(1500)));
      const elapsed = Date.now() - started;
      expect(err.kind).toBe("timeout");
      expect(err.message).toContain(`127.0.0.1:${port}`);
      expect(elapsed).toBeGreaterThanOrEqual(1400);
      expect(elapsed).toBeLessThan(3500);
    });

    it("stops when the request is aborted", async () => {
      const port = await silent.open();
      const spec = sshfsBackend.parse(opts({ credentials: "key", port: String(port) }));
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const started = Date.now();
      const err = await failure(sshfsBackend.preflight(spec, ctx, Deadline.after(20_000, controller.signal)));
      expect(err.kind).toBe("timeout");
      expect(err.message).toMatch(/cancelled/);
      expect(Date.now() - started).toBeLessThan(2000);
    });
  });

  describe("mount", () => {
    async function mountAndWrite(o: Options, secret?: string) {
      const spec = sshfsBackend.parse(o);
      const subdir = await sshfsBackend.preflight(spec, ctx, Deadline.after(10_000));
      const target = await newTarget();
      const started = Date.now();
      await sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000));
      const took = Date.now() - started;

      const entry = await mountEntry(target);
      expect(entry?.fsType).toBe("fuse.sshfs");
      expect(entry?.source).toBe(`${sshd.user}@127.0.0.1:/`);
      expect(entry?.options.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
      expect(await ctx.mounts.probe(target)).toBe("live");

      const name = `hello-${basename(target)}.txt`;
      await writeFile(join(target, subdir, name), "through sshfs");
      expect(await readFile(join(remote, "data", name), "utf8")).toBe("through sshfs");
      expect((await stat(join(remote, "data", name))).uid).toBe(sshd.uid);

      const helpers = await sshfsFor(target);
      expect(helpers).toHaveLength(1);
      if (secret !== undefined) {
        const all = await processes();
        expect(all.filter((p) => p.argv.join(" ").includes(secret))).toEqual([]);
        const own = await readFile(`/proc/${helpers[0]?.pid}/cmdline`, "utf8");
        expect(own).not.toContain(secret);
        expect(own).toContain("password_stdin");
      }
      return { target, took };
    }

    it("mounts with a private key: the volume directory is writable and lands on the server", async () => {
      const { took } = await mountAndWrite(opts({ credentials: "key", path: join(remote, "data") }));
      console.log(`mount (key): ${took} ms`);
    });

    it("mounts with a password sent on stdin only: no process command line carries it", async () => {
      const { took } = await mountAndWrite(
        {
          sshcmd: `${sshd.user}@${sshd.host}:${join(remote, "data")}`,
          port: String(sshd.port),
          credentials: "pw",
        },
        sshd.password,
      );
      console.log(`mount (password): ${took} ms`);
    });

    it("by default with a key: AES-GCM first where the CPU has AES, and several SSH connections", async () => {
      const cpuAes = /^flags\s*:.*\baes\b/m.test(await readFile("/proc/cpuinfo", "utf8"));
      const spec = sshfsBackend.parse(opts({ credentials: "key" }));
      const target = await newTarget();
      await sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000));
      const [helper] = await sshfsFor(target);
      const items = helper?.argv.at(-1)?.split(/(?<!\\),/) ?? [];
      expect(items).toContain("max_conns=4");
      const ciphers = items.find((i) => i.startsWith("Ciphers="));
      if (cpuAes)
        expect(ciphers).toMatch(/^Ciphers=aes128-gcm@openssh\.com\\,.*chacha20-poly1305@openssh\.com/);
      else expect(ciphers).toBeUndefined();
      // Files open at once spread over connections, each one more login at the server.
      const logins = async () => (await sshd.log()).match(/Accepted publickey for /g)?.length ?? 0;
      const before = await logins();
      const dir = join(target, remote, "data");
      await Promise.all([1, 2, 3, 4].map((n) => writeFile(join(dir, `conn-${n}`), Buffer.alloc(4 << 20, n))));
      expect(await eventually(async () => (await logins()) > before)).toBe(true);
      expect((await logins()) - before).toBeLessThanOrEqual(3);
    });

    it("passes every tuning and session option to a real sshfs", async () => {
      const spec = sshfsBackend.parse(
        opts({
          credentials: "key",
          uid: "1234",
          gid: "2345",
          umask: "027",
          allow_other: "false",
          reconnect: "false",
          ServerAliveInterval: "5",
          ServerAliveCountMax: "2",
          compression: "yes",
          cache: "no",
          max_conns: "2",
          ciphers: "chacha20-poly1305@openssh.com,aes256-ctr",
        }),
      );
      const target = await newTarget();
      await sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000));
      const entry = await mountEntry(target);
      expect(entry?.fsType).toBe("fuse.sshfs");
      expect(entry?.options.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
      const info = await stat(join(target, remote, "data"));
      expect([info.uid, info.gid, info.mode & 0o777]).toEqual([1234, 2345, 0o750]);
      const argv = (await sshfsFor(target))[0]?.argv.join(" ") ?? "";
      expect(argv).toContain(
        "dir_cache=no,max_conns=2,ServerAliveInterval=5,ServerAliveCountMax=2,Compression=yes,Ciphers=chacha20-poly1305@openssh.com\\,aes256-ctr",
      );
    });

    it("fails on a wrong host key with ssh's own words, leaving no mount and no helper", async () => {
      const spec = sshfsBackend.parse(opts({ credentials: "key", host_key: strangerKeyLine() }));
      const target = await newTarget();
      const err = await failure(sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000)));
      console.log(`sshfs, wrong host key: ${err.message}`);
      expect(err.kind).toBe("backend");
      expect(err.message).toContain("Host key verification failed.");
      expect(err.message).toContain("does not match host_key/known_hosts");
      expect(await mountEntry(target)).toBeUndefined();
      expect(await eventually(async () => (await sshfsFor(target)).length === 0)).toBe(true);
    });

    it("fails on a wrong password with ssh's Permission denied", async () => {
      const spec = sshfsBackend.parse(opts({ credentials: "badpw" }));
      const target = await newTarget();
      const err = await failure(sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000)));
      console.log(`sshfs, wrong password: ${err.message}`);
      expect(err.message).toMatch(/Permission denied \(publickey,password\)/);
      expect(err.message).not.toContain("not-the-password-9x");
      expect(await mountEntry(target)).toBeUndefined();
      expect(await eventually(async () => (await sshfsFor(target)).length === 0)).toBe(true);
    });

    it("with a work dir that cannot be written says so (not an internal error), leaving nothing", async () => {
      // Found by the fault suite (state dir read-only): "internal error: EROFS: read-only file system, open ...".
      const work = ctx.workDir;
      await exec("mount", ["--bind", work, work]);
      try {
        await exec("mount", ["-o", "remount,ro,bind", work]);
        // key + host_key: the known_hosts file volgate writes; pw: the profile's file, so the helper's log.
        for (const credentials of ["key", "pw"]) {
          const spec = sshfsBackend.parse(opts({ credentials }));
          const target = await newTarget();
          const err = await failure(sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(20_000)));
          expect(err.message, credentials).toBe(
            `cannot write volgate's work files in ${work} (EROFS: the file system is read-only): free space or make the directory writable, then try again`,
          );
          expect(await mountEntry(target)).toBeUndefined();
          expect(await sshfsFor(target)).toEqual([]);
        }
      } finally {
        await exec("umount", [work]);
      }
    });

    it("kills the helper at the deadline when the server never answers", async () => {
      const port = await silent.open();
      const spec = sshfsBackend.parse(opts({ credentials: "key", port: String(port) }));
      const target = await newTarget();
      const started = Date.now();
      const err = await failure(sshfsBackend.mount(spec, targetAt(target), ctx, Deadline.after(2000)));
      const elapsed = Date.now() - started;
      console.log(`sshfs, silent server: ${err.message} after ${elapsed} ms`);
      expect(err.kind).toBe("timeout");
      expect(err.message).toMatch(
        /^sshfs mount of \S+ (\(.*\) )?timed out after 2s: check that the server is reachable/,
      );
      expect(elapsed).toBeGreaterThanOrEqual(2000);
      expect(elapsed).toBeLessThan(4000);
      expect(await eventually(async () => (await sshfsFor(target)).length === 0, 1000)).toBe(true);
      expect(await mountEntry(target)).toBeUndefined();
    });
  });
});
