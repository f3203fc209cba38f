// Runs inside the nfs guest (test/faults/nfs.test.ts starts it): node nfs-guest.mjs CONFIG_FILE.
// The daemon runs in the guest with an NFS volume mounted and a process writing to it every second,
// and an sshd of the guest's own for another volume; then the kernel NFS server is stopped
// (rpc.nfsd 0) for a while and started again. Every step prints one `RESULT {json}` line; the
// host asserts on them.
import { execFile, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";

const cfg = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8"));
const exec = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const since = (t) => Math.round(performance.now() - t);
const report = (name, fields) => console.log(`RESULT ${JSON.stringify({ name, ...fields })}`);

const base = "/tmp/volgate-faults";
const DIRS = { root: join(base, "root"), state: join(base, "state"), secrets: join(base, "secrets") };
for (const d of Object.values(DIRS)) mkdirSync(d, { recursive: true, mode: 0o700 });
const SOCKET = join(base, "volgate.sock");
const agent = new Agent({ keepAlive: true });

/** A dockerd-shaped request; resolves with status, json and ms, or an error after the timeout. */
function call(path, body, timeoutMs = 90_000 * cfg.scale) {
  const payload = body === undefined ? "" : `${JSON.stringify(body)}\n`;
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(
      {
        socketPath: SOCKET,
        agent,
        path,
        method: "POST",
        headers: {
          Accept: "application/vnd.docker.plugins.v1.2+json",
          "Content-Length": Buffer.byteLength(payload),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => {
          text += d;
        });
        res.on("end", () => {
          let json;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, json, text, ms: since(started) });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer to ${path}`)));
    req.on("error", (err) => resolve({ status: 0, text: String(err), ms: since(started) }));
    req.end(payload);
  });
}
const status = async (name) => (await call("/VolumeDriver.Get", { Name: name })).json?.Volume?.Status ?? {};

/** An sshd of the guest's own on 127.0.0.1:2222 (key login as the test user), for the other volume. */
async function startSshd() {
  const dir = "/tmp/guest-sshd";
  mkdirSync(dir, { mode: 0o755 });
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });
  for (const key of ["host", "client"])
    await exec("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, key)]);
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "client.pub")), { mode: 0o644 });
  const lines = [
    "ListenAddress 127.0.0.1",
    "Port 2222",
    `HostKey ${dir}/host`,
    `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys`,
    "StrictModes no",
    "UsePAM no",
    "PasswordAuthentication no",
    `AllowUsers ${cfg.user}`,
    "Subsystem sftp internal-sftp",
  ];
  writeFileSync(join(dir, "sshd_config"), `${lines.join("\n")}\n`);
  sshd = spawn("/usr/sbin/sshd", ["-D", "-f", join(dir, "sshd_config"), "-E", join(dir, "log")], {
    stdio: "ignore",
  });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const s = connect({ host: "127.0.0.1", port: 2222 });
      s.once("data", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (up) break;
    await sleep(100);
  }
  const { stdout: uid } = await exec("id", ["-u", cfg.user]);
  const { stdout: gid } = await exec("id", ["-g", cfg.user]);
  mkdirSync("/tmp/remote/other", { recursive: true });
  for (const d of ["/tmp/remote", "/tmp/remote/other"])
    await exec("chown", [`${uid.trim()}:${gid.trim()}`, d]);
  const profile = join(DIRS.secrets, "guest-ssh");
  mkdirSync(profile, { mode: 0o700 });
  writeFileSync(join(profile, "private_key"), readFileSync(join(dir, "client")), { mode: 0o600 });
  const hostKey = readFileSync(join(dir, "host.pub"), "utf8").split(" ").slice(0, 2).join(" ");
  writeFileSync(join(profile, "known_hosts"), `[127.0.0.1]:2222 ${hostKey}\n`, { mode: 0o600 });
}

function startDaemon() {
  const env = {
    ...process.env,
    VOLGATE_SOCKET: SOCKET,
    VOLGATE_ROOT: DIRS.root,
    VOLGATE_STATE_DIR: DIRS.state,
    VOLGATE_SECRETS_DIR: DIRS.secrets,
    VOLGATE_LOG_FORMAT: "json",
    VOLGATE_CONNECTION_GRACE: "0",
    VOLGATE_HEALTH_INTERVAL: "1",
  };
  const child = spawn(process.execPath, [...cfg.nodeFlags, join(cfg.bundle, "volgate.mjs")], {
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  return child;
}

/** Get of each name and List, round after round, until stopped: latencies and anything not a 200. */
function sampler(names) {
  const gets = [];
  const lists = [];
  const failures = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      for (const Name of names) {
        const r = await call("/VolumeDriver.Get", { Name }, 5000);
        gets.push(r.ms);
        if (r.status !== 200) failures.push(`Get ${Name}: ${r.status} ${r.text}`);
      }
      const l = await call("/VolumeDriver.List", {}, 5000);
      lists.push(l.ms);
      if (l.status !== 200) failures.push(`List: ${l.status} ${l.text}`);
      await sleep(20);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { gets, lists, failures };
    },
  };
}

/** Create, mount, write, read back on the server, unmount, remove: the other volume's round. */
async function otherRound(name) {
  const t = performance.now();
  const opts = {
    backend: "sshfs",
    host: "127.0.0.1",
    port: "2222",
    user: cfg.user,
    path: "/tmp/remote/other",
    credentials: "guest-ssh",
  };
  const steps = [];
  const created = await call("/VolumeDriver.Create", { Name: name, Opts: opts });
  steps.push(["create", created.status, created.text]);
  const mounted = await call("/VolumeDriver.Mount", { Name: name, ID: "round" });
  steps.push(["mount", mounted.status, mounted.text]);
  let readBack = "";
  if (mounted.status === 200) {
    writeFileSync(join(mounted.json.Mountpoint, `${name}.txt`), name);
    readBack = readFileSync(`/tmp/remote/other/${name}.txt`, "utf8");
  }
  const unmounted = await call("/VolumeDriver.Unmount", { Name: name, ID: "round" });
  steps.push(["unmount", unmounted.status, unmounted.text]);
  const removed = await call("/VolumeDriver.Remove", { Name: name });
  steps.push(["remove", removed.status, removed.text]);
  const ok = steps.every(([, s]) => s === 200) && readBack === name;
  return { ok, ms: since(t), steps: steps.filter(([, s]) => s !== 200), readBack };
}

/** Everything the host needs to tell what was lost: state files, List, mounts, processes, work dir. */
async function view() {
  const files = {};
  for (const f of readdirSync(DIRS.state))
    if (f !== "work") files[f] = readFileSync(join(DIRS.state, f), "utf8");
  const processes = [];
  for (const e of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(e)) continue;
    let argv = [];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0").filter(Boolean);
    } catch {}
    if (argv.length > 0) processes.push({ pid: Number(e), argv });
  }
  const list = await call("/VolumeDriver.List", {});
  return {
    root: DIRS.root,
    files,
    listed: (list.json?.Volumes ?? []).map((v) => v.Name),
    mountinfo: readFileSync("/proc/self/mountinfo", "utf8"),
    processes,
    workFiles: readdirSync(join(DIRS.state, "work")),
  };
}

const NFSD_START = ["-H", "127.0.0.1", "-G", "10", "-L", "10", "8"];
let daemon;
let writer;
let sshd;
try {
  await exec("/run/modprobe", ["fuse"]);
  await startSshd();
  daemon = startDaemon();
  for (let i = 0; i < 300 && (await call("/Plugin.Activate", undefined, 1000)).status !== 200; i++)
    await sleep(50);

  const opts = { backend: "nfs", server: cfg.nfsServer, export: cfg.exportDir, path: "used", create: "true" };
  const created = await call("/VolumeDriver.Create", { Name: "nfs-used", Opts: opts });
  const mounted = await call("/VolumeDriver.Mount", { Name: "nfs-used", ID: "m1" });
  const tick = join(cfg.exportDir, "used", "tick");
  const ticked = () => {
    try {
      return Number(readFileSync(tick, "utf8").trim());
    } catch {
      return 0;
    }
  };
  if (mounted.status === 200) {
    const file = join(mounted.json.Mountpoint, "tick");
    writer = spawn("sh", ["-c", `while :; do date +%s > '${file}'; sleep 1; done`], { stdio: "ignore" });
    for (let i = 0; i < 100 && ticked() === 0; i++) await sleep(100);
  }
  report("setup", { created, mounted, ticking: ticked() > 0, before: await status("nfs-used") });

  const sampling = sampler(["nfs-used"]);
  const downAt = performance.now();
  await exec("rpc.nfsd", ["0"]);
  let during = await status("nfs-used");
  while (since(downAt) < 10_000 * cfg.scale && during.health === "ok") {
    await sleep(200);
    during = await status("nfs-used");
  }
  const staleMs = since(downAt);
  const other = await otherRound("ssh-other");
  const refused = await call("/VolumeDriver.Create", {
    Name: "nfs-new",
    Opts: { backend: "nfs", server: cfg.nfsServer, export: cfg.exportDir },
  });
  await sleep(Math.max(0, cfg.downMs - since(downAt)));
  const sampledDown = await sampling.stop();
  report("down", { during, staleMs, other, refused, sampled: sampledDown });

  await exec("rpc.nfsd", NFSD_START);
  const backAt = performance.now();
  const backEpoch = Math.floor(Date.now() / 1000);
  const sampling2 = sampler(["nfs-used"]);
  const mount = await call("/VolumeDriver.Mount", { Name: "nfs-used", ID: "m2" });
  const mountMs = since(backAt);
  let statusMs;
  while (statusMs === undefined && since(backAt) < 60_000 * cfg.scale) {
    if ((await status("nfs-used")).health === "ok") statusMs = since(backAt);
    else await sleep(100);
  }
  let writerMs;
  while (writerMs === undefined && since(backAt) < 60_000 * cfg.scale) {
    if (ticked() > backEpoch) writerMs = since(backAt);
    else await sleep(100);
  }
  report("back", {
    mount,
    mountMs,
    statusMs,
    writerMs,
    after: await status("nfs-used"),
    sampled: await sampling2.stop(),
  });
  report("view", await view());

  writer?.kill("SIGKILL");
  writer = undefined;
  const cleanup = [];
  for (const id of ["m1", "m2"])
    cleanup.push(await call("/VolumeDriver.Unmount", { Name: "nfs-used", ID: id }));
  cleanup.push(await call("/VolumeDriver.Remove", { Name: "nfs-used" }));
  const left = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => l.split(" ")[4]?.startsWith(`${DIRS.root}/`));
  report("cleanup", { answers: cleanup.map((r) => [r.status, r.text]), left, view: await view() });
} catch (err) {
  report("error", { error: String(err?.stack ?? err) });
} finally {
  writer?.kill("SIGKILL");
  sshd?.kill("SIGTERM");
  agent.destroy();
  // The daemon's SIGTERM exit is bounded (10 s); a child process keeps this script alive until it
  // exits, and the guest powers off only once this script has.
  const exited = daemon ? new Promise((r) => daemon.once("exit", r)) : Promise.resolve();
  daemon?.kill("SIGTERM");
  await Promise.race([exited, sleep(15_000 * cfg.scale)]);
  report("done", {});
  process.exit(0);
}
