/**
 * The whole daemon, driven over its socket like dockerd drives it, against a real kernel nfsd and
 * NFS client inside one guest kernel (UML, or QEMU where UML does not boot; see test/support/guest.ts).
 * The daemon bundle is copied to a temp dir; in the guest a Node script starts `node bundle/volgate.mjs`
 * on the host's Node (json logs, every dir in guest tmpfs), creates volumes in the three option forms, mounts, writes, SIGKILLs the daemon with
 * volumes mounted and starts it again (live kernel mounts must be adopted, not mounted twice),
 * unmounts, removes, and checks the errors users see. It prints one `RESULT {json}` line per step;
 * the tests below assert on those.
 */
import { existsSync } from "node:fs";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXPORTS, type GuestResult, guestTierCanRun, NFS_SERVER, pickGuest } from "../support/guest.ts";

const canRun = guestTierCanRun("nfs");
const guest = canRun ? await pickGuest() : undefined;
/** Deadlines and time bounds grow with the guest's slowness (QEMU TCG emulates every instruction). */
const SCALE = guest?.timeScale ?? 1;
const REPO = fileURLToPath(new URL("../..", import.meta.url));

/** Bytes written and read back through a volume's mountpoint for the throughput figures. */
const BIG_MB = 64;

/** Volume names: the -o form each was created with. */
const V1 = "app1";
const V2 = "localform";
const V3 = "shareform";

/**
 * Runs in the guest as `node guest.mjs <bundle dir>`. Plain JS in a String.raw: `${...}` below are
 * the host's constants; the guest code itself uses no template literals.
 */
const GUEST_SCRIPT = String.raw`
import { spawn } from "node:child_process";
import { closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync,
  statSync, writeFileSync, writeSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";

const bundle = process.argv[2];
const SERVER = "${NFS_SERVER}";
const EXPORT = "${EXPORTS.data}";
const BIG_MB = ${BIG_MB};
const SCALE = ${SCALE};
const [V1, V2, V3] = ["${V1}", "${V2}", "${V3}"];

const base = mkdtempSync("/tmp/volgate-daemon-");
const DIRS = { run: join(base, "run"), root: join(base, "root"), state: join(base, "state"),
  secrets: join(base, "secrets") };
for (const d of Object.values(DIRS)) mkdirSync(d, { recursive: true, mode: 0o700 });
const SOCKET = join(DIRS.run, "volgate.sock");
const ROOT = DIRS.root;
const CONNS = join(ROOT, "conns") + "/";
const VOLUMES = join(ROOT, "volumes") + "/";

const report = (name, fields) => console.log("RESULT " + JSON.stringify({ name, ...fields }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const since = (t) => Math.round(performance.now() - t);

// ---- a dockerd-shaped client: POST, no Content-Type, the plugin Accept header, JSON + "\n" ----
let agent = new Agent({ keepAlive: true });
function call(path, body) {
  const payload = body === undefined ? "" : JSON.stringify(body) + "\n";
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath: SOCKET, agent, path, method: "POST",
      headers: {
        Accept: "application/vnd.docker.plugins.v1.2+json",
        "Content-Length": Buffer.byteLength(payload),
      },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => { text += d; });
      res.on("end", () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, text, ms: since(started) });
      });
    });
    req.setTimeout(90000 * SCALE, () => req.destroy(new Error("no answer to " + path + " within "
      + 90 * SCALE + " s")));
    req.on("error", reject);
    req.end(payload);
  });
}

// ---- the daemon as a child process, its json log lines parsed as they arrive ----
const allLogs = [];
function startDaemon(label) {
  agent.destroy();
  agent = new Agent({ keepAlive: true });
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(bundle, "volgate.mjs")], {
    env: { ...process.env, VOLGATE_SOCKET: SOCKET, VOLGATE_ROOT: ROOT, VOLGATE_STATE_DIR: DIRS.state,
      VOLGATE_SECRETS_DIR: DIRS.secrets, VOLGATE_LOG_FORMAT: "json",
      // These cases watch the export's mount go with its last volume: no warm connections.
      VOLGATE_CONNECTION_GRACE: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const d = { label, child, t0, logs: [], stderr: "", waiters: new Set(), exited: undefined };
  const wake = () => { for (const w of [...d.waiters]) w(); };
  d.exit = new Promise((resolve) => child.once("exit", (code, signal) => {
    d.exited = { code, signal, ms: since(t0) };
    wake();
    resolve(d.exited);
  }));
  createInterface({ input: child.stdout }).on("line", (line) => {
    let entry;
    try { entry = JSON.parse(line); } catch { entry = { msg: line, unparsed: true }; }
    entry.at = since(t0);
    d.logs.push(entry);
    allLogs.push({ daemon: label, ...entry });
    wake();
  });
  child.stderr.on("data", (b) => { d.stderr += b; });
  return d;
}

function waitLog(d, msg, timeoutMs) {
  return new Promise((resolve, reject) => {
    const finish = (fn, value) => { clearTimeout(timer); d.waiters.delete(check); fn(value); };
    const check = () => {
      const entry = d.logs.find((l) => l.msg === msg);
      if (entry) finish(resolve, entry);
      else if (d.exited) finish(reject, new Error(d.label + " daemon exited (" + JSON.stringify(d.exited)
        + ") before logging '" + msg + "'; stderr: " + d.stderr));
    };
    const timer = setTimeout(() => finish(reject, new Error("no '" + msg + "' log line within " + timeoutMs
      + " ms; stderr: " + d.stderr)), timeoutMs);
    d.waiters.add(check);
    check();
  });
}

/** Milliseconds from spawn until the socket answers Capabilities. */
async function waitSocket(d, timeoutMs) {
  for (;;) {
    try {
      const r = await call("/VolumeDriver.Capabilities", {});
      if (r.status === 200) return since(d.t0);
    } catch {}
    if (d.exited) throw new Error(d.label + " daemon exited: " + JSON.stringify(d.exited) + " " + d.stderr);
    if (since(d.t0) > timeoutMs) throw new Error("socket not answering after " + timeoutMs + " ms");
    await sleep(10);
  }
}

async function startAndWait(label) {
  const d = startDaemon(label);
  const socketMs = await waitSocket(d, 30000 * SCALE);
  const listening = await waitLog(d, "listening", 5000 * SCALE);
  const reconciled = await waitLog(d, "reconciled mounts after start", 60000 * SCALE);
  const { adopted, remounted, failed, cleaned } = reconciled;
  return { d, socketMs, logMs: listening.at, daemonMs: listening.ms, reconcileAt: reconciled.at,
    report: { adopted, remounted, failed, cleaned } };
}

// ---- the mount table ----
function mountinfo() {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter(Boolean).map((line) => {
    const f = line.split(" ");
    const dash = f.indexOf("-");
    return { root: f[3], mountPoint: f[4], options: f[5], fsType: f[dash + 1], source: f[dash + 2] };
  });
}
/** NFS client mounts (not nfsd's /proc/fs/nfsd) whose mountpoint starts with prefix. */
const nfsUnder = (prefix) =>
  mountinfo().filter((e) => (e.fsType === "nfs" || e.fsType === "nfs4") && e.mountPoint.startsWith(prefix));
const nfs4Conns = () => nfsUnder(CONNS).filter((e) => e.fsType === "nfs4");
const entryAt = (path) => mountinfo().filter((e) => e.mountPoint === path).at(-1);
const checkDirs = () => readdirSync(join(DIRS.state, "work")).filter((f) => f.startsWith("nfs-check-"));
const isDir = (p) => { try { return statSync(p).isDirectory(); } catch { return false; } };
const readOr = (p) => { try { return readFileSync(p, "utf8"); } catch (err) { return "ERR " + err.code; } };

async function step(name, fn) {
  const started = performance.now();
  try {
    report(name, { ok: true, ...(await fn()), stepMs: since(started) });
  } catch (err) {
    report(name, { ok: false, error: String(err && err.stack || err), stepMs: since(started) });
  }
}

const OPTS1 = { backend: "nfs", server: SERVER, export: EXPORT, path: "app1", create: "true" };
const OPTS2 = { backend: "nfs", type: "nfs", o: "addr=" + SERVER + ",nfsvers=4", device: ":" + EXPORT };
const OPTS3 = { backend: "nfs", share: SERVER + ":" + EXPORT };
const create = (Name, Opts) => call("/VolumeDriver.Create", { Name, Opts });
const mount = (Name, ID) => call("/VolumeDriver.Mount", { Name, ID });
const unmount = (Name, ID) => call("/VolumeDriver.Unmount", { Name, ID });
const get = (Name) => call("/VolumeDriver.Get", { Name });
const answer = (r) => ({ status: r.status, body: r.json ?? r.text, ms: r.ms });

let d;
try {
  await step("start", async () => {
    const s = await startAndWait("first");
    d = s.d;
    delete s.d;
    return s;
  });

  await step("create-v1", async () => {
    const r = await create(V1, OPTS1);
    const logged = d.logs.find((l) => l.op === "Create" && l.volume === V1);
    return { ...answer(r), logMs: logged && logged.ms, serverDir: isDir(join(EXPORT, "app1")),
      checkDirs: checkDirs(), nfsMounts: nfsUnder("/").length };
  });
  await step("create-v2", async () => answer(await create(V2, OPTS2)));
  await step("create-v3", async () => answer(await create(V3, OPTS3)));
  await step("create-again", async () => answer(await create(V1, OPTS1)));
  await step("create-conflict", async () => answer(await create(V1, { ...OPTS1, path: "other" })));
  await step("get-v1", async () => answer(await get(V1)));
  await step("list", async () => answer(await call("/VolumeDriver.List", {})));

  let mp1 = "";
  await step("mount-v1", async () => {
    const r = await mount(V1, "ctr1");
    mp1 = r.json && r.json.Mountpoint;
    const text = "written through volgate's NFS volume\n";
    writeFileSync(join(mp1, "hello.txt"), text);
    const conn = nfs4Conns();
    // The bind's source is the volume's directory inside the connection (same inode as app1 there).
    const sameDir = conn.length === 1 && statSync(mp1).ino === statSync(join(conn[0].mountPoint, "app1")).ino;
    return { ...answer(r), expected: join(VOLUMES, V1), entry: entryAt(mp1), conn, sameDir, text,
      readBack: readOr(join(mp1, "hello.txt")), serverSide: readOr(join(EXPORT, "app1", "hello.txt")),
      get: (await get(V1)).json };
  });

  await step("throughput", async () => {
    const file = join(mp1, "big.bin");
    const block = Buffer.alloc(1 << 20, 0x5a);
    let t = performance.now();
    let fd = openSync(file, "w");
    for (let i = 0; i < BIG_MB; i++) writeSync(fd, block);
    fsyncSync(fd);
    closeSync(fd);
    const writeMs = since(t);
    let dropped = true;
    try { writeFileSync("/proc/sys/vm/drop_caches", "3"); } catch { dropped = false; }
    t = performance.now();
    fd = openSync(file, "r");
    let bytes = 0;
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = readSync(fd, buf)) > 0; ) bytes += n;
    closeSync(fd);
    const readMs = since(t);
    return { writeMs, readMs, dropped, bytes, serverBytes: statSync(join(EXPORT, "app1", "big.bin")).size };
  });

  await step("mount-v2", async () => {
    const r = await mount(V2, "ctr2");
    const mp = r.json && r.json.Mountpoint;
    writeFileSync(join(mp, "from-local-form.txt"), "local form\n");
    return { ...answer(r), conns: nfs4Conns(), volumeMounts: nfsUnder(VOLUMES).map((e) => e.mountPoint),
      sharedRead: readOr(join(mp, "app1", "hello.txt")),
      serverSide: readOr(join(EXPORT, "from-local-form.txt")),
      get: (await get(V2)).json };
  });

  let before = [];
  await step("sigkill", async () => {
    before = nfsUnder(ROOT);
    d.child.kill("SIGKILL");
    const exited = await d.exit;
    return { exited, before, after: nfsUnder(ROOT), readAfterKill: readOr(join(mp1, "hello.txt")) };
  });

  await step("restart", async () => {
    const s = await startAndWait("second");
    d = s.d;
    delete s.d;
    const reconcileLine = d.logs.find((l) => l.msg === "reconciled mounts after start");
    return { ...s, reconcileLine, before, after: nfsUnder(ROOT), conns: nfs4Conns(),
      get1: (await get(V1)).json, get2: (await get(V2)).json, readBack: readOr(join(mp1, "hello.txt")) };
  });

  await step("mount-v3-after-restart", async () => {
    const r = await mount(V3, "ctr3");
    const mp = r.json && r.json.Mountpoint;
    return { ...answer(r), conns: nfs4Conns(), seesV2File: readOr(join(mp, "from-local-form.txt")) };
  });
  await step("unmount-v3", async () => ({ ...answer(await unmount(V3, "ctr3")), conns: nfs4Conns() }));

  await step("remove-busy", async () => answer(await call("/VolumeDriver.Remove", { Name: V1 })));

  await step("unmount-v1-old-id", async () => {
    const r = await unmount(V1, "ctr1");
    return { ...answer(r), v1Entry: entryAt(join(VOLUMES, V1)) ?? null, conns: nfs4Conns(),
      get: (await get(V1)).json };
  });
  await step("unmount-v2-last", async () => {
    const r = await unmount(V2, "ctr2");
    return { ...answer(r), conns: nfs4Conns(), underRoot: nfsUnder(ROOT), connDirs: readdirSync(CONNS),
      allNfs: nfsUnder("/") };
  });
  await step("unmount-unknown-id", async () => answer(await unmount(V2, "never-mounted")));

  await step("remove", async () => {
    const removed = {};
    for (const name of [V1, V2, V3]) {
      removed[name] = answer(await call("/VolumeDriver.Remove", { Name: name }));
    }
    const list = await call("/VolumeDriver.List", {});
    return { removed, list: list.json, volumeDirs: readdirSync(VOLUMES), connDirs: readdirSync(CONNS),
      dataKept: readOr(join(EXPORT, "app1", "hello.txt")),
      bigKept: statSync(join(EXPORT, "app1", "big.bin")).size };
  });

  await step("missing-export", async () => {
    const r = await create("missing", { backend: "nfs", server: SERVER, export: "/exports/nope" });
    return { ...answer(r), get: answer(await get("missing")), checkDirs: checkDirs() };
  });
  await step("unreachable", async () => {
    const r = await create("unreachable", { backend: "nfs", server: "127.0.0.2", export: EXPORT });
    return { ...answer(r), get: answer(await get("unreachable")) };
  });
  await step("suid", async () => {
    const r = await create("suid", { backend: "nfs", server: SERVER, export: EXPORT, nfs_opts: "suid" });
    return { ...answer(r), get: answer(await get("suid")) };
  });

  // Killed while Create's preflight has the export mounted in the work dir: the next start must not
  // leave that mount behind (nothing else would ever unmount it).
  await step("sigkill-mid-create", async () => {
    const work = join(DIRS.state, "work") + "/";
    const pending = create("midcreate", { ...OPTS1, path: "deep/a/b/c/d/e/f/g/h" })
      .then(answer, (err) => ({ error: String(err) }));
    const t = performance.now();
    let seen = [];
    while (seen.length === 0 && since(t) < 20000 * SCALE) {
      seen = nfsUnder(work);
      if (seen.length === 0) await sleep(1);
    }
    const seenAt = since(t);
    d.child.kill("SIGKILL");
    const exited = await d.exit;
    const request = await pending;
    const leftAtKill = nfsUnder(work);
    const s = await startAndWait("third");
    d = s.d;
    delete s.d;
    await sleep(500);
    return { seenAt, seen, exited, request, leftAtKill, ...s, afterRestart: nfsUnder(work),
      checkDirs: checkDirs(), get: answer(await get("midcreate")),
      createAgain: answer(await create("midcreate", { ...OPTS1, path: "deep/a/b/c/d/e/f/g/h" })),
      remove: answer(await call("/VolumeDriver.Remove", { Name: "midcreate" })) };
  });

  await step("sigterm", async () => {
    const t = performance.now();
    d.child.kill("SIGTERM");
    const exited = await d.exit;
    return { exited, ms: since(t), stopped: d.logs.some((l) => l.msg === "stopped") };
  });
} finally {
  if (d && !d.exited) d.child.kill("SIGKILL");
  report("logs", { ok: true, lines: allLogs });
  report("done", { ok: true });
  agent.destroy();
}
`;

interface Step {
  name: string;
  ok: boolean;
  error?: string;
  // biome-ignore lint/suspicious/noExplicitAny: the guest's JSON, checked field by field below
  [field: string]: any;
}

interface LogLine {
  daemon: string;
  level: number;
  msg: string;
  [field: string]: unknown;
}

interface MountEntry {
  root: string;
  mountPoint: string;
  options: string;
  fsType: string;
  source: string;
}

describe.runIf(guest)("volgate daemon over its socket, nfs in a guest kernel", () => {
  let dir = "";
  let run: GuestResult;
  const steps = new Map<string, Step>();
  /** A step that ran without throwing in the guest. */
  const ran = (name: string): Step => {
    const r = steps.get(name);
    if (!r) throw new Error(`the guest printed no result for ${name}; output:\n${run.output}`);
    expect(r.ok, r.error).toBe(true);
    return r;
  };
  const logs = (): LogLine[] => (steps.get("logs")?.lines ?? []) as LogLine[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "volgate-nfs-daemon-"));
    const built = join(REPO, "dist", "bundle");
    if (!existsSync(join(built, "volgate.mjs")))
      throw new Error(`${built}/volgate.mjs is missing: npm run build`);
    // The bundle needs no node_modules: a copy in the shared temp dir is all the guest needs.
    const bundle = join(dir, "bundle");
    await cp(built, bundle, { recursive: true });
    await writeFile(join(dir, "guest.mjs"), GUEST_SCRIPT);
    if (!guest) throw new Error("no guest");
    run = await guest.run({
      // The Node the suite runs on (the plugin's), not the guest PATH's /usr/bin/node.
      script: `exec ${process.execPath} ${join(dir, "guest.mjs")} ${bundle}\n`,
      // The guest's /tmp is its own: a checkout under it (CI's clone may be) must be shared for its Node.
      shares: REPO.startsWith(`${tmpdir()}/`) ? [dir, REPO] : [dir],
      timeoutMs: 240_000 * SCALE,
    });
    for (const line of run.output.split("\n")) {
      if (line.startsWith("RESULT ")) {
        const r = JSON.parse(line.slice("RESULT ".length)) as Step;
        steps.set(r.name, r);
      }
    }
    const s = (name: string) => steps.get(name) ?? ({ name, ok: false } as Step);
    const mbps = (ms: unknown) => ((BIG_MB * 1.048576) / (Number(ms) / 1000)).toFixed(0);
    const [start, restart, tp, crash] = ["start", "restart", "throughput", "sigkill-mid-create"].map(s);
    const ms = (name: string) => `${s(name).ms} ms`;
    console.log(
      [
        `${guest.name} guest: kernel up ${run.kernelMs} ms, NFS serving ${run.readyMs} ms, ` +
          `whole run ${run.totalMs} ms`,
        `daemon start-to-listening: first ${start?.socketMs} ms ` +
          `(own ${start?.daemonMs} ms after config), restart ${restart?.socketMs} ms; ` +
          `reconcile done at ${restart?.reconcileAt} ms (${JSON.stringify(restart?.report)})`,
        `Create (preflight) ${ms("create-v1")}, alias forms ${ms("create-v2")}/${ms("create-v3")}; ` +
          `Mount (nfs + bind) ${ms("mount-v1")}, Mount on the shared connection ${ms("mount-v2")}, ` +
          `Mount after restart ${ms("mount-v3-after-restart")}; last Unmount ${ms("unmount-v2-last")}`,
        `${BIG_MB} MiB through the volume: write+fsync ${tp?.writeMs} ms (${mbps(tp?.writeMs)} MB/s), ` +
          `cold read ${tp?.readMs} ms (${mbps(tp?.readMs)} MB/s)`,
        `errors: missing export ${ms("missing-export")}, unreachable ${ms("unreachable")}, ` +
          `suid ${ms("suid")}; SIGTERM stop ${ms("sigterm")}`,
        `killed mid-Create ${crash?.seenAt} ms in: preflight mounts left at the kill ` +
          `${crash?.leftAtKill?.length}, after restart ${crash?.afterRestart?.length} ` +
          `(reconcile ${JSON.stringify(crash?.report)}, Create's answer ${JSON.stringify(crash?.request)})`,
        ...[...steps.values()].filter((r) => !r.ok).map((r) => `FAILED ${r.name}: ${r.error}`),
      ].join("\n"),
    );
  }, 300_000 * SCALE);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("the guest script ran to the end", () => {
    expect(run.code, run.output).toBe(0);
    expect([...steps.keys()]).toContain("done");
  });

  it("the daemon answers on its socket quickly after start, with nothing to reconcile", () => {
    const r = ran("start");
    expect(r.socketMs).toBeLessThan(10_000 * SCALE);
    expect(r.report).toEqual({ adopted: 0, remounted: 0, failed: 0, cleaned: 0 });
  });

  it("Create preflights the export and makes the volume's directory on the server (create=true)", () => {
    const r = ran("create-v1");
    expect(r).toMatchObject({ status: 200, body: {}, serverDir: true, checkDirs: [], nfsMounts: 0 });
    expect(r.ms).toBeLessThan(10_000 * SCALE);
  });

  it("the local driver's type/o/device form and netshare's share= form create volumes too", () => {
    expect(ran("create-v2")).toMatchObject({ status: 200, body: {} });
    expect(ran("create-v3")).toMatchObject({ status: 200, body: {} });
  });

  it("Create is idempotent with the same options and refuses other options for the same name", () => {
    expect(ran("create-again")).toMatchObject({ status: 200, body: {} });
    const conflict = ran("create-conflict");
    expect(conflict.status).toBe(500);
    expect(conflict.body.Err).toMatch(/already exists with other options/);
  });

  it("Get shows Status with backend nfs and the target; List has the three volumes", () => {
    const r = ran("get-v1");
    expect(r.status).toBe(200);
    expect(r.body.Volume).toMatchObject({
      Name: V1,
      Status: {
        backend: "nfs",
        target: `nfs://${NFS_SERVER}${EXPORTS.data}/app1 (NFSv4)`,
        mounted: false,
        mounts: 0,
      },
    });
    expect(r.body.Volume.CreatedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    const list = ran("list");
    expect(list.body.Volumes.map((v: { Name: string }) => v.Name).sort()).toEqual([V1, V2, V3].sort());
  });

  it("Mount returns the mountpoint; a file written there is in the export's directory on the server", () => {
    const r = ran("mount-v1");
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.Mountpoint).toBe(r.expected);
    const entry = r.entry as MountEntry;
    expect(entry.fsType).toBe("nfs4");
    expect(r.sameDir).toBe(true);
    expect(entry.options.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
    const [conn] = r.conn as MountEntry[];
    expect(r.conn).toHaveLength(1);
    expect(conn?.source).toBe(`${NFS_SERVER}:${EXPORTS.data}`);
    expect(r.readBack).toBe(r.text);
    expect(r.serverSide).toBe(r.text);
    expect(r.get.Volume.Status).toMatchObject({ backend: "nfs", mounted: true, mounts: 1, health: "ok" });
    expect(r.ms).toBeLessThan(10_000 * SCALE);
  });

  it(`${BIG_MB} MiB written through the mountpoint reach the server and read back whole`, () => {
    const r = ran("throughput");
    expect(r.bytes).toBe(BIG_MB << 20);
    expect(r.serverBytes).toBe(BIG_MB << 20);
  });

  it("two volumes on the same export share one nfs mount under conns/", () => {
    const r = ran("mount-v2");
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.conns).toHaveLength(1);
    expect(r.volumeMounts).toHaveLength(2);
    expect(r.sharedRead).toBe(ran("mount-v1").text);
    expect(r.serverSide).toBe("local form\n");
    expect(r.get.Volume.Status).toMatchObject({ mounted: true, mounts: 1, health: "ok" });
  });

  it("SIGKILL leaves the kernel mounts in place", () => {
    const r = ran("sigkill");
    expect(r.exited.signal).toBe("SIGKILL");
    expect(r.after).toEqual(r.before);
    expect(r.readAfterKill).toBe(ran("mount-v1").text);
  });

  it("a restarted daemon adopts the live mounts instead of mounting a second time", () => {
    const r = ran("restart");
    expect(r.reconcileLine).toMatchObject({ msg: "reconciled mounts after start", level: 30 });
    expect(r.report.adopted).toBeGreaterThanOrEqual(1);
    expect(r.report).toEqual({ adopted: 2, remounted: 0, failed: 0, cleaned: 0 });
    expect(r.conns).toHaveLength(1);
    expect(r.after).toEqual(r.before);
    expect(r.get1.Volume.Status).toMatchObject({ mounted: true, mounts: 1, health: "ok" });
    expect(r.get2.Volume.Status).toMatchObject({ mounted: true, mounts: 1, health: "ok" });
    expect(r.readBack).toBe(ran("mount-v1").text);
    expect(r.socketMs).toBeLessThan(10_000 * SCALE);
  });

  it("after the restart a Mount of another volume reuses the adopted connection", () => {
    const r = ran("mount-v3-after-restart");
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.conns).toHaveLength(1);
    expect(r.seesV2File).toBe("local form\n");
    expect(ran("unmount-v3")).toMatchObject({ status: 200 });
    expect(ran("unmount-v3").conns).toHaveLength(1);
  });

  it("Unmount with the pre-restart ID works; the nfs mount goes when the last volume unmounts", () => {
    const busy = ran("remove-busy");
    expect(busy.status).toBe(500);
    expect(busy.body.Err).toMatch(/^volume app1 is in use \(1 mount\(s\)\)/);
    const first = ran("unmount-v1-old-id");
    expect(first).toMatchObject({ status: 200, body: {}, v1Entry: null });
    expect(first.conns).toHaveLength(1);
    expect(first.get.Volume.Status).toMatchObject({ mounted: false, mounts: 0 });
    const last = ran("unmount-v2-last");
    expect(last).toMatchObject({ status: 200, body: {}, conns: [], underRoot: [], connDirs: [], allNfs: [] });
    expect(ran("unmount-unknown-id")).toMatchObject({ status: 200, body: {} });
  });

  it("Remove forgets the volumes and keeps the data on the server", () => {
    const r = ran("remove");
    for (const name of [V1, V2, V3]) expect(r.removed[name], name).toMatchObject({ status: 200, body: {} });
    expect(r).toMatchObject({ list: { Volumes: [] }, volumeDirs: [], connDirs: [] });
    expect(r.dataKept).toBe(ran("mount-v1").text);
    expect(r.bigKept).toBe(BIG_MB << 20);
  });

  it("Create against a missing export is an Err naming the export, and no volume is made", () => {
    const r = ran("missing-export");
    expect(r.status).toBe(500);
    expect(r.body.Err).toMatch(
      new RegExp(`^export /exports/nope does not exist on ${NFS_SERVER} or is not exported to this host`),
    );
    expect(r.get.status).toBe(500);
    expect(r.checkDirs).toEqual([]);
  });

  it("Create against a server nobody answers for says it cannot be reached, quickly", () => {
    const r = ran("unreachable");
    expect(r.status).toBe(500);
    expect(r.body.Err).toMatch(/^cannot reach NFS server 127\.0\.0\.2:2049: connect ECONNREFUSED/);
    expect(r.ms).toBeLessThan(3000 * SCALE);
    expect(r.get.status).toBe(500);
  });

  it("nfs_opts=suid is refused", () => {
    const r = ran("suid");
    expect(r.status).toBe(500);
    expect(r.body.Err).toMatch(
      /nfs_opts item "suid" is not allowed \(NFS volumes are always mounted nosuid,nodev\)/,
    );
    expect(r.get.status).toBe(500);
  });

  it("a daemon killed while Create's preflight has the export mounted leaves no mount once restarted", () => {
    const r = ran("sigkill-mid-create");
    expect(r.exited.signal).toBe("SIGKILL");
    // The premise: the kill landed while the preflight mount was up (else this run proves nothing).
    expect(r.leftAtKill, "the kill missed the preflight's mount").toHaveLength(1);
    expect(r.report).toMatchObject({ failed: 0 });
    expect(r.get.status).toBe(500);
    expect(r.createAgain).toMatchObject({ status: 200, body: {} });
    expect(r.remove).toMatchObject({ status: 200, body: {} });
    expect(r.afterRestart).toEqual([]);
    expect(r.checkDirs).toEqual([]);
  });

  it("SIGTERM stops the daemon cleanly; the only warnings logged are the refused requests", () => {
    const r = ran("sigterm");
    expect(r.exited).toMatchObject({ code: 0, signal: null });
    expect(r.stopped).toBe(true);
    expect(r.ms).toBeLessThan(10_000 * SCALE);
    const failed = logs().filter((l) => l.msg === "failed");
    expect(failed.map((l) => `${l.op} ${l.volume}`)).toEqual([
      `/VolumeDriver.Create ${V1}`,
      `/VolumeDriver.Remove ${V1}`,
      "/VolumeDriver.Create missing",
      "/VolumeDriver.Create unreachable",
      "/VolumeDriver.Create suid",
    ]);
    expect(logs().filter((l) => l.level >= 40 && l.msg !== "failed")).toEqual([]);
    expect(logs().filter((l) => l.unparsed)).toEqual([]);
  });
});
