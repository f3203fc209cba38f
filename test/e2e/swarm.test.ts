/**
 * End to end on a real 2-node Docker Swarm (test/support/swarm.ts): volgate runs as a legacy
 * plugin on each node (its own state, mount root and socket, in the node's mount namespace),
 * started before the node joins so the scheduler sees it at once. A private sshd on the host's
 * 127.0.0.1 is the server. A global service whose mount carries the driver options writes one
 * file per node, and both files land in the server's directory. Local catalog mode (today's
 * default): each node keeps its own definition, made by the Create swarm sends to each node.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dockerClient, removeDirSafely, uniquePluginName } from "../support/dockerd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { eventually } from "../support/procs.ts";
import { sshfsOptions, startSshd, type TestSshd, writeProfile } from "../support/sshd.ts";
import { SWARM_TOOLS, type Swarm, startSwarm, type TeardownReport } from "../support/swarm.ts";
import { startVolgateOnNode } from "../support/swarm-volgate.ts";
import type { Volgate } from "../support/volgate.ts";

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push("root (namespaces, FUSE, dockerd)");
if (!existsSync("/dev/fuse")) missing.push("/dev/fuse");
if (dockerClient() === undefined) missing.push("docker (client)");
const canRun = tierCanRun("e2e (swarm)", [...SWARM_TOOLS, "sshd", "sshfs", "ssh-keyscan"], missing);

const total = (mounts: Record<string, number> | undefined) =>
  Object.values(mounts ?? {}).reduce((a, b) => a + b, 0);

describe.skipIf(!canRun)("volgate on a 2-node swarm (local catalog)", () => {
  const plugin = uniquePluginName();
  const volume = `${plugin}-v`;
  const service = `${plugin}-writer`;
  const measured: Record<string, number> = {};
  const volgates = new Map<string, Volgate>();
  let sshd: TestSshd;
  let remote: string;
  let swarm: Swarm;
  let report: TeardownReport | undefined;

  beforeAll(async () => {
    sshd = await startSshd();
    remote = join(sshd.home, `${plugin}-remote`);
    await mkdir(remote, { recursive: true });
    await chown(remote, sshd.uid, sshd.gid);
    swarm = await startSwarm({
      nodes: 2,
      async beforeSwarm(lab) {
        for (const node of lab.nodes) {
          const volgate = await startVolgateOnNode(lab, node, plugin);
          await writeProfile(volgate.secretsDir, "pw", {
            password: sshd.password,
            known_hosts: `${sshd.knownHostsLine}\n`,
          });
          volgates.set(node.hostname, volgate);
        }
      },
    });
    Object.assign(
      measured,
      Object.fromEntries(Object.entries(swarm.timings).map(([k, v]) => [`up.${k}`, v])),
    );
  });
  afterAll(async () => {
    report ??= await swarm?.stop();
    if (report && report.leftovers.length > 0) console.warn(`swarm lab left: ${report.leftovers.join("; ")}`);
    await sshd?.stop();
    if (remote) await removeDirSafely(remote);
    console.log(`swarm e2e timings (ms): ${JSON.stringify(measured)}`);
  });

  const volgateOf = (hostname: string) => {
    const v = volgates.get(hostname);
    if (v === undefined) throw new Error(`no volgate on ${hostname}`);
    return v;
  };

  it("runs one volgate per node, in that node's mount and UTS namespaces and the host netns", async () => {
    const hostNet = await readlink("/proc/self/ns/net");
    const hostUts = await readlink("/proc/self/ns/uts");
    for (const node of swarm.nodes) {
      const pid = volgateOf(node.hostname).pid();
      expect(pid, `${node.hostname} volgate running`).toBeDefined();
      expect(await readlink(`/proc/${pid}/ns/mnt`)).toBe(node.mountNs);
      expect(await readlink(`/proc/${pid}/ns/net`)).toBe(hostNet);
      expect(await readlink(`/proc/${pid}/ns/uts`)).not.toBe(hostUts);
      expect(await readdir(node.pluginDir)).toEqual([`${plugin}.sock`]);
    }
    // Started before the join, so both nodes advertised the plugin when they joined.
    expect((await swarm.advertising(plugin)).sort()).toEqual(["node1", "node2"]);
  });

  it("a global service's volume with driver options writes from both nodes to the server", async () => {
    const opts = Object.entries(sshfsOptions(sshd, remote, "pw")).map(([k, v]) => `volume-opt=${k}=${v}`);
    const mount = [
      "type=volume",
      `source=${volume}`,
      "target=/data",
      `volume-driver=${plugin}`,
      ...opts,
    ].join(",");
    const script = "hostname > /data/$(hostname).txt; trap 'exit 0' TERM; while :; do sleep 1; done";
    const created = await swarm.manager.docker([
      ...["service", "create", "-d", "--no-resolve-image", "--mode", "global", "--name", service],
      ...["--stop-grace-period", "1s", "--hostname", "{{.Node.Hostname}}", "--mount", mount],
      ...[swarm.image, "sh", "-c", script],
    ]);
    expect(created.code, created.stderr).toBe(0);
    measured.converge = await swarm.converge(service, 2, 60_000);
    const landed = await eventually(async () => (await readdir(remote)).length === 2, 10_000);
    expect(landed, `files on the server: ${await readdir(remote)}`).toBe(true);
    expect((await readdir(remote)).sort()).toEqual(["node1.txt", "node2.txt"]);
    expect(await readFile(join(remote, "node1.txt"), "utf8")).toBe("node1\n");
    expect(await readFile(join(remote, "node2.txt"), "utf8")).toBe("node2\n");
    for (const node of swarm.nodes) {
      // Each node's own volgate made the definition (swarm's Create) and holds one mount of it.
      const state = await volgateOf(node.hostname).state();
      expect(state.volumes.find((v) => v.name === volume)?.options).toMatchObject({
        backend: "sshfs",
        credentials: "pw",
      });
      expect(total(await volgateOf(node.hostname).mounts(volume)), node.hostname).toBe(1);
    }
  });

  it("lists the volume on each node, with volgate as its driver and global scope", async () => {
    for (const node of swarm.nodes) {
      const ls = await node.docker(["volume", "ls", "--format", "{{.Driver}} {{.Name}} {{.Scope}}"]);
      expect(ls.code, ls.stderr).toBe(0);
      expect(ls.stdout.split("\n"), node.hostname).toContain(`${plugin} ${volume} global`);
    }
  });

  it("removing the service stops the tasks and unmounts on every node", async () => {
    const started = performance.now();
    const removed = await swarm.manager.docker(["service", "rm", service]);
    expect(removed.code, removed.stderr).toBe(0);
    for (const node of swarm.nodes) {
      const volgate = volgateOf(node.hostname);
      const gone = await eventually(async () => {
        const tasks = await node.docker(["ps", "-q", "--filter", "label=com.docker.swarm.task"]);
        return tasks.stdout.trim() === "" && total(await volgate.mounts(volume)) === 0;
      }, 20_000);
      expect(gone, `${node.hostname}: tasks gone and volume unmounted`).toBe(true);
      expect(await node.mountsUnder(volgate.root), `${node.hostname} mounts`).toEqual([]);
    }
    measured.serviceRemoved = Math.round(performance.now() - started);
    expect((await swarm.manager.docker(["service", "ls", "-q"])).stdout.trim()).toBe("");
  });

  it("makes a host 127.0.0.1 port reachable inside every node netns once forwarded", async () => {
    const keyscan = (node: (typeof swarm.nodes)[number]) =>
      node.exec(["ssh-keyscan", "-T", "3", "-t", "ed25519", "-p", String(sshd.port), "127.0.0.1"], {
        net: true,
      });
    for (const node of swarm.nodes) expect((await keyscan(node)).stdout, node.hostname).toBe("");
    await swarm.forward([sshd.port]);
    const hostKey = sshd.hostKeyLine.split(" ")[1] ?? "no key";
    for (const node of swarm.nodes) expect((await keyscan(node)).stdout, node.hostname).toContain(hostKey);
  });

  it("tears down without leaving a process, mount, netns or temp dir", async () => {
    report = await swarm.stop();
    Object.assign(
      measured,
      Object.fromEntries(Object.entries(report.timings).map(([k, v]) => [`down.${k}`, v])),
    );
    expect(report.leftovers).toEqual([]);
    // Nothing outlived its dockerd or its volgate (no sshfs left behind): the sweep found no one.
    expect(report.swept).toEqual([]);
    expect(existsSync(swarm.dir)).toBe(false);
    for (const volgate of volgates.values()) {
      expect(volgate.running()).toBe(false);
      expect(existsSync(volgate.dir)).toBe(false);
    }
  });
});
