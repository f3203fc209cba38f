/**
 * The nfs backend against a real kernel nfsd and NFS client, inside a guest kernel (UML, or QEMU
 * where UML does not boot; the host kernel has neither; see test/support/guest.ts). The backend is compiled to a temp dir,
 * and one guest boot runs a Node script that drives it with the real runner (mount.nfs, umount)
 * and the real mount table, printing one `RESULT {json}` line per case; the tests assert on those.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  chooseGuest,
  EXPORTS,
  type GuestResult,
  guestTierCanRun,
  NFS_SERVER,
  pickGuest,
  RO_HELLO,
} from "../../support/guest.ts";

const exec = promisify(execFile);
const canRun = guestTierCanRun("nfs");
const guest = canRun ? await pickGuest() : undefined;
/** Deadlines and time bounds grow with the guest's slowness (QEMU TCG emulates every instruction). */
const SCALE = guest?.timeScale ?? 1;

/** Bytes written and read back for the throughput figures. */
const BIG_MB = 64;

/** Runs in the guest as `node guest.mjs <dist dir>`; every case prints one RESULT line. */
const GUEST_SCRIPT = String.raw`
import { mkdtempSync, openSync, writeSync, fsyncSync, closeSync, readSync, readFileSync, statSync,
  writeFileSync, readdirSync, promises } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dist = process.argv[2];
const load = (p) => import(pathToFileURL(join(dist, p)).href);
const { nfsBackend } = await load("backends/nfs/index.js");
const { ensureDirectory } = await load("backends/nfs/preflight.js");
const { createRunner } = await load("command.js");
const { parseMountInfo, systemMountTable } = await load("mountinfo.js");
const { Deadline } = await load("deadline.js");

const log = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child() { return log; } };
const ctx = {
  runner: createRunner("/tmp"),
  mounts: systemMountTable(createRunner("/tmp")),
  log,
  secretsDir: "/nonexistent",
  workDir: mkdtempSync("/tmp/volgate-work-"),
  verifyHostKeys: true,
};
const SERVER = ${JSON.stringify(NFS_SERVER)};
const EXPORTS = ${JSON.stringify(EXPORTS)};
const report = (name, fields) => console.log("RESULT " + JSON.stringify({ name, ...fields }));
const errorOf = (err) => ({ ok: false, kind: err.kind, message: err.message });
const entryAt = async (target) =>
  parseMountInfo(readFileSync("/proc/self/mountinfo", "utf8")).find((e) => e.mountPoint === target);
const umount = (target) => ctx.runner.run("umount", [target], { deadline: Deadline.after(10000) });
const target = () => mkdtempSync("/tmp/volgate-target-");
/** The connection target at dir, as Connections gives it (here named by the directory). */
const at = (dir) => ({ dir, id: dir.split("/").pop() });
/**
 * "pid (comm) state" of every process named one of names that is not already exiting: a killed
 * mount.nfs closes its pipes (the runner's answer) a moment before its exit ends; under QEMU that
 * moment is long enough to see it, flagged PF_EXITING (0x4 in /proc/PID/stat's flags), in R or D.
 */
const processes = (...names) =>
  readdirSync("/proc").filter((p) => /^[0-9]+$/.test(p)).flatMap((p) => {
    try {
      const stat = readFileSync("/proc/" + p + "/stat", "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const [state, , , , , , flags] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return names.includes(comm) && (Number(flags) & 4) === 0 ? [p + " (" + comm + ") " + state] : [];
    } catch { return []; }
  });
const leftovers = () => readdirSync(ctx.workDir);

async function run(name, fn) {
  const started = Date.now();
  try {
    report(name, { ok: true, ...(await fn()), ms: Date.now() - started });
  } catch (err) {
    report(name, { ...errorOf(err), ms: Date.now() - started });
  }
}

/** dd-style: write MB in 1 MiB blocks + fsync, then read it back after a remount (cold cache). */
function throughput(file, mb) {
  const block = Buffer.alloc(1 << 20, 0x5a);
  let t = Date.now();
  const fd = openSync(file, "w");
  for (let i = 0; i < mb; i++) writeSync(fd, block);
  fsyncSync(fd);
  closeSync(fd);
  const writeMs = Date.now() - t;
  return { writeMs };
}
function readAll(file) {
  const block = Buffer.alloc(1 << 20);
  const t = Date.now();
  const fd = openSync(file, "r");
  let total = 0;
  for (let n; (n = readSync(fd, block)) > 0; ) total += n;
  closeSync(fd);
  return { readMs: Date.now() - t, bytes: total };
}

/** Each step its own budget, as each Docker request has. */
const deadline = () => Deadline.after(15000 * ${SCALE});
const spec = (o) => nfsBackend.parse({ server: SERVER, export: EXPORTS.data, ...o });

await run("preflight", async () => {
  const subdir = await nfsBackend.preflight(spec({ path: "app1", create: "true" }), ctx, deadline());
  const server = statSync(join(EXPORTS.data, "app1")).isDirectory();
  return { subdir, serverSideDir: server, leftovers: leftovers() };
});

await run("preflight-missing-dir", async () => {
  await nfsBackend.preflight(spec({ path: "nope" }), ctx, deadline());
  return { unexpected: "preflight passed" };
});

await run("mount", async () => {
  const s = spec({ path: "app1" });
  const t = target();
  let started = Date.now();
  await nfsBackend.mount(s, at(t), ctx, deadline());
  const mountMs = Date.now() - started;
  const entry = await entryAt(t);
  const text = "written through the NFS client\n";
  writeFileSync(join(t, "app1", "hello.txt"), text);
  const readBack = readFileSync(join(t, "app1", "hello.txt"), "utf8");
  const serverSide = readFileSync(join(EXPORTS.data, "app1", "hello.txt"), "utf8");
  const { writeMs } = throughput(join(t, "app1", "big"), ${BIG_MB});
  let r = await umount(t);
  await nfsBackend.mount(s, at(t), ctx, deadline());
  const { readMs, bytes } = readAll(join(t, "app1", "big"));
  const serverBytes = statSync(join(EXPORTS.data, "app1", "big")).size;
  started = Date.now();
  r = await umount(t);
  const umountMs = Date.now() - started;
  return {
    mountMs, umountMs, umountCode: r.code, entry, text, readBack, serverSide, writeMs, readMs, bytes, serverBytes,
    after: await ctx.mounts.probe(t),
  };
});

await run("mount-v3", async () => {
  const t = target();
  const started = Date.now();
  await nfsBackend.mount(spec({ vers: "3" }), at(t), ctx, deadline());
  const mountMs = Date.now() - started;
  const entry = await entryAt(t);
  writeFileSync(join(t, "v3.txt"), "v3\n");
  const serverSide = readFileSync(join(EXPORTS.data, "v3.txt"), "utf8");
  const r = await umount(t);
  return { mountMs, entry, serverSide, umountCode: r.code, after: await ctx.mounts.probe(t) };
});

await run("local-alias-ro", async () => {
  const s = nfsBackend.parse({ type: "nfs", o: "addr=" + SERVER + ",ro,nfsvers=4.1,soft", device: ":" + EXPORTS.data });
  const t = target();
  await nfsBackend.mount(s, at(t), ctx, deadline());
  const entry = await entryAt(t);
  let writeError = "";
  try { writeFileSync(join(t, "nope.txt"), "x"); } catch (err) { writeError = err.code; }
  const r = await umount(t);
  return { entry, writeError, umountCode: r.code };
});

await run("ro-export", async () => {
  const t = target();
  await nfsBackend.mount(spec({ export: EXPORTS.ro }), at(t), ctx, deadline());
  const hello = readFileSync(join(t, "hello.txt"), "utf8");
  let writeError = "";
  try { writeFileSync(join(t, "nope.txt"), "x"); } catch (err) { writeError = err.code; }
  await umount(t);
  return { hello, writeError };
});

await run("squash-create", async () => {
  await nfsBackend.preflight(spec({ export: EXPORTS.squash, path: "x", create: "true" }), ctx, deadline());
  return { unexpected: "preflight passed" };
});

await run("missing-export", async () => {
  await nfsBackend.preflight(spec({ export: "/exports/nope" }), ctx, deadline());
  return { unexpected: "preflight passed" };
});

await run("missing-export-v3", async () => {
  await nfsBackend.preflight(spec({ export: "/exports/nope", vers: "3" }), ctx, deadline());
  return { unexpected: "preflight passed" };
});

await run("unreachable", async () => {
  await nfsBackend.preflight(nfsBackend.parse({ server: "127.0.0.2", export: EXPORTS.data }), ctx, deadline());
  return { unexpected: "preflight passed" };
});

// A server that accepts TCP on its port and never answers: only the deadline ends the mount.
const silent = createServer(() => {});
await new Promise((r) => silent.listen(0, "127.0.0.1", r));
const silentPort = silent.address().port;
let hungTarget = "";
await run("hung", async () => {
  hungTarget = target();
  await nfsBackend.mount(spec({ nfs_opts: "port=" + silentPort }), at(hungTarget), ctx, Deadline.after(3000));
  return { unexpected: "mount passed" };
});
report("hung-after", {
  ok: true,
  probe: await ctx.mounts.probe(hungTarget),
  mountProcesses: processes("mount.nfs", "mount"),
  leftovers: leftovers(),
});
silent.close();

// The server stops (rpc.nfsd 0) under a mounted export: on a hard mount every call into it waits for
// the server, forever. Four walks of the export at once must end at their deadline, and this
// process's own file calls must still answer meanwhile (in the daemon: state writes, mountinfo).
const nfsd = (args) => ctx.runner.run("rpc.nfsd", args, { deadline: Deadline.after(20000) });
await run("frozen-walk", async () => {
  const t = target();
  const s = spec({ path: "never/looked/up", nfs_opts: "noac,lookupcache=none" });
  await nfsBackend.mount(s, at(t), ctx, deadline());
  const stopped = await nfsd(["0"]);
  const walks = [1, 2, 3, 4].map(() =>
    ensureDirectory(s, t, ctx.runner, Deadline.after(3000 * ${SCALE})).then(() => ({ ok: true }), errorOf));
  await new Promise((r) => setTimeout(r, 1000 * ${SCALE}));
  const before = Date.now();
  const localMs = await Promise.race([
    promises.stat("/tmp").then(() => Date.now() - before),
    new Promise((r) => setTimeout(() => r("late"), 5000)),
  ]);
  const results = await Promise.all(walks);
  const left = processes("stat", "realpath", "mkdir");
  const restarted = await nfsd(["-H", SERVER, "-G", "10", "-L", "10", "8"]);
  const down = await ctx.runner.run("umount", ["-l", t], { deadline: Deadline.after(10000) });
  return { stopped: stopped.code, restarted: restarted.code, localMs, walks: results, left, umountCode: down.code };
});
`;

interface CaseResult {
  name: string;
  ok: boolean;
  ms: number;
  kind?: string;
  message?: string;
  [field: string]: unknown;
}

describe.runIf(guest)("nfs backend in a guest kernel", () => {
  let dir = "";
  let run: GuestResult;
  const results = new Map<string, CaseResult>();
  const result = (name: string): CaseResult => {
    const r = results.get(name);
    if (!r) throw new Error(`the guest printed no result for ${name}; output:\n${run.output}`);
    return r;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "volgate-nfs-it-"));
    const dist = join(dir, "dist");
    // Type errors elsewhere in the tree do not stop tsc from emitting; the files we need must exist.
    await exec("node_modules/.bin/tsc", ["-p", "tsconfig.build.json", "--outDir", dist]).catch(() => {});
    for (const f of ["backends/nfs/index.js", "command.js", "deadline.js", "mountinfo.js"]) {
      if (!existsSync(join(dist, f))) throw new Error(`tsc did not emit ${f}`);
    }
    await writeFile(join(dir, "guest.mjs"), GUEST_SCRIPT);
    if (!guest) throw new Error("no guest");
    run = await guest.run({
      script: `exec node ${join(dir, "guest.mjs")} ${dist}\n`,
      shares: [dir],
      timeoutMs: 150_000 * SCALE,
    });
    for (const line of run.output.split("\n")) {
      if (line.startsWith("RESULT ")) {
        const r = JSON.parse(line.slice("RESULT ".length)) as CaseResult;
        results.set(r.name, r);
      }
    }
    const mount = results.get("mount");
    console.log(
      [
        `${guest.name} guest: kernel up ${run.kernelMs} ms, NFS serving ${run.readyMs} ms, whole run ${run.totalMs} ms`,
        `cases: ${[...results.values()]
          .filter((r) => r.ms !== undefined)
          .map((r) => `${r.name} ${r.ms} ms`)
          .join(", ")}`,
        ...[...results.values()].filter((r) => !r.ok).map((r) => `${r.name}: ${r.kind}: ${r.message}`),
        mount?.ok
          ? `mount ${mount.mountMs} ms, umount ${mount.umountMs} ms; ${BIG_MB} MiB write+fsync ${mount.writeMs} ms (${mbps(mount.writeMs)} MB/s), cold read ${mount.readMs} ms (${mbps(mount.readMs)} MB/s)`
          : "",
      ].join("\n"),
    );
  }, 200_000 * SCALE);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const mbps = (ms: unknown) => ((BIG_MB * 1.048576) / (Number(ms) / 1000)).toFixed(0);

  it("the guest script ran to the end", () => {
    expect(run.code, run.output).toBe(0);
    expect([...results.keys()]).toContain("hung-after");
  });

  it("preflight mounts the export, creates the volume's directory on the server, and cleans up", () => {
    const r = result("preflight");
    expect(r, r.message).toMatchObject({ ok: true, subdir: "app1", serverSideDir: true, leftovers: [] });
  });

  it("preflight names a missing directory and create=true", () => {
    expect(result("preflight-missing-dir")).toMatchObject({
      ok: false,
      kind: "invalid",
      message: `directory "nope" does not exist in export ${EXPORTS.data} on ${NFS_SERVER}: create it, or pass -o create=true`,
    });
  });

  it("mounts NFSv4.2 nosuid,nodev; data written through the client is on the server; unmounts", () => {
    const r = result("mount");
    expect(r.ok, r.message).toBe(true);
    const entry = r.entry as { fsType: string; source: string; options: string };
    expect(entry.fsType).toBe("nfs4");
    expect(entry.source).toBe(`${NFS_SERVER}:${EXPORTS.data}`);
    expect(entry.options.split(",")).toEqual(expect.arrayContaining(["nosuid", "nodev"]));
    expect(r.readBack).toBe(r.text);
    expect(r.serverSide).toBe(r.text);
    expect(r.bytes).toBe(BIG_MB << 20);
    expect(r.serverBytes).toBe(BIG_MB << 20);
    expect(r.umountCode).toBe(0);
    expect(r.after).toBe("absent");
    expect(Number(r.mountMs)).toBeLessThan(10_000 * SCALE);
  });

  it("mounts NFSv3 too", () => {
    const r = result("mount-v3");
    expect(r.ok, r.message).toBe(true);
    expect((r.entry as { fsType: string; options: string }).fsType).toBe("nfs");
    expect(r.serverSide).toBe("v3\n");
    expect(r).toMatchObject({ umountCode: 0, after: "absent" });
  });

  it("the local driver's type/o/device form mounts, and o=ro makes the session read-only", () => {
    const r = result("local-alias-ro");
    expect(r.ok, r.message).toBe(true);
    expect((r.entry as { options: string }).options.split(",")).toEqual(
      expect.arrayContaining(["ro", "nosuid", "nodev"]),
    );
    expect(r.writeError).toBe("EROFS");
  });

  it("a read-only export reads, and refuses writes", () => {
    expect(result("ro-export")).toMatchObject({ ok: true, hello: RO_HELLO, writeError: "EROFS" });
  });

  it("create=true on a root-squashed export says why it failed", () => {
    const r = result("squash-create");
    expect(r.ok).toBe(false);
    expect(r.message).toBe(
      `cannot create directory "x" in export ${EXPORTS.squash} on ${NFS_SERVER}: EACCES (the server squashes root, or the directory is not writable)`,
    );
  });

  it("a missing export is a clear error, over NFSv4 and NFSv3", () => {
    for (const name of ["missing-export", "missing-export-v3"]) {
      const r = result(name);
      expect(r.ok).toBe(false);
      expect(r.kind).toBe("backend");
      expect(r.message).toMatch(
        new RegExp(
          `^export /exports/nope does not exist on ${NFS_SERVER} or is not exported to this host \\(mount\\.nfs: `,
        ),
      );
    }
  });

  it("an unreachable server is a clear error within the deadline", () => {
    const r = result("unreachable");
    expect(r).toMatchObject({
      ok: false,
      kind: "backend",
      message: "cannot reach NFS server 127.0.0.2:2049: connect ECONNREFUSED 127.0.0.2:2049",
    });
    expect(r.ms).toBeLessThan(5000 * SCALE);
  });

  it("a server that never answers fails at the deadline, killing mount and leaving nothing mounted", () => {
    const r = result("hung");
    expect(r.ok).toBe(false);
    expect(r.kind).toBe("timeout");
    expect(r.message).toBe(
      "NFS mount of 127.0.0.1:/exports/data timed out after 3s: the server accepts TCP connections but did not finish the mount; check the NFS server, or raise VOLGATE_MOUNT_TIMEOUT",
    );
    expect(r.ms).toBeGreaterThanOrEqual(2900);
    expect(r.ms).toBeLessThan(8000 * SCALE);
    expect(result("hung-after")).toMatchObject({ probe: "absent", mountProcesses: [], leftovers: [] });
  });

  it("four walks of a frozen export end at their deadline, and the process's files still answer", () => {
    const r = result("frozen-walk");
    expect(r.ok, r.message).toBe(true);
    expect(r).toMatchObject({ stopped: 0, restarted: 0, left: [], umountCode: 0 });
    console.log(`frozen export: a local stat took ${r.localMs} ms while four walks hung`);
    expect(r.localMs).not.toBe("late");
    expect(Number(r.localMs)).toBeLessThan(500);
    const timedOut = {
      ok: false,
      kind: "timeout",
      message: `checking "never/looked/up" in export ${EXPORTS.data} on ${NFS_SERVER} timed out after ${3 * SCALE}s: check that the NFS server is answering`,
    };
    expect(r.walks).toEqual([timedOut, timedOut, timedOut, timedOut]);
  });
});

describe.runIf(guest)("guest support", () => {
  it(
    "kills a guest that passes its timeout and leaves no process or file behind",
    async () => {
      if (!guest) throw new Error("no guest");
      let started = false;
      const timeoutMs = 12_000 * SCALE;
      const err = await guest
        .run({
          script: "echo started; sleep 600\n",
          timeoutMs,
          onOutput: (text) => {
            started ||= text.includes("started");
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      const killed = new RegExp(
        `^${guest.name} guest (volgate-\\S+) \\((/\\S+)\\) did not finish within ${timeoutMs} ms and was killed`,
      );
      expect(err?.message).toMatch(killed);
      const [, id = "?", dir = "?"] = killed.exec(err?.message ?? "") ?? [];
      const alive: string[] = [];
      for (const pid of await readdir("/proc")) {
        if (!/^[0-9]+$/.test(pid)) continue;
        const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
        if (cmdline.includes(id)) alive.push(pid);
      }
      expect(alive).toEqual([]);
      expect(existsSync(dir)).toBe(false);
      // Boot normally takes ~4 s (UML) or ~10 s (QEMU): the kill then hit the script, not the boot.
      if (!started)
        console.warn(`${guest.name}: the guest was killed before the script started (slow machine?)`);
    },
    30_000 * SCALE,
  );
});

describe("guest choice", () => {
  it("auto takes QEMU, naming the reason, when the UML probe panics as it does on AMX hosts", async () => {
    // Fault injection: a `linux` that fails the way Debian's UML 6.1 does on a CPU with AMX.
    const bin = await mkdtemp(join(tmpdir(), "volgate-fake-uml-"));
    const panic = [
      "userspace - ptrace set fp regs failed, errno = 14",
      "Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b",
    ];
    await writeFile(join(bin, "linux"), `#!/bin/sh\necho '${panic[0]}'\necho '${panic[1]}'\nexit 1\n`, {
      mode: 0o755,
    });
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const { guest, why } = await chooseGuest("auto");
      expect(guest.name).toBe("qemu-tcg");
      expect(why).toMatch(/^uml probe failed in \d+ ms: /);
      expect(why).toContain(panic.join("; "));
    } finally {
      process.env.PATH = path;
      await rm(bin, { recursive: true, force: true });
    }
  });
});
