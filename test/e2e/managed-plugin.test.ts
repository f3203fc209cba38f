/**
 * End to end, the managed plugin: rootfs-build/build.sh makes the amd64 and arm64 plugin
 * directories (the Debian base layers are cached in .cache/rootfs), a private dockerd 20.10 and a
 * private registry on 127.0.0.1 take it through the operator's whole life cycle:
 *   rootfs-build/push.sh (:test-amd64, :test-arm64, and :test = amd64), install :test from the
 *   registry, set (log level, state and credentials
 *   mount sources), enable, an sshfs volume used by two `--network none` containers,
 *   disable refused while volumes exist, forced disable/enable, upgrade to a pushed :v2,
 *   a dockerd restart; volumes and data survive each, and volgate's JSON log lines reach
 *   dockerd's log. The sshd is local, so the "remote" directory is a local one we can read.
 * Timings are printed at the end (console.log).
 */
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readState } from "../../src/state/load.ts";
import {
  type Dockerd,
  type DockerResult,
  dockerClient,
  optionArgs,
  removeDirSafely,
  run,
  startDockerd,
  tail,
} from "../support/dockerd.ts";
import { tierCanRun, which } from "../support/prereq.ts";
import { registryBinary, startRegistry, type TestRegistry } from "../support/registry.ts";
import { buildPlugin, ROOTFS_TOOLS } from "../support/rootfs.ts";
import { sshfsOptions, startSshd, type TestSshd, writeProfile } from "../support/sshd.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const PUSH_SCRIPT = join(REPO, "rootfs-build", "push.sh");

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push("root (chroot, dockerd, FUSE)");
if (!existsSync("/dev/fuse")) missing.push("/dev/fuse");
if (dockerClient() === undefined) missing.push("docker (client)");
if (registryBinary() === undefined) missing.push("docker-registry");
if (!existsSync("/bin/busybox") && which("busybox") === undefined) missing.push("busybox (busybox-static)");
const canRun = tierCanRun("e2e (managed plugin)", ["dockerd", "sshd", ...ROOTFS_TOOLS], missing);

/** What rootfs-build/build.sh enforces (VOLGATE_ROOTFS_MAX_MB's default). */
const MAX_MB = 150;

/** dockerd sends SIGTERM on disable and SIGKILLs after 10 s: volgate must be gone long before. */
const DISABLE_LIMIT_MS = 2000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A container that exits promptly on `docker stop` (busybox sh as PID 1 ignores SIGTERM otherwise). */
const LONG = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"];

function ok(r: DockerResult, what: string): string {
  expect(r.code, `${what} failed (exit ${r.code}): ${r.stderr.trim()}`).toBe(0);
  return r.stdout.trim();
}

/** One plugin output line as dockerd logs it: `... msg="<escaped line>" plugin=<id>`. */
interface PluginLine {
  readonly plugin: string;
  // biome-ignore lint/suspicious/noExplicitAny: volgate's log objects carry arbitrary fields
  readonly json: Record<string, any> | undefined;
  readonly text: string;
}

function pluginLines(dockerdLog: string): PluginLine[] {
  const out: PluginLine[] = [];
  for (const line of dockerdLog.split("\n")) {
    const m = /msg="((?:[^"\\]|\\.)*)" plugin=([0-9a-f]{64})/.exec(line);
    if (!m?.[1] || !m[2]) continue;
    let text: string;
    try {
      text = JSON.parse(`"${m[1]}"`) as string;
    } catch {
      text = m[1];
    }
    let json: PluginLine["json"];
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    out.push({ plugin: m[2], json, text });
  }
  return out;
}

describe.skipIf(!canRun)("managed plugin: build, registry, install, upgrade", () => {
  const timings: Array<[string, number]> = [];
  const notes: string[] = [];
  let work: string;
  let buildDir: string;
  let pluginDir: string;
  let sshd: TestSshd;
  let dockerd: Dockerd;
  let registry: TestRegistry;
  let stateDir: string;
  let credsDir: string;
  let remoteBase: string;
  let remote: string;
  let ref: string; // 127.0.0.1:PORT/volgate:test, also the plugin's (driver) name
  let pluginId = "";

  const docker = (args: readonly string[], timeoutMs = 180_000) => dockerd.docker(args, { timeoutMs });
  const timed = (label: string, r: DockerResult): DockerResult => {
    timings.push([label, r.ms]);
    return r;
  };
  const runIn = (volume: string, script: string) =>
    docker(["run", "--rm", "--network", "none", "-v", `${volume}:/data`, dockerd.image, "sh", "-c", script]);
  const inspect = async (format: string) =>
    ok(await docker(["plugin", "inspect", "-f", format, ref]), "inspect");
  const enabled = async () => (await inspect("{{.Enabled}}")) === "true";
  const volumes = async () =>
    ok(await docker(["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]), "volume ls").split("\n");
  const readBack = async (volume: string) => ok(await runIn(volume, "cat /data/hello.txt"), "read back");
  const logLines = async () => pluginLines(await readFile(dockerd.logFile, "utf8").catch(() => ""));

  /** `docker plugin create REF DIR` then push it to the registry, then drop the local copy. */
  async function publish(tag: string, dir: string) {
    const name = `${registry.host}/volgate:${tag}`;
    const created = timed(`plugin create :${tag}`, await docker(["plugin", "create", name, dir], 300_000));
    ok(created, `plugin create ${name}`);
    ok(timed(`plugin push :${tag}`, await docker(["plugin", "push", name], 300_000)), `plugin push ${name}`);
    ok(await docker(["plugin", "rm", name]), `plugin rm ${name}`);
    return name;
  }

  beforeAll(async () => {
    const bundle = join(REPO, "dist", "bundle", "volgate.mjs");
    if (!existsSync(bundle)) throw new Error(`${bundle} not found: npm run build first (npm test does)`);
    work = await mkdtemp(join(tmpdir(), "volgate-managed-"));
    buildDir = join(work, "build");
    for (const arch of ["amd64", "arm64"] as const) {
      const built = await buildPlugin(arch, buildDir);
      timings.push([`build.sh ${arch} (${built.cached ? "base cached" : "cold"})`, built.ms]);
      notes.push(`rootfs ${arch} ${built.sizeMb} MB`);
      expect(built.sizeMb).toBeLessThanOrEqual(MAX_MB);
      if (arch === "amd64") pluginDir = built.dir;
    }

    sshd = await startSshd();
    remoteBase = join(sshd.home, `volgate-managed-${process.pid}`);
    remote = join(remoteBase, "data");
    await mkdir(remote, { recursive: true });
    await chown(remoteBase, sshd.uid, sshd.gid);
    await chown(remote, sshd.uid, sshd.gid);

    // The operator's host directories: state and credentials, outside /var/lib/docker.
    stateDir = join(work, "state");
    credsDir = join(work, "credentials");
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await writeProfile(credsDir, "key", {
      private_key: await readFile(sshd.privateKeyPath, "utf8"),
      known_hosts: `${sshd.knownHostsLine}\n`,
    });
    await chmod(credsDir, 0o700);

    registry = await startRegistry();
    const started = performance.now();
    dockerd = await startDockerd();
    timings.push(["dockerd start + image import", Math.round(performance.now() - started)]);
  });

  beforeEach((ctx) => {
    ctx.onTestFailed(async () => {
      console.log(`--- dockerd log (${dockerd?.logFile}):\n${(await dockerd?.logTail(40)) ?? ""}`);
      console.log(`--- sshd log:\n${await tail(sshd?.logFile ?? "", 15)}`);
      if (registry) console.log(`--- registry log:\n${await tail(registry.logFile, 10)}`);
    });
  });

  afterAll(async () => {
    const width = Math.max(...timings.map(([k]) => k.length), 4);
    const table = timings.map(([k, ms]) => `  ${k.padEnd(width)}  ${String(ms).padStart(7)} ms`);
    console.log(
      ["managed plugin timings (dockerd 20.10):", ...table, ...notes.map((n) => `  ${n}`)].join("\n"),
    );
    if (dockerd) {
      // Let volgate unmount before the daemon goes: remove containers and volumes, then the plugin.
      const ids = (await docker(["ps", "-aq"])).stdout.split("\n").filter((s) => s.trim() !== "");
      if (ids.length > 0) await docker(["rm", "-f", ...ids]);
      const vols = (await docker(["volume", "ls", "-q"])).stdout.split("\n").filter((s) => s.trim() !== "");
      for (const v of vols) await docker(["volume", "rm", "-f", v]);
      if (ref) {
        await docker(["plugin", "disable", "-f", ref]);
        await docker(["plugin", "rm", "-f", ref]);
      }
      await dockerd.stop();
    }
    await registry?.stop();
    await sshd?.stop();
    if (remoteBase) await removeDirSafely(remoteBase);
    if (work) await removeDirSafely(work);
  });

  it("pushes a tag per architecture (the plain tag is amd64) and installs it from the registry", async () => {
    const pushed = await run("bash", [PUSH_SCRIPT, registry.host, "test"], {
      timeoutMs: 540_000,
      env: {
        PATH: process.env.PATH,
        HOME: work,
        DOCKER_HOST: `unix://${dockerd.socket}`,
        VOLGATE_BUILD_DIR: buildDir,
      },
    });
    expect(pushed.code, `push.sh failed:\n${pushed.stdout}\n${pushed.stderr}`).toBe(0);
    for (const m of pushed.stdout.matchAll(
      /^push\.sh: (created|pushed) \S+\/volgate:(\S+) .*in ([\d.]+) s$/gm,
    )) {
      timings.push([
        `plugin ${m[1] === "created" ? "create" : "push"} :${m[2]}`,
        Math.round(Number(m[3]) * 1000),
      ]);
    }
    const tags = await registry.api("/v2/volgate/tags/list");
    expect([...tags.tags].sort()).toEqual(["test", "test-amd64", "test-arm64"]);
    // Same plugin under :test and :test-amd64 (same rootfs layer), another under :test-arm64.
    const layer = async (tag: string) =>
      (await registry.api(`/v2/volgate/manifests/${tag}`)).layers[0].digest;
    expect(await layer("test")).toBe(await layer("test-amd64"));
    expect(await layer("test-arm64")).not.toBe(await layer("test-amd64"));

    ref = `${registry.host}/volgate:test`;
    const installed = timed(
      "plugin install (from registry)",
      await docker(["plugin", "install", "--grant-all-permissions", "--disable", ref], 300_000),
    );
    ok(installed, "plugin install");
    pluginId = await inspect("{{.Id}}");
    expect(await enabled()).toBe(false);
    // What the operator grants: CAP_SYS_ADMIN, /dev/fuse, host network, two host directories.
    const config = JSON.parse(await inspect("{{json .Config}}"));
    expect(config.Linux.Capabilities).toEqual(["CAP_SYS_ADMIN"]);
    expect(config.Linux.AllowAllDevices).toBe(false);
    expect(config.Linux.Devices.map((d: { Path: string }) => d.Path)).toEqual(["/dev/fuse"]);
    expect(config.Network.Type).toBe("host");
    expect(config.PropagatedMount).toBe("/mnt/volgate");
    expect(config.Interface.Socket).toBe("volgate.sock");
  });

  it("takes its settings and enables", async () => {
    ok(
      await docker([
        "plugin",
        "set",
        ref,
        "VOLGATE_LOG_LEVEL=debug",
        // The catalog settings are settable (issue 8: docker plugin set on every node); local here.
        "VOLGATE_CATALOG=local",
        "VOLGATE_CATALOG_CREDENTIALS=",
        "VOLGATE_NODE_NAME=managed-node",
        `state.source=${stateDir}`,
        `credentials.source=${credsDir}`,
      ]),
      "plugin set",
    );
    const r = timed("plugin enable", await docker(["plugin", "enable", ref]));
    ok(r, "plugin enable");
    expect(await enabled()).toBe(true);
    const mounts = JSON.parse(await inspect("{{json .Settings.Mounts}}"));
    expect(mounts.map((m: { Source: string }) => m.Source)).toEqual([stateDir, credsDir]);
    expect(JSON.parse(await inspect("{{json .Settings.Env}}"))).toEqual(
      expect.arrayContaining(["VOLGATE_CATALOG=local", "VOLGATE_NODE_NAME=managed-node"]),
    );
  });

  it("serves an sshfs volume that two containers share", async () => {
    const args = optionArgs(sshfsOptions(sshd, remote, "key"));
    const created = timed(
      "volume create",
      await docker(["volume", "create", "-d", ref, ...args, "--", "v1"]),
    );
    expect(ok(created, "volume create")).toBe("v1");
    const info = JSON.parse(ok(await docker(["volume", "inspect", "v1"]), "volume inspect"))[0];
    expect(info.Driver).toBe(ref);
    expect(info.Scope).toBe("global");

    ok(timed("run: write", await runIn("v1", "echo hello from a container > /data/hello.txt")), "write");
    expect(await readBack("v1")).toBe("hello from a container");
    // It really went over sshfs to the "remote" directory, as the ssh user.
    expect(await readFile(join(remote, "hello.txt"), "utf8")).toBe("hello from a container\n");
    // The state lives in the host directory the operator chose.
    expect([...(await readState(stateDir)).keys()]).toEqual(["v1"]);
  });

  it("refuses a plain disable while volumes exist", async () => {
    const r = await docker(["plugin", "disable", ref]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/in use/);
    expect(await enabled()).toBe(true);
  });

  it("disables within 2 s (SIGTERM reaches node) and keeps volumes and data across enable", async () => {
    // A container keeps v1 mounted through the plugin restart: volgate must remount it on start.
    const holder = ok(
      await docker(["run", "-d", "--network", "none", "-v", "v1:/data", dockerd.image, ...LONG]),
      "docker run -d",
    );
    const off = timed("plugin disable -f (volume in use)", await docker(["plugin", "disable", "-f", ref]));
    ok(off, "plugin disable -f");
    expect(off.ms).toBeLessThan(DISABLE_LIMIT_MS);
    const stopped = (await logLines()).filter((l) => l.plugin === pluginId && l.json?.msg === "stopped");
    expect(stopped.length).toBeGreaterThan(0);
    ok(timed("plugin enable (again)", await docker(["plugin", "enable", ref])), "plugin enable");
    expect(await volumes()).toContain(`${ref} v1`);
    expect(await readBack("v1")).toBe("hello from a container");
    ok(await docker(["rm", "-f", holder]), "docker rm -f");
    const counts = (await readState(stateDir)).get("v1")?.mounts ?? {};
    expect(Object.values(counts as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it("upgrades to a pushed :v2 and keeps volumes, data and settings", async () => {
    // A :v2 whose rootfs differs (dockerd refuses a second plugin with identical content).
    const v2Dir = join(work, "plugin-v2");
    await mkdir(v2Dir);
    ok(await run("cp", ["-al", join(pluginDir, "rootfs"), join(v2Dir, "rootfs")]), "cp -al rootfs");
    await writeFile(join(v2Dir, "config.json"), await readFile(join(pluginDir, "config.json")));
    await writeFile(join(v2Dir, "rootfs", "opt", "volgate", "UPGRADE-TEST"), "v2\n");
    const v2 = await publish("v2", v2Dir);
    await rm(v2Dir, { recursive: true, force: true });

    ok(timed("plugin disable -f (for upgrade)", await docker(["plugin", "disable", "-f", ref])), "disable");
    const up = timed(
      "plugin upgrade :test -> :v2",
      await docker(["plugin", "upgrade", "--grant-all-permissions", "--skip-remote-check", ref, v2], 300_000),
    );
    ok(up, "plugin upgrade");
    expect(await inspect("{{.PluginReference}}")).toBe(v2);
    const env: string[] = JSON.parse(await inspect("{{json .Settings.Env}}"));
    expect(env).toContain("VOLGATE_LOG_LEVEL=debug");
    const sources = JSON.parse(await inspect("{{json .Config.Mounts}}")).map(
      (m: { Source: string }) => m.Source,
    );
    if (sources[0] !== stateDir || sources[1] !== credsDir) {
      // dockerd 20.10 rebuilds the mounts from the new config on upgrade: the operator sets them again.
      notes.push(`upgrade reset the mount sources to ${sources.join(", ")}: set again before enable`);
      ok(
        await docker(["plugin", "set", ref, `state.source=${stateDir}`, `credentials.source=${credsDir}`]),
        "plugin set (after upgrade)",
      );
    }
    ok(timed("plugin enable (after upgrade)", await docker(["plugin", "enable", ref])), "enable");
    expect(await volumes()).toContain(`${ref} v1`);
    expect(await readBack("v1")).toBe("hello from a container");
  });

  it("keeps volumes and data across a dockerd restart", async () => {
    const started = performance.now();
    await dockerd.restart();
    timings.push(["dockerd restart", Math.round(performance.now() - started)]);
    for (let i = 0; i < 100 && !(await enabled()); i++) await sleep(100);
    expect(await enabled()).toBe(true);
    expect(await volumes()).toContain(`${ref} v1`);
    expect(await readBack("v1")).toBe("hello from a container");
  });

  it("sends volgate's JSON log lines to dockerd's log", async () => {
    const lines = (await logLines()).filter((l) => l.plugin === pluginId);
    const json = lines.flatMap((l) => (l.json ? [l.json] : []));
    expect(json.length).toBeGreaterThan(0);
    expect(json.every((j) => j.name === "volgate" && typeof j.level === "number")).toBe(true);
    expect(json.filter((j) => j.msg === "listening").length).toBeGreaterThanOrEqual(3);
    expect(json.some((j) => j.level === 20)).toBe(true); // VOLGATE_LOG_LEVEL=debug took effect
    // The enable while a container still held v1 remounted it; nothing failed to come back.
    const reconciled = json.filter((j) => j.msg === "reconciled mounts after start");
    notes.push(
      `reconcile reports: ${reconciled.map((j) => JSON.stringify({ ...j, time: undefined })).join(" ")}`,
    );
    expect(reconciled.some((j) => j.remounted >= 1)).toBe(true);
    expect(reconciled.every((j) => j.failed === 0)).toBe(true);
    for (const j of json.filter((j) => j.level >= 40)) notes.push(`volgate ${j.level}: ${JSON.stringify(j)}`);
    const notJson = lines.filter((l) => l.json === undefined).map((l) => l.text);
    if (notJson.length > 0) notes.push(`plugin lines that are not JSON: ${notJson.slice(0, 5).join(" | ")}`);
    expect(notJson).toEqual([]);
  });
});
