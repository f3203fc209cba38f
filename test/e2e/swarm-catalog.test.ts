/**
 * Issue 8 end to end on a real 3-node Docker Swarm (test/support/swarm.ts): volgate as a legacy
 * plugin on every node with the shared catalog on a real etcd (on the host's 127.0.0.1: volgate
 * runs in the host netns), its node name the node's hostname (the default), a private sshd as the
 * server. A volume made with `docker volume create` on node1 serves a task on node2 whose mount
 * names no driver and no options; every node lists the same volumes; node1 may not remove what
 * node2 uses; `docker stack deploy` of a global service with driver_opts; with etcd stopped, known
 * volumes still inspect and mount, and a create fails saying why.
 */
import { existsSync } from "node:fs";
import { chown, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogUrl, until, writeSshProfile } from "../support/catalog.ts";
import { dockerClient, IMAGE, removeDirSafely, uniquePluginName } from "../support/dockerd.ts";
import { startEtcd, type TestEtcd } from "../support/etcd.ts";
import { tierCanRun } from "../support/prereq.ts";
import { sshfsOptions, startSshd, type TestSshd } from "../support/sshd.ts";
import {
  SWARM_TOOLS,
  type Swarm,
  type SwarmNode,
  startSwarm,
  type TeardownReport,
} from "../support/swarm.ts";
import { startVolgateOnNode } from "../support/swarm-volgate.ts";
import type { Volgate } from "../support/volgate.ts";

const missing: string[] = [];
if (process.getuid?.() !== 0) missing.push("root (namespaces, FUSE, dockerd)");
if (!existsSync("/dev/fuse")) missing.push("/dev/fuse");
if (dockerClient() === undefined) missing.push("docker (client)");
const canRun = tierCanRun("e2e (swarm catalog)", [...SWARM_TOOLS, "etcd", "sshd", "sshfs"], missing);

describe.skipIf(!canRun)("volgate on a 3-node swarm with the etcd catalog", () => {
  const plugin = uniquePluginName();
  const shared = `${plugin}-shared`;
  const measured: Record<string, number> = {};
  const volgates = new Map<string, Volgate>();
  let etcd: TestEtcd;
  let sshd: TestSshd;
  let remote: string;
  let swarm: Swarm;
  let report: TeardownReport | undefined;
  const opts = (path: string) =>
    Object.entries(sshfsOptions(sshd, path, "pw")).flatMap(([k, v]) => ["-o", `${k}=${v}`]);
  const volumes = async (node: SwarmNode) => {
    const ls = await node.docker(["volume", "ls", "--format", "{{.Driver}} {{.Name}}"]);
    expect(ls.code, ls.stderr).toBe(0);
    return ls.stdout
      .split("\n")
      .filter((l) => l.startsWith(`${plugin} `))
      .sort();
  };
  const onEvery = async (check: (node: SwarmNode) => Promise<boolean>) =>
    (await Promise.all(swarm.nodes.map(check))).every(Boolean);

  beforeAll(async () => {
    [etcd, sshd] = await Promise.all([startEtcd(), startSshd()]);
    remote = join(sshd.home, `${plugin}-remote`);
    await mkdir(remote, { recursive: true });
    await chown(remote, sshd.uid, sshd.gid);
    swarm = await startSwarm({
      nodes: 3,
      async beforeSwarm(lab) {
        for (const node of lab.nodes) {
          const volgate = await startVolgateOnNode(lab, node, plugin, { VOLGATE_CATALOG: catalogUrl(etcd) });
          await writeSshProfile(sshd, volgate.secretsDir);
          volgates.set(node.hostname, volgate);
        }
      },
    });
    for (const v of volgates.values()) await v.waitForLog((l) => l.msg === "volume catalog in sync");
    for (const [step, ms] of Object.entries(swarm.timings)) measured[`up.${step}`] = ms;
  });
  afterAll(async () => {
    report ??= await swarm?.stop();
    if (report && report.leftovers.length > 0) console.warn(`swarm lab left: ${report.leftovers.join("; ")}`);
    await Promise.all([etcd?.stop(), sshd?.stop()]);
    if (remote) await removeDirSafely(remote);
    console.log(`swarm catalog e2e timings (ms): ${JSON.stringify(measured)}`);
  });

  it("a volume created on node1 serves a task on node2 whose mount names no driver and no options", async () => {
    for (const node of swarm.nodes) expect(await volumes(node)).toEqual([]); // a List before the Create
    const created = await swarm.node(1).docker(["volume", "create", "-d", plugin, ...opts(remote), shared]);
    expect(created.code, created.stderr).toBe(0);
    measured.seenEverywhere = await until(
      () => onEvery(async (n) => (await volumes(n)).includes(`${plugin} ${shared}`)),
      3000,
      "listed on every node",
    );
    const service = `${plugin}-on-node2`;
    const script = "hostname > /data/from-$(hostname).txt; trap 'exit 0' TERM; while :; do sleep 1; done";
    const run = await swarm.manager.docker([
      ...["service", "create", "-d", "--no-resolve-image", "--name", service, "--stop-grace-period", "1s"],
      ...["--constraint", "node.hostname==node2", "--hostname", "{{.Node.Hostname}}"],
      ...["--mount", `type=volume,source=${shared},target=/data`, swarm.image, "sh", "-c", script],
    ]);
    expect(run.code, run.stderr).toBe(0);
    measured.converge = await swarm.converge(service, 1, 60_000);
    await until(
      async () => existsSync(join(remote, "from-node2.txt")),
      10_000,
      "the task's file on the server",
    );
    expect(await readFile(join(remote, "from-node2.txt"), "utf8")).toBe("node2\n");
    // node2 knew the volume from the catalog: it never made a local one of that name.
    const driver = await swarm.node(2).docker(["volume", "inspect", "-f", "{{.Driver}}", shared]);
    expect(driver.stdout.trim()).toBe(plugin);
  });

  it("lists the same volumes on every node", async () => {
    const all = await Promise.all(swarm.nodes.map(volumes));
    expect(all[0]).toEqual([`${plugin} ${shared}`]);
    for (const listed of all) expect(listed).toEqual(all[0]);
  });

  it("refuses docker volume rm on node1 while node2 uses the volume, naming node2", async () => {
    const rm = await swarm.node(1).docker(["volume", "rm", shared]);
    expect(rm.code).not.toBe(0);
    expect(rm.stderr).toMatch(new RegExp(`volume ${shared} is in use on node node2: stop the containers`));
    expect(await volumes(swarm.node(3))).toContain(`${plugin} ${shared}`);
  });

  it("deploys a stack whose global service's volume carries driver_opts, one file a node", async () => {
    const stackRemote = join(remote, "stack");
    await mkdir(stackRemote);
    await chown(stackRemote, sshd.uid, sshd.gid);
    const driverOpts = Object.entries(sshfsOptions(sshd, stackRemote, "pw"))
      .map(([k, v]) => `      ${k}: "${v}"`)
      .join("\n");
    const compose = join(swarm.dir, "stack.yml");
    await writeFile(
      compose,
      `version: "3.8"
services:
  writer:
    image: ${IMAGE}
    hostname: "{{.Node.Hostname}}"
    command: ["sh", "-c", "hostname > /data/$$(hostname).txt; trap 'exit 0' TERM; while :; do sleep 1; done"]
    stop_grace_period: 1s
    deploy:
      mode: global
    volumes:
      - data:/data
volumes:
  data:
    driver: ${plugin}
    driver_opts:
${driverOpts}
`,
    );
    const stack = `${plugin.slice(-8)}s`;
    const deployed = await swarm.manager.docker([
      "stack",
      "deploy",
      "--resolve-image",
      "never",
      "-c",
      compose,
      stack,
    ]);
    expect(deployed.code, deployed.stderr).toBe(0);
    measured.stackConverge = await swarm.converge(`${stack}_writer`, 3, 90_000);
    await until(async () => (await readdir(stackRemote)).length === 3, 10_000, "a file from every node");
    expect((await readdir(stackRemote)).sort()).toEqual(["node1.txt", "node2.txt", "node3.txt"]);
    // Swarm's Create on every node made one definition, the same everywhere.
    const listed = await etcd.etcdctl(["get", "--prefix", "--keys-only", "/volgate/volumes/"]);
    expect(listed.stdout.split("\n").filter(Boolean).sort()).toEqual(
      [`/volgate/volumes/${shared}`, `/volgate/volumes/${stack}_data`].sort(),
    );
    for (const node of swarm.nodes) expect(await volumes(node)).toContain(`${plugin} ${stack}_data`);
    expect((await swarm.manager.docker(["stack", "rm", stack])).code).toBe(0);
  });

  it("with etcd stopped, known volumes inspect and mount on any node; a create fails saying why", async () => {
    const before = await volumes(swarm.node(3));
    await etcd.members[0]?.kill();
    try {
      await whileDown(before);
    } finally {
      await etcd.members[0]?.start();
    }
  });

  const whileDown = async (before: string[]) => {
    const status = async (node: SwarmNode) =>
      (await node.docker(["volume", "inspect", "-f", "{{json .Status}}", shared])).stdout;
    measured.outageNoticed = await until(
      () => onEvery(async (n) => /unreachable since/.test(await status(n))),
      15_000,
      "every node sees etcd down",
    );
    const node3 = swarm.node(3);
    expect(await status(node3)).toMatch(/this node works from its copy/);
    const used = await node3.docker([
      ...["run", "--rm", "--network", "none", "-v", `${shared}:/data`, IMAGE],
      ...["sh", "-c", "cat /data/from-node2.txt && echo written-while-etcd-was-down > /data/outage.txt"],
    ]);
    expect(used.code, used.stderr).toBe(0);
    expect(used.stdout).toBe("node2\n");
    expect(await readFile(join(remote, "outage.txt"), "utf8")).toBe("written-while-etcd-was-down\n");
    const refused = await swarm
      .node(1)
      .docker(["volume", "create", "-d", plugin, ...opts(remote), `${plugin}-new`]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(
      /the volume catalog etcd:\/\/127\.0\.0\.1:\d+\/volgate\/ is unreachable .*existing volumes keep working/,
    );
    expect(await volumes(node3)).toEqual(before); // never a definition on one node only
  };

  it("once nothing uses it, node1 removes the volume, and it leaves every node's list", async () => {
    await until(
      () =>
        onEvery(async (n) =>
          /"catalog":"etcd:[^"]* ok"/.test(
            await n.docker(["volume", "inspect", "-f", "{{json .Status}}", shared]).then((r) => r.stdout),
          ),
        ),
      15_000,
      "every node back in sync",
    );
    expect((await swarm.manager.docker(["service", "rm", `${plugin}-on-node2`])).code).toBe(0);
    // node2 counts no mount of it any more and has taken its in-use marker back.
    const markers = async () =>
      (await etcd.etcdctl(["get", "--prefix", "--keys-only", `/volgate/inuse/${shared}/`])).stdout.trim();
    await until(async () => (await markers()) === "", 20_000, "node2's marker gone", markers);
    const rm = await swarm.node(1).docker(["volume", "rm", shared]);
    expect(rm.code, rm.stderr).toBe(0);
    measured.removedEverywhere = await until(
      () => onEvery(async (n) => !(await volumes(n)).includes(`${plugin} ${shared}`)),
      5000,
      "gone from every node's list",
    );
    expect(existsSync(join(remote, "from-node2.txt"))).toBe(true); // the data stays
  });

  it("tears down without leaving a process, mount, netns or temp dir", async () => {
    report = await swarm.stop();
    for (const [step, ms] of Object.entries(report.timings)) measured[`down.${step}`] = ms;
    expect(report.leftovers).toEqual([]);
    expect(report.swept).toEqual([]); // no sshfs outlived its volgate
    for (const volgate of volgates.values()) expect(volgate.running()).toBe(false);
  });
});
