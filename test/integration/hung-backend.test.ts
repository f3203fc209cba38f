/**
 * The built daemon with one backend frozen: an sshfs volume whose sshd (and its sessions) got
 * SIGSTOP while mounted and in use. Health checks run every second, as many as would have taken
 * every libuv pool thread when a probe was an fs call; meanwhile another volume on another sshd is
 * created, mounted and written, Get and List answer, and SIGTERM still exits cleanly in time.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Answer, call } from "../support/client.ts";
import { tierCanRun } from "../support/prereq.ts";
import { processes } from "../support/procs.ts";
import { writeProfile } from "../support/profile.ts";
import { sshfsOptions, startSshd, type TestSshd } from "../support/sshd.ts";
import { startVolgate, type Volgate } from "../support/volgate.ts";

const extra = [
  ...(process.getuid?.() === 0 ? [] : ["root"]),
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
];
const canRun = tierCanRun("hung backend", ["sshd", "sshfs", "ssh-keygen"], extra);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An answer, and how long it took. */
async function timed(socket: string, path: string, body: unknown): Promise<Answer & { ms: number }> {
  const started = Date.now();
  const answer = await call(socket, path, body);
  return { ...answer, ms: Date.now() - started };
}

/** Processes (pid, state) whose command line mentions `dir`: probes and users stuck on a mount. */
async function stuckOn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const p of await processes()) {
    if (p.argv[0] === "sshfs" || !p.argv.some((a) => a.startsWith(dir))) continue;
    const stat = await readFile(`/proc/${p.pid}/stat`, "utf8").catch(() => "");
    out.push(`${p.argv.join(" ")} [${stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0]}]`);
  }
  return out;
}

describe.runIf(canRun)("the daemon with a frozen sshd", () => {
  let frozen: TestSshd;
  let healthy: TestSshd;
  let v: Volgate;

  beforeAll(async () => {
    [frozen, healthy] = await Promise.all([startSshd(), startSshd()]);
    v = await startVolgate({ env: { VOLGATE_HEALTH_INTERVAL: "1", VOLGATE_MOUNT_TIMEOUT: "5" } });
    for (const [name, sshd] of [
      ["frozen", frozen],
      ["healthy", healthy],
    ] as const) {
      await writeProfile(v.secretsDir, name, {
        private_key: await readFile(sshd.privateKeyPath, "utf8"),
        known_hosts: `${sshd.knownHostsLine}\n`,
      });
    }
  });

  afterAll(async () => {
    await frozen?.thaw();
    await v?.stop();
    await Promise.all([frozen?.stop(), healthy?.stop()]);
  });

  it("serves every other volume, and exits on SIGTERM within 10 s", async () => {
    const create = (name: string, sshd: TestSshd, profile: string) =>
      timed(v.socket, "/VolumeDriver.Create", { Name: name, Opts: sshfsOptions(sshd, "", profile) });
    expect((await create("hung-a", frozen, "frozen")).json).toEqual({});
    const mounted = await call(v.socket, "/VolumeDriver.Mount", { Name: "hung-a", ID: "m1" });
    const hungDir: string = mounted.json.Mountpoint;
    await writeFile(join(hungDir, "before.txt"), "written before the freeze");

    await frozen.freeze();
    // A container's process looks up a name the mount has never seen: it waits on the frozen sshd.
    const user = spawn("stat", [join(hungDir, "never-seen")], { stdio: "ignore" });
    const connDir = join(v.root, "conns");

    // Eight health ticks with the frozen mount, while the other backend is used.
    const started = Date.now();
    const made = await create("hung-b", healthy, "healthy");
    const mountB = await timed(v.socket, "/VolumeDriver.Mount", { Name: "hung-b", ID: "m2" });
    await writeFile(join(mountB.json.Mountpoint, "during.txt"), "written during the freeze");
    const queries: number[] = [];
    while (Date.now() - started < 8000) {
      for (const name of ["hung-a", "hung-b"]) {
        const got = await timed(v.socket, "/VolumeDriver.Get", { Name: name });
        expect(got.status).toBe(200);
        queries.push(got.ms);
      }
      const listed = await timed(v.socket, "/VolumeDriver.List", {});
      expect(listed.json.Volumes.map((x: { Name: string }) => x.Name).sort()).toEqual(["hung-a", "hung-b"]);
      queries.push(listed.ms);
      await sleep(200);
    }
    const status = (await call(v.socket, "/VolumeDriver.Get", { Name: "hung-a" })).json.Volume.Status;
    const stuck = await stuckOn(connDir);
    const unmountB = await timed(v.socket, "/VolumeDriver.Unmount", { Name: "hung-b", ID: "m2" });
    const removeB = await timed(v.socket, "/VolumeDriver.Remove", { Name: "hung-b" });
    console.log(
      `frozen sshd: create ${made.ms} ms, mount ${mountB.ms} ms, unmount ${unmountB.ms} ms, remove ${removeB.ms} ms of another volume; Get/List max ${Math.max(...queries)} ms over ${queries.length}; left on the frozen mount: ${stuck.join("; ") || "nothing"}`,
    );
    expect(made.json).toEqual({});
    expect(mountB.json.Err).toBeUndefined();
    expect(unmountB.json).toEqual({});
    expect(removeB.json).toEqual({});
    expect(Math.max(made.ms, mountB.ms, unmountB.ms, removeB.ms)).toBeLessThan(5000);
    expect(Math.max(...queries)).toBeLessThan(1000);
    expect(status).toMatchObject({ mounted: true, health: "stale" });
    // One probe per path at a time, even when a killed probe cannot leave the kernel before the mount answers.
    expect(stuck.filter((p) => p.startsWith("stat -f")).length).toBeLessThanOrEqual(1);

    const ended = await v.kill("SIGTERM");
    console.log(`SIGTERM with a frozen backend: exited ${ended.code} after ${ended.ms} ms`);
    expect(ended).toMatchObject({ code: 0, signal: null });
    expect(ended.ms).toBeLessThan(10_000);
    user.kill("SIGKILL");
  });
});
