/**
 * Fault: an sshd frozen (SIGSTOP on it and its sessions) and then stopped, 30 s in all, while a
 * container started by a private dockerd (`docker run -d`) writes to a volume on it every second;
 * meanwhile volumes on a second sshd are created, mounted, written, unmounted and removed through
 * dockerd. Then the sshd comes back (same port and keys): the next Mount works, Status is ok after
 * a health tick, the container's writes land again, and nothing was lost.
 */
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call } from "../support/client.ts";
import {
  type Dockerd,
  optionArgs,
  pluginSocketPath,
  startDockerd,
  uniquePluginName,
} from "../support/dockerd.ts";
import { tierCanRun, which } from "../support/prereq.ts";
import { SHIPPED_NODE_FLAGS, startVolgate, type Volgate } from "../support/volgate.ts";
import { report } from "./lib/figures.ts";
import { cleanUp, whatWasLost } from "./lib/lost.ts";
import { type SshPeer, sshPeer } from "./lib/peers.ts";
import { merged, type Sampled, sample } from "./lib/sampler.ts";

const missing = [
  ...(existsSync("/dev/fuse") ? [] : ["/dev/fuse"]),
  ...(process.getuid?.() === 0 ? [] : ["root"]),
  ...(existsSync("/bin/busybox") || which("busybox") ? [] : ["busybox"]),
];
const canRun = tierCanRun("faults (sshd, dockerd)", ["dockerd", "docker", "sshd", "sshfs"], missing);

const FROZEN_MS = 10_000;
const STOPPED_MS = 20_000;
/**
 * sshfs (reconnect, key login) logs in again at the first request after the server is back (well
 * under a second on loopback); the health probe runs every second and gives up after 2 s. 15 s
 * leaves room for dockerd's own work and a busy machine.
 */
const RECOVERY_BOUND_MS = 15_000;
const WRITER = ["sh", "-c", "trap 'exit 0' TERM; while :; do date +%s > /data/tick; sleep 1; done"];

/** "512 ms" of an "ok (... in 512 ms)" round, or the whole failure. */
const took = (round: string) =>
  round.startsWith("ok") ? (round.split(" in ")[1] ?? "").replace(")", "") : round;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(canRun)("fault: sshd frozen, then stopped, under a running container", () => {
  const plugin = uniquePluginName();
  let v: Volgate;
  let dockerd: Dockerd;
  let faulty: SshPeer;
  let healthy: SshPeer;

  const docker = (args: readonly string[], timeoutMs = 60_000) => dockerd.docker(args, { timeoutMs });
  const createVolume = async (peer: SshPeer, name: string) => {
    const made = await docker([
      "volume",
      "create",
      "-d",
      plugin,
      ...optionArgs(await peer.options(name)),
      name,
    ]);
    expect(made.code, made.stderr).toBe(0);
  };
  const status = async (name: string) =>
    (await call(v.socket, "/VolumeDriver.Get", { Name: name })).json?.Volume?.Status ?? {};

  /** Create, run a container that writes, read the file on the server, remove: all through dockerd. */
  const otherRound = async (name: string): Promise<string> => {
    const started = performance.now();
    await createVolume(healthy, name);
    const ran = await docker([
      "run",
      "--rm",
      "--network",
      "none",
      "-v",
      `${name}:/data`,
      dockerd.image,
      "sh",
      "-c",
      `echo ${name} > /data/f`,
    ]);
    const onServer = await readFile(join(healthy.remote, name, "f"), "utf8").catch(String);
    const removed = await docker(["volume", "rm", name]);
    if (ran.code !== 0 || onServer !== `${name}\n` || removed.code !== 0) {
      return `failed: run ${ran.code} ${ran.stderr.trim()} / server ${JSON.stringify(onServer)} / rm ${removed.stderr.trim()}`;
    }
    return `ok (create/run/write/unmount/remove through dockerd in ${Math.round(performance.now() - started)} ms)`;
  };

  beforeAll(async () => {
    v = await startVolgate({
      socket: pluginSocketPath(plugin),
      env: { VOLGATE_HEALTH_INTERVAL: "1", VOLGATE_MOUNT_TIMEOUT: "10" },
      nodeFlags: SHIPPED_NODE_FLAGS,
    });
    [faulty, healthy] = [await sshPeer(v, "frozen"), await sshPeer(v, "healthy")];
    dockerd = await startDockerd();
  });

  afterAll(async () => {
    await faulty?.sshd.thaw();
    await dockerd?.stop();
    if (v?.running()) await cleanUp(v);
    await v?.stop();
    await faulty?.stop();
    await healthy?.stop();
  });

  it("keeps every other volume working, says so in Status, and recovers when sshd is back", async () => {
    await createVolume(faulty, "fz-used");
    const run = await docker([
      "run",
      "-d",
      "--network",
      "none",
      "-v",
      "fz-used:/data",
      dockerd.image,
      ...WRITER,
    ]);
    expect(run.code, run.stderr).toBe(0);
    const tick = join(faulty.remote, "fz-used", "tick");
    const ticked = async () => Number((await readFile(tick, "utf8").catch(() => "0")).trim());
    for (let i = 0; i < 50 && (await ticked()) === 0; i++) await sleep(100);
    expect(await ticked()).toBeGreaterThan(0);

    const sampler = sample(v.socket, ["fz-used"]);
    const faultAt = performance.now();
    await faulty.sshd.freeze();
    let frozenStatus: Record<string, unknown> = {};
    while (performance.now() - faultAt < 8000 && frozenStatus.health !== "stale") {
      await sleep(250);
      frozenStatus = await status("fz-used");
    }
    const othersFrozen = await otherRound("fz-other-1");
    // What a user sees: docker volume inspect asks the plugin's Get.
    const inspected = await docker(["volume", "inspect", "--format", "{{json .Status}}", "fz-used"]);
    await sleep(Math.max(0, FROZEN_MS - (performance.now() - faultAt)));

    await faulty.sshd.down();
    const stoppedAt = performance.now();
    const othersStopped = await otherRound("fz-other-2");
    await sleep(STOPPED_MS / 2);
    const stoppedStatus = await status("fz-used");
    await sleep(Math.max(0, STOPPED_MS - (performance.now() - stoppedAt)));
    const during: Sampled = await sampler.stop();

    await faulty.sshd.up();
    const backAt = performance.now();
    const since = () => Math.round(performance.now() - backAt);
    const after = sample(v.socket, ["fz-used"]);
    let mountMs = Number.NaN;
    let mountTries = 0;
    while (performance.now() - backAt < 2 * RECOVERY_BOUND_MS) {
      mountTries++;
      const read = await docker(
        ["run", "--rm", "--network", "none", "-v", "fz-used:/data", dockerd.image, "cat", "/data/tick"],
        20_000,
      );
      if (read.code === 0) {
        mountMs = since();
        break;
      }
      await sleep(250);
    }
    let statusMs = Number.NaN;
    while (performance.now() - backAt < 2 * RECOVERY_BOUND_MS && Number.isNaN(statusMs)) {
      if ((await status("fz-used")).health === "ok") statusMs = since();
      else await sleep(100);
    }
    const backEpoch = Math.floor(Date.now() / 1000) - Math.ceil(since() / 1000);
    let writerMs = Number.NaN;
    while (performance.now() - backAt < 2 * RECOVERY_BOUND_MS && Number.isNaN(writerMs)) {
      if ((await ticked()) > backEpoch) writerMs = since();
      else await sleep(200);
    }
    const sampled = merged(during, await after.stop());

    const listed = await docker(["volume", "ls", "-q", "--filter", `driver=${plugin}`]);
    const dockerKnows = listed.stdout.split("\n").filter((n) => n !== "");
    const lost = await whatWasLost(v, dockerKnows);
    const text = (s: Record<string, unknown>) => `${s.health}: ${s.lastError ?? ""}`;
    report({
      scenario: "sshd-frozen-then-stopped",
      getP99: during.getP99,
      listP99: during.listP99,
      others: `${othersFrozen.split(" in ")[0]}: ${took(othersFrozen)} frozen, ${took(othersStopped)} stopped)`,
      status: text(frozenStatus),
      recoveredMs: mountMs,
      lost,
      notes:
        `frozen ${FROZEN_MS / 1000} s then stopped ${STOPPED_MS / 1000} s; ` +
        `Status while stopped "${text(stoppedStatus)}"; after sshd came back: docker run with the volume worked after ` +
        `${mountMs} ms (${mountTries} tries), Status ok after ${statusMs} ms, the running container wrote again after ` +
        `${writerMs} ms; docker volume inspect during the fault ${inspected.ms} ms; Get/List max ` +
        `${Math.round(Math.max(sampled.getMax, sampled.listMax))} ms`,
    });
    expect(frozenStatus).toMatchObject({ mounted: true, health: "stale" });
    expect(String(frozenStatus.lastError)).toMatch(/stopped answering/);
    expect(stoppedStatus.health).not.toBe("ok");
    expect(othersFrozen).toMatch(/^ok/);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(JSON.parse(inspected.stdout)).toMatchObject({ health: "stale" });
    expect(othersStopped).toMatch(/^ok/);
    expect(sampled.failures).toEqual([]);
    expect(Math.max(sampled.getMax, sampled.listMax)).toBeLessThan(1000);
    expect(mountMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(statusMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(writerMs).toBeLessThan(RECOVERY_BOUND_MS);
    expect(dockerKnows).toContain("fz-used");
    expect(lost).toEqual([]);
  });
});
