/**
 * End to end, legacy discovery (SANITY.md group I): volgate runs as a host daemon on
 * /run/docker/plugins/<name>.sock, a private dockerd 20.10 finds it by name, containers
 * (`--network none`, busybox image from `docker import`) use sshfs volumes served by a private
 * sshd on 127.0.0.1. The sshd is local, so the "remote" directory is a local directory we can read.
 *
 * The cases run in order and share one volume, v1; each asserts real results: exit codes,
 * the volume's driver, files on disk, volgate's state file and logs, the mount table.
 * Mount IDs are dockerd's per-mount-point IDs (config.v2.json MountPoints[..].ID), not container IDs.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type Dockerd,
  type DockerResult,
  dockerClient,
  mountsUnder,
  optionArgs,
  pluginSocketPath,
  removeDirSafely,
  run,
  startDockerd,
  tail,
  uniquePluginName,
} from "../support/dockerd.ts";
import { tierCanRun, which } from "../support/prereq.ts";
import { sshfsOptions, startSshd, type TestSshd, writeProfile } from "../support/sshd.ts";
import { pidsMentioning, startVolgate, type Volgate } from "../support/volgate.ts";

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push("root (FUSE mounts and dockerd)");
if (!existsSync("/dev/fuse")) missing.push("/dev/fuse");
if (dockerClient() === undefined) missing.push("docker (client)");
if (!existsSync("/bin/busybox") && which("busybox") === undefined) missing.push("busybox (busybox-static)");
const canRun = tierCanRun("e2e (dockerd)", ["dockerd", "sshd", "sshfs"], missing);

/** A container that exits promptly on `docker stop` (busybox sh as PID 1 ignores SIGTERM otherwise). */
const LONG = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 15_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > until) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(value)}`);
    }
    await sleep(100);
  }
}

const total = (mounts: Record<string, number> | undefined) =>
  Object.values(mounts ?? {}).reduce((a, b) => a + b, 0);

function ok(r: DockerResult, what: string): string {
  expect(r.code, `${what} failed (exit ${r.code}): ${r.stderr.trim()}`).toBe(0);
  return r.stdout.trim();
}

describe.skipIf(!canRun)("legacy socket plugin with a real dockerd", () => {
  const plugin = uniquePluginName();
  const timings: Array<[string, number]> = [];
  const measured: string[] = [];
  /** Containers a case started: removed after each case, whatever happened. */
  const containers = new Set<string>();
  let sshd: TestSshd;
  let volgate: Volgate;
  let dockerd: Dockerd;
  let remoteBase: string;
  let remote: string;
  let wrongHostKey: string;

  const docker = (args: readonly string[]) => dockerd.docker(args);
  const mountpoint = (v: string) => join(volgate.root, "volumes", v);
  const isMounted = async (path: string) => (await mountsUnder(path)).includes(path);
  const connMounts = () => mountsUnder(join(volgate.root, "conns"));
  const timed = <T extends DockerResult | number>(label: string, r: T): T => {
    timings.push([label, typeof r === "number" ? r : r.ms]);
    return r;
  };
  const sshfsOpts = (extra: Record<string, string>) => {
    return optionArgs({ ...sshfsOptions(sshd, remote, "pw"), ...extra });
  };
  const createVolume = (name: string, extra: Record<string, string> = {}) =>
    docker(["volume", "create", "-d", plugin, ...sshfsOpts(extra), "--", name]);
  /** `docker run --rm --network none FLAGS IMAGE sh -c SCRIPT`. */
  const runOnce = (flags: readonly string[], script: string, image = dockerd.image) =>
    docker(["run", "--rm", "--network", "none", ...flags, image, "sh", "-c", script]);
  const startContainer = async (extra: readonly string[] = ["-v", "v1:/data"], image = dockerd.image) => {
    const r = await docker(["run", "-d", "--network", "none", ...extra, image, ...LONG]);
    const id = ok(r, "docker run -d");
    expect(id).toMatch(/^[0-9a-f]{64}$/);
    containers.add(id);
    return id;
  };
  const removeContainer = async (id: string) => {
    ok(await docker(["rm", "-f", id]), "docker rm -f");
    containers.delete(id);
  };
  /** dockerd's mount ID for the volume at `target` in container `id`: what it sends as Mount/Unmount ID. */
  const mountIdOf = async (id: string, target = "/data"): Promise<string> => {
    const config = JSON.parse(
      await readFile(join(dockerd.dir, "data", "containers", id, "config.v2.json"), "utf8"),
    );
    const mid = config.MountPoints?.[target]?.ID;
    expect(typeof mid).toBe("string");
    return mid as string;
  };
  const noMounts = (volume: string) =>
    waitFor(
      `${volume} to have no mounts`,
      () => volgate.mounts(volume),
      (m) => total(m) === 0,
    );
  const opsFor = (op: string, id: string) =>
    volgate.logs().filter((l) => l.msg === "ok" && l.op === op && l.volume === "v1" && l.id === id).length;
  const reconciledSince = (from: number) =>
    volgate.waitForLog(
      (l) => l.msg === "reconciled mounts after start" && volgate.logs().indexOf(l) >= from,
      30_000,
    );

  beforeAll(async () => {
    sshd = await startSshd();
    remoteBase = join(sshd.home, `${plugin}-remote`);
    remote = join(remoteBase, "data");
    await mkdir(remote, { recursive: true });
    await chown(remoteBase, sshd.uid, sshd.gid);
    await chown(remote, sshd.uid, sshd.gid);

    volgate = await startVolgate({ socket: pluginSocketPath(plugin) });
    const knownHosts = `${sshd.knownHostsLine}\n`;
    await writeProfile(volgate.secretsDir, "pw", { password: sshd.password, known_hosts: knownHosts });
    // No known_hosts: host_key then says which key to trust (a profile's known_hosts would override it).
    await writeProfile(volgate.secretsDir, "pw-only", { password: sshd.password });
    await writeProfile(volgate.secretsDir, "badpw", {
      password: "not-the-password-9d1e",
      known_hosts: knownHosts,
    });
    const other = join(volgate.dir, "other_host_key");
    ok(await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]), "ssh-keygen");
    wrongHostKey = (await readFile(`${other}.pub`, "utf8")).trim().split(" ").slice(0, 2).join(" ");

    const started = performance.now();
    dockerd = await startDockerd();
    timed("dockerd start + image import", Math.round(performance.now() - started));
  });

  beforeEach((ctx) => {
    ctx.onTestFailed(async () => {
      console.log(`--- dockerd log (${dockerd?.logFile}):\n${(await dockerd?.logTail(30)) ?? ""}`);
      console.log(
        `--- volgate output (${volgate?.outputFile}):\n${await tail(volgate?.outputFile ?? "", 30)}`,
      );
      console.log(`--- sshd log:\n${await tail(sshd?.logFile ?? "", 15)}`);
    });
  });

  afterEach(async () => {
    for (const id of containers) await docker(["rm", "-f", id]);
    containers.clear();
  });

  afterAll(async () => {
    const width = Math.max(...timings.map(([k]) => k.length), 4);
    const table = timings.map(([k, ms]) => `  ${k.padEnd(width)}  ${String(ms).padStart(6)} ms`);
    console.log([`e2e timings (plugin ${plugin}, dockerd 20.10, sshfs on 127.0.0.1):`, ...table].join("\n"));
    if (measured.length > 0)
      console.log(["measured behaviour:", ...measured.map((m) => `  ${m}`)].join("\n"));
    await dockerd?.stop();
    await volgate?.stop();
    await sshd?.stop();
    if (remoteBase) await removeDirSafely(remoteBase);
  });

  it("creates a volume through the plugin socket", async () => {
    const r = timed("volume create", await createVolume("v1"));
    expect(ok(r, "volume create")).toBe("v1");
    const ls = ok(await docker(["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]), "volume ls");
    expect(ls.split("\n")).toContain(`${plugin} v1`);
    expect((await volgate.state()).volumes.map((v) => v.name)).toEqual(["v1"]);
    expect(existsSync(mountpoint("v1"))).toBe(true);
    expect(await isMounted(mountpoint("v1"))).toBe(false);
  });

  it("inspect shows driver, global scope and status, and no secret", async () => {
    const text = ok(await docker(["volume", "inspect", "v1"]), "volume inspect");
    const [info] = JSON.parse(text) as Array<Record<string, unknown>>;
    expect(info?.Driver).toBe(plugin);
    expect(info?.Scope).toBe("global");
    expect(info?.Mountpoint).toBe(mountpoint("v1"));
    expect(info?.Options).toMatchObject({ backend: "sshfs", host: "127.0.0.1", credentials: "pw" });
    const status = info?.Status as Record<string, unknown> | undefined;
    expect(status?.backend).toBe("sshfs");
    expect(typeof status?.health).toBe("string");
    expect(status).toMatchObject({ mounted: false, mounts: 0 });
    expect(ok(await docker(["volume", "inspect", "--format", "{{.Scope}}", "v1"]), "inspect scope")).toBe(
      "global",
    );
    expect(text).not.toContain(sshd.password);
    expect(volgate.output()).not.toContain(sshd.password);
    for (const file of ["state.json", "state.journal"]) {
      const path = join(volgate.stateDir, file);
      if (!existsSync(path)) continue;
      expect(await readFile(path, "utf8")).not.toContain(sshd.password);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
    }
    expect(existsSync(join(volgate.stateDir, "state.journal"))).toBe(true);
    expect(existsSync(join(volgate.stateDir, "secrets.json"))).toBe(false);
  });

  it("a container writes a file that lands in the remote directory", async () => {
    const r = timed("first run (write)", await runOnce(["-v", "v1:/data"], "echo hi > /data/f"));
    ok(r, "docker run");
    expect(await readFile(join(remote, "f"), "utf8")).toBe("hi\n");
    expect((await stat(join(remote, "f"))).uid).toBe(sshd.uid); // written through sftp as the ssh user
    expect(ok(await docker(["volume", "inspect", "--format", "{{.Driver}}", "v1"]), "inspect")).toBe(plugin);
    await noMounts("v1");
    expect(await isMounted(mountpoint("v1"))).toBe(false);
    expect(await connMounts()).toEqual([]);
    const ops = volgate.logs().filter((l) => l.msg === "ok" && l.volume === "v1");
    expect(ops.filter((l) => l.op === "Mount")).toHaveLength(1);
    expect(ops.filter((l) => l.op === "Unmount")).toHaveLength(1);
  });

  it("a second container reads it", async () => {
    const r = timed("second run (read)", await runOnce(["-v", "v1:/data"], "cat /data/f"));
    expect(ok(r, "docker run cat")).toBe("hi");
    await noMounts("v1");
  });

  it("two containers share the volume at once", async () => {
    const c1 = await startContainer();
    const c2 = await startContainer();
    const [m1, m2] = [await mountIdOf(c1), await mountIdOf(c2)];
    expect(m1).not.toBe(m2);
    expect(await volgate.mounts("v1")).toEqual({ [m1]: 1, [m2]: 1 });
    expect(await isMounted(mountpoint("v1"))).toBe(true);
    expect(await connMounts()).toHaveLength(1); // one sshfs session serves both
    ok(await docker(["exec", c1, "sh", "-c", "echo shared > /data/shared"]), "exec write");
    expect(ok(await docker(["exec", c2, "cat", "/data/shared"]), "exec read")).toBe("shared");
    await removeContainer(c1);
    await waitFor(
      "c1's mount released",
      () => volgate.mounts("v1"),
      (m) => m?.[m1] === undefined,
    );
    expect(await volgate.mounts("v1")).toEqual({ [m2]: 1 });
    expect(await isMounted(mountpoint("v1"))).toBe(true);
    expect(ok(await docker(["exec", c2, "cat", "/data/f"]), "exec read after c1 left")).toBe("hi");
    await removeContainer(c2);
    await noMounts("v1");
    expect(await isMounted(mountpoint("v1"))).toBe(false);
    expect(await connMounts()).toEqual([]);
  });

  it("--volumes-from mounts the same volume", async () => {
    const c1 = await startContainer();
    const m1 = await mountIdOf(c1);
    const r = await docker([
      "run",
      "--rm",
      "--network",
      "none",
      "--volumes-from",
      c1,
      dockerd.image,
      "cat",
      "/data/f",
    ]);
    expect(ok(r, "run --volumes-from")).toBe("hi");
    expect(await volgate.mounts("v1")).toEqual({ [m1]: 1 });
    await removeContainer(c1);
    await noMounts("v1");
  });

  it("docker cp into a running container's volume (repeated mount IDs) keeps it mounted", async () => {
    const c1 = await startContainer();
    const m1 = await mountIdOf(c1);
    expect(opsFor("Mount", m1)).toBe(1);
    const src = join(volgate.dir, "cp-src.txt");
    await writeFile(src, "copied\n");
    const cp = timed("docker cp (running container)", await docker(["cp", src, `${c1}:/data/cp.txt`]));
    measured.push(`docker cp into the volume: exit ${cp.code} ${cp.stderr.trim()}`);
    // dockerd mounted again with the container's mount ID for the copy (twice here: stat, then
    // extract), and unmounted as often: the container's own reference stays.
    const [mounted, unmounted] = [opsFor("Mount", m1), opsFor("Unmount", m1)];
    measured.push(
      `docker cp on a running container: Mount(sameID) x${mounted - 1}, Unmount(sameID) x${unmounted}`,
    );
    expect(mounted).toBeGreaterThanOrEqual(2);
    expect(mounted - unmounted).toBe(1);
    expect(await volgate.mounts("v1")).toEqual({ [m1]: 1 });
    expect(await isMounted(mountpoint("v1"))).toBe(true);
    expect(await readFile(join(remote, "cp.txt"), "utf8")).toBe("copied\n");
    expect(ok(await docker(["exec", c1, "cat", "/data/cp.txt"]), "exec read")).toBe("copied");
    const stop = timed("docker stop (trap TERM)", await docker(["stop", "-t", "5", c1]));
    ok(stop, "docker stop");
    await noMounts("v1");
    expect(opsFor("Unmount", m1)).toBe(opsFor("Mount", m1));
    expect(await isMounted(mountpoint("v1"))).toBe(false);
    await removeContainer(c1);
    // Last: docker cp extracts as root and lchowns each file to the archive's owner (0:0). Over sshfs
    // without uid mapping the volume's files belong to the ssh user, the chown is refused and
    // `docker cp` exits 1 although the data was written.
    expect(cp.code, `docker cp: ${cp.stderr.trim()}`).toBe(0);
  });

  it("docker kill triggers Unmount", async () => {
    const c1 = await startContainer();
    const m1 = await mountIdOf(c1);
    expect(await volgate.mounts("v1")).toEqual({ [m1]: 1 });
    ok(await docker(["kill", c1]), "docker kill");
    await noMounts("v1");
    expect(opsFor("Unmount", m1)).toBe(1);
    expect(await isMounted(mountpoint("v1"))).toBe(false);
    const status = JSON.parse(ok(await docker(["volume", "inspect", "v1"]), "inspect"))[0].Status;
    expect(status).toMatchObject({ mounted: false, mounts: 0 });
    await removeContainer(c1);
  });

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`volgate restarted (${signal}) while a container uses the volume`, async () => {
      const c1 = await startContainer();
      const m1 = await mountIdOf(c1);
      const file = `/data/r-${signal}`;
      ok(await docker(["exec", c1, "sh", "-c", `echo before > ${file}`]), "exec write");
      const killed = await volgate.kill(signal);
      timed(`volgate stop (${signal})`, killed.ms);
      if (signal === "SIGTERM") {
        expect(killed.code).toBe(0);
        expect(killed.ms).toBeLessThan(10_000);
      }
      // While volgate is down the container keeps its mount: the sshfs helper runs detached.
      const down = await docker(["exec", c1, "sh", "-c", `cat ${file} && echo down >> ${file}`]);
      measured.push(
        `volgate down (${signal}): container exec on the volume -> exit ${down.code} ${down.stderr.trim()}`,
      );
      expect(down.code).toBe(0);
      const from = volgate.logs().length;
      timed(`volgate restart after ${signal} (to listening)`, await volgate.restart());
      const report = await reconciledSince(from);
      measured.push(
        `reconcile after ${signal}: adopted ${report.adopted}, remounted ${report.remounted}, failed ${report.failed}, cleaned ${report.cleaned}`,
      );
      expect(report).toMatchObject({ adopted: 1, remounted: 0, failed: 0 });
      expect(await volgate.mounts("v1")).toEqual({ [m1]: 1 });
      const after = await docker(["exec", c1, "sh", "-c", `echo after >> ${file} && cat ${file}`]);
      expect(ok(after, "exec after restart").split("\n")).toEqual(["before", "down", "after"]);
      expect(await readFile(join(remote, `r-${signal}`), "utf8")).toBe("before\ndown\nafter\n");
      const status = JSON.parse(ok(await docker(["volume", "inspect", "v1"]), "inspect"))[0].Status;
      expect(status).toMatchObject({ mounted: true, mounts: 1, health: "ok" });
      ok(await docker(["stop", "-t", "5", c1]), "docker stop");
      await noMounts("v1");
      expect(await isMounted(mountpoint("v1"))).toBe(false);
      expect(await connMounts()).toEqual([]);
      expect(await pidsMentioning(join(volgate.root, "conns"))).toEqual([]);
      await removeContainer(c1);
    });
  }

  it("the sshfs helper dies while volgate runs: the next Mount remounts", async () => {
    const c1 = await startContainer();
    const helpers = await pidsMentioning(join(volgate.root, "conns"));
    expect(helpers).toHaveLength(1);
    for (const pid of helpers) process.kill(pid, "SIGKILL");
    await sleep(200);
    const dead = await docker(["exec", c1, "cat", "/data/f"]);
    measured.push(
      `sshfs helper killed under a running volgate: old container read -> exit ${dead.code} ${dead.stderr.trim()}`,
    );
    const status = JSON.parse(ok(await docker(["volume", "inspect", "v1"]), "inspect"))[0].Status;
    measured.push(`Status after the helper died: ${JSON.stringify(status)}`);
    // A new container: Mount must see the dead mount (mountinfo + a real liveness check) and remount.
    const fresh = await runOnce(["-v", "v1:/data"], "cat /data/f");
    measured.push(`new container after the helper died: exit ${fresh.code} ${fresh.stderr.trim()}`);
    ok(await docker(["stop", "-t", "5", c1]), "docker stop");
    await noMounts("v1");
    expect(await isMounted(mountpoint("v1"))).toBe(false);
    expect(await connMounts()).toEqual([]);
    await removeContainer(c1);
    expect(fresh.code, `new container: ${fresh.stderr.trim()}`).toBe(0);
    expect(fresh.stdout.trim()).toBe("hi");
  });

  it("volgate crash that also kills its sshfs helper: stale mount cleaned and remounted", async () => {
    const c1 = await startContainer();
    const m1 = await mountIdOf(c1);
    const killed = await volgate.kill("SIGKILL");
    expect(killed.signal).toBe("SIGKILL");
    const helpers = await pidsMentioning(join(volgate.root, "conns"));
    expect(helpers).toHaveLength(1);
    for (const pid of helpers) process.kill(pid, "SIGKILL");
    await sleep(200);
    const dead = await docker(["exec", c1, "cat", "/data/f"]);
    measured.push(
      `volgate and its sshfs helper killed: container read -> exit ${dead.code} ${dead.stderr.trim()}`,
    );
    const from = volgate.logs().length;
    timed("volgate restart after crash + dead helper", await volgate.restart());
    const report = await reconciledSince(from);
    measured.push(
      `reconcile after dead helper: adopted ${report.adopted}, remounted ${report.remounted}, failed ${report.failed}, cleaned ${report.cleaned}`,
    );
    expect(await volgate.mounts("v1")).toEqual({ [m1]: 1 });
    expect(await isMounted(mountpoint("v1"))).toBe(true);
    const fresh = await runOnce(["-v", "v1:/data"], "cat /data/f");
    measured.push(`new container after restart: exit ${fresh.code} ${fresh.stderr.trim()}`);
    // The old container keeps its own copy of the dead bind mount (rprivate): record what it sees.
    const old = await docker(["exec", c1, "cat", "/data/f"]);
    measured.push(
      `container started before the crash, after restart: read -> exit ${old.code} ${old.stderr.trim()}`,
    );
    ok(await docker(["stop", "-t", "5", c1]), "docker stop");
    await noMounts("v1");
    expect(await isMounted(mountpoint("v1"))).toBe(false);
    expect(await connMounts()).toEqual([]);
    await removeContainer(c1);
    // Docker never re-sends Mount: the dead mount must be found stale and remounted in the background.
    expect(report).toMatchObject({ adopted: 0, remounted: 1, failed: 0 });
    expect(fresh.code, `new container after restart: ${fresh.stderr.trim()}`).toBe(0);
    expect(fresh.stdout.trim()).toBe("hi");
  });

  it("a dockerd restart keeps the volume", async () => {
    const started = performance.now();
    await dockerd.restart();
    timed("dockerd restart", Math.round(performance.now() - started));
    const [info] = JSON.parse(ok(await docker(["volume", "inspect", "v1"]), "inspect after restart"));
    expect(info.Driver).toBe(plugin);
    expect(info.Scope).toBe("global");
    expect(ok(await runOnce(["-v", "v1:/data"], "cat /data/f"), "run after dockerd restart")).toBe("hi");
    await noMounts("v1");
  });

  it("an image that has the mount target: nocopy works, the default copy-up should too", async () => {
    // An image with /data (owned by root, 0755), like most images with a declared data dir.
    const maker = ok(await docker(["create", "--network", "none", dockerd.image, "true"]), "docker create");
    containers.add(maker);
    await mkdir(join(volgate.dir, "with-data", "data"), { recursive: true });
    ok(
      await docker(["cp", join(volgate.dir, "with-data", "data"), `${maker}:/`]),
      "docker cp /data into the image",
    );
    ok(await docker(["commit", maker, "volgate-e2e/with-data:latest"]), "docker commit");
    await removeContainer(maker);
    const image = "volgate-e2e/with-data:latest";

    ok(await createVolume("v2", { path: join(remoteBase, "v2"), create: "true" }), "create v2");
    try {
      const nocopy = await runOnce(["-v", "v2:/data:nocopy"], "echo n > /data/n", image);
      ok(nocopy, "run with :nocopy");
      expect(await readFile(join(remoteBase, "v2", "n"), "utf8")).toBe("n\n");
      await rm(join(remoteBase, "v2", "n")); // empty again
      // Empty volume + image dir: dockerd copies the (empty) image dir in and chowns the volume root to 0:0.
      const copyUp = await runOnce(["-v", "v2:/data"], "echo c > /data/c", image);
      measured.push(`copy-up into an empty sshfs volume: exit ${copyUp.code} ${copyUp.stderr.trim()}`);
      await noMounts("v2");
      expect(copyUp.code, `docker run (copy-up): ${copyUp.stderr.trim()}`).toBe(0);
      expect(await readFile(join(remoteBase, "v2", "c"), "utf8")).toBe("c\n");
    } finally {
      await noMounts("v2");
      ok(await docker(["volume", "rm", "v2"]), "volume rm v2");
    }
  });

  it.each([
    ["an option that runs commands", { ProxyCommand: "x" }, /"ProxyCommand" is refused.*allowed: /],
    ["an unknown option", { colour: "blue" }, /"colour" not allowed for backend sshfs; allowed: /],
    ["a wrong host_key", { host_key: "WRONG", credentials: "pw-only" }, /host key verification failed/],
    ["a profile with a wrong password", { credentials: "badpw" }, /denied|authentication/i],
    ["a missing credentials profile", { credentials: "nosuch" }, /credentials profile "nosuch" not found/],
    ["a missing remote dir without create=true", { path: "MISSING" }, /does not exist.*create=true/],
  ])("refuses %s at create, leaving no volume", async (_what, extra, message) => {
    const opts = { ...extra } as Record<string, string>;
    if (opts.host_key === "WRONG") opts.host_key = wrongHostKey;
    if (opts.path === "MISSING") opts.path = join(remoteBase, "missing");
    const name = `bad-${Object.keys(extra)[0]?.toLowerCase()}`;
    const r = await createVolume(name, opts);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain(sshd.password);
    const inspect = await docker(["volume", "inspect", name]);
    expect(inspect.code).not.toBe(0);
    expect(inspect.stderr).toMatch(/no such volume/i);
    expect((await volgate.state()).volumes.map((v) => v.name)).toEqual(["v1"]);
    expect(existsSync(mountpoint(name))).toBe(false);
    expect(await mountsUnder(volgate.root)).toEqual([]);
    expect(existsSync(join(remoteBase, "missing"))).toBe(false);
  });

  it("refuses a bad volume name in the plugin (dockerd passes it through)", async () => {
    const r = await createVolume("-x");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('invalid volume name "-x"');
    expect((await volgate.state()).volumes.map((v) => v.name)).toEqual(["v1"]);
  });

  it("inspect of an unknown volume says no such volume", async () => {
    const r = await docker(["volume", "inspect", "nosuch"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/No such volume: nosuch/i);
  });

  it("volume rm removes the volume and keeps the remote data", async () => {
    const r = timed("volume rm", await docker(["volume", "rm", "v1"]));
    expect(ok(r, "volume rm")).toBe("v1");
    const inspect = await docker(["volume", "inspect", "v1"]);
    expect(inspect.code).not.toBe(0);
    expect(inspect.stderr).toMatch(/no such volume/i);
    // Filtered by driver: dockerd also lists the volumes of any other legacy plugin socket it finds.
    expect(ok(await docker(["volume", "ls", "-q", "--filter", `driver=${plugin}`]), "volume ls")).toBe("");
    expect((await volgate.state()).volumes).toEqual([]);
    expect(existsSync(mountpoint("v1"))).toBe(false);
    expect(await mountsUnder(volgate.root)).toEqual([]);
    expect(await readFile(join(remote, "f"), "utf8")).toBe("hi\n");
    expect(await readFile(join(remote, "r-SIGTERM"), "utf8")).toBe("before\ndown\nafter\n");
  });

  it("the password never appeared anywhere", async () => {
    const places: Array<[string, string]> = [
      ["volgate output", volgate.output()],
      ["state.json", await readFile(join(volgate.stateDir, "state.json"), "utf8").catch(() => "")],
      ["state.journal", await readFile(join(volgate.stateDir, "state.journal"), "utf8")],
      ["dockerd log", await readFile(dockerd.logFile, "utf8")],
      [
        "dockerd volume db",
        (await readFile(join(dockerd.dir, "data", "volumes", "metadata.db"))).toString("latin1"),
      ],
      ["process list", (await run("ps", ["-eo", "args="])).stdout],
    ];
    for (const [where, text] of places) expect(text.includes(sshd.password), where).toBe(false);
  });
});
