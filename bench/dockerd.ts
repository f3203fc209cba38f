/**
 * `npm run bench:dockerd`: volgate through a real dockerd 20.10 (private, test/support/dockerd.ts),
 * found as a legacy plugin: the no-op `docker run` with an sshfs or s3fs volume against the
 * `local` driver, Mount on a warm connection (kept VOLGATE_CONNECTION_GRACE after its last
 * volume) and a cold one (grace 0: every container logs in anew), Create through Docker, and
 * 100 MiB written (with fsync) and read inside a container, timed there by busybox `time`; each
 * read runs on a fresh connection, so never from the page cache. Peers on 127.0.0.1, containers
 * `--network none`. Medians of ROUNDS runs, interleaved, with their range. Needs root, /dev/fuse.
 */
import { chown, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import {
  type Dockerd,
  type DockerResult,
  optionArgs,
  pluginSocketPath,
  startDockerd,
  uniquePluginName,
} from "../test/support/dockerd.ts";
import { writeProfile } from "../test/support/profile.ts";
import { startS3, type TestS3 } from "../test/support/s3.ts";
import { startSshd, type TestSshd } from "../test/support/sshd.ts";
import { startVolgate, type Volgate } from "../test/support/volgate.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const TARGETS = { noopVsLocal: 1.2, sshfsDataS: 0.75, createMs: 100 };
/** OpenSSH's default cipher order, as the `ciphers` option spells it. */
const SSH_DEFAULT_CIPHERS =
  "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => sorted(xs)[Math.floor(xs.length / 2)] ?? Number.NaN;
const spread = (xs: number[], digits = 0) =>
  `${median(xs).toFixed(digits)} [${sorted(xs)[0]?.toFixed(digits)}-${sorted(xs).at(-1)?.toFixed(digits)}]`;

/** Samples by name, in the order first seen. */
class Samples {
  readonly all = new Map<string, number[]>();
  add(name: string, value: number): void {
    this.all.set(name, [...(this.all.get(name) ?? []), value]);
  }
  of(name: string): number[] {
    return this.all.get(name) ?? [];
  }
}

function ok(r: DockerResult, what: string): DockerResult {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r;
}

/** busybox `time`: "real\t0m 0.39s". */
function realSeconds(stderr: string): number {
  const m = /real\s+(\d+)m\s*([\d.]+)s/.exec(stderr);
  if (!m) throw new Error(`no time in: ${stderr}`);
  return Number(m[1]) * 60 + Number(m[2]);
}

interface Plugin {
  readonly name: string;
  readonly volgate: Volgate;
}

async function plugin(grace: string, sshd: TestSshd, s3: TestS3): Promise<Plugin> {
  const name = uniquePluginName();
  const volgate = await startVolgate({
    socket: pluginSocketPath(name),
    env: { VOLGATE_CONNECTION_GRACE: grace },
  });
  await writeProfile(volgate.secretsDir, "key", {
    private_key: await readFile(sshd.privateKeyPath, "utf8"),
    known_hosts: `${sshd.knownHostsLine}\n`,
  });
  await writeProfile(volgate.secretsDir, "s3", {
    access_key_id: s3.accessKeyId,
    secret_access_key: s3.secretAccessKey,
  });
  return { name, volgate };
}

/** volgate's own time for the last `op` on `volume`, from its log. */
function lastOpMs(p: Plugin, op: string, volume: string): number {
  const line = p.volgate
    .logs()
    .filter((l) => l.msg === "ok" && l.op === op && l.volume === volume)
    .at(-1);
  return Number(line?.ms);
}

async function main(): Promise<void> {
  const sshd = await startSshd();
  const s3 = await startS3(["bench"]);
  const remote = join(sshd.home, `bench-dockerd-${process.pid}`);
  await mkdir(remote, { recursive: true });
  await chown(remote, sshd.uid, sshd.gid);
  const plugins: Plugin[] = [];
  let dockerd: Dockerd | undefined;
  try {
    const warm = await plugin("60", sshd, s3);
    plugins.push(warm);
    const cold = await plugin("0", sshd, s3);
    plugins.push(cold);
    const d = await startDockerd();
    dockerd = d;
    const docker = (args: readonly string[]) => d.docker(args);
    const run = (volume: string, script: string) =>
      docker(["run", "--rm", "--network", "none", "-v", `${volume}:/data`, d.image, "sh", "-c", script]);
    const sshfsOpts = (path: string) => ({
      backend: "sshfs",
      host: sshd.host,
      port: String(sshd.port),
      user: sshd.user,
      path,
      create: "true",
      credentials: "key",
    });
    const s3fsOpts = (prefix: string) => ({
      backend: "s3fs",
      endpoint: s3.endpoint,
      bucket: "bench",
      prefix,
      create: "true",
      credentials: "s3",
    });
    const samples = new Samples();

    // Create through Docker: every volume its own remote directory, made by the check.
    for (const p of plugins) {
      for (let i = 0; i < ROUNDS; i++) {
        for (const [kind, opts] of [
          ["sshfs", sshfsOpts(join(remote, `${p.name}-${i}`))],
          ["s3fs", s3fsOpts(`${p.name}-${i}`)],
        ] as const) {
          const volume = `${p.name}-${kind}-${i}`;
          const r = ok(
            await docker(["volume", "create", "-d", p.name, ...optionArgs(opts), volume]),
            "create",
          );
          samples.add(`create ${kind} (docker)`, r.ms);
          samples.add(`create ${kind} (volgate)`, lastOpMs(p, "Create", volume));
        }
      }
    }
    ok(await docker(["volume", "create", "bench-local"]), "create local");
    const volumes = {
      local: "bench-local",
      "sshfs warm": `${warm.name}-sshfs-0`,
      "s3fs warm": `${warm.name}-s3fs-0`,
      "sshfs cold": `${cold.name}-sshfs-0`,
      "s3fs cold": `${cold.name}-s3fs-0`,
    };
    const owner = (label: string) => (label.endsWith("warm") ? warm : cold);
    // One run each first: dockerd and the image warm up, and the warm plugin's connections come up.
    for (const [label, volume] of Object.entries(volumes))
      ok(await run(volume, "true"), `first run ${label}`);
    for (let i = 0; i < ROUNDS; i++) {
      for (const [label, volume] of Object.entries(volumes)) {
        samples.add(`run ${label}`, ok(await run(volume, "true"), `run ${label}`).ms);
        if (label !== "local") samples.add(`mount ${label}`, lastOpMs(owner(label), "Mount", volume));
      }
    }

    // 100 MiB on cold connections: each read on a fresh mount, never from this mount's page cache.
    // "sshfs ssh-default" is the data path as ssh and sshfs set it (chacha20-poly1305 first, one
    // connection), next to volgate's default, in the same rounds.
    const sshDefault = `${cold.name}-sshfs-ssh-default`;
    const defaults = { ciphers: SSH_DEFAULT_CIPHERS, max_conns: "1" };
    const opts = { ...sshfsOpts(join(remote, sshDefault)), ...defaults };
    ok(await docker(["volume", "create", "-d", cold.name, ...optionArgs(opts), sshDefault]), "create");
    const data = {
      sshfs: `${cold.name}-sshfs-1`,
      "sshfs ssh-default": sshDefault,
      s3fs: `${cold.name}-s3fs-1`,
    };
    for (let i = 0; i < ROUNDS; i++) {
      for (const [kind, volume] of Object.entries(data)) {
        const write = await run(volume, "time dd if=/dev/zero of=/data/f bs=1M count=100 conv=fsync");
        samples.add(`${kind} write`, realSeconds(ok(write, `${kind} write`).stderr));
        const read = await run(volume, "time dd if=/data/f of=/dev/null bs=1M");
        samples.add(`${kind} read`, realSeconds(ok(read, `${kind} read`).stderr));
        ok(await run(volume, "rm /data/f"), `${kind} rm`);
      }
    }
    report(samples);
  } finally {
    await dockerd?.stop();
    for (const p of plugins) await p.volgate.stop();
    await rm(remote, { recursive: true, force: true });
    await s3.stop();
    await sshd.stop();
  }
}

function report(s: Samples): void {
  const local = median(s.of("run local"));
  console.log(`volgate through dockerd 20.10, peers on 127.0.0.1; medians of ${ROUNDS} [min-max]`);
  console.log("no-op `docker run --rm -v VOL:/data busybox true` (ms, docker client):");
  for (const label of ["local", "sshfs warm", "sshfs cold", "s3fs warm", "s3fs cold"]) {
    const xs = s.of(`run ${label}`);
    console.log(`  ${label.padEnd(11)} ${spread(xs).padEnd(16)} ${(median(xs) / local).toFixed(2)}x local`);
  }
  console.log("Mount (ms, volgate's own time for the request):");
  for (const kind of ["sshfs", "s3fs"]) {
    const warm = spread(s.of(`mount ${kind} warm`), 1);
    const cold = spread(s.of(`mount ${kind} cold`), 1);
    console.log(`  ${kind.padEnd(6)} warm ${warm.padEnd(18)} cold ${cold}`);
  }
  console.log("Create (ms, volgate / docker client):");
  for (const kind of ["sshfs", "s3fs"]) {
    console.log(
      `  ${kind.padEnd(6)} ${spread(s.of(`create ${kind} (volgate)`), 1).padEnd(20)} ${spread(s.of(`create ${kind} (docker)`))}`,
    );
  }
  console.log("100 MiB inside a container (s, busybox time; write with fsync, read on a fresh connection):");
  for (const kind of ["sshfs", "sshfs ssh-default", "s3fs"]) {
    console.log(
      `  ${kind.padEnd(17)} write ${spread(s.of(`${kind} write`), 2).padEnd(18)} read ${spread(s.of(`${kind} read`), 2)}`,
    );
  }
  const verdict = (good: boolean) => (good ? "ok" : "MISSED");
  const ratio = median(s.of("run sshfs warm")) / local;
  const write = median(s.of("sshfs write"));
  const read = median(s.of("sshfs read"));
  const create = median(s.of("create sshfs (volgate)"));
  console.log(
    `targets: no-op sshfs (warm) within ${TARGETS.noopVsLocal}x local: ${verdict(ratio <= TARGETS.noopVsLocal)} (${ratio.toFixed(2)}x); sshfs write < ${TARGETS.sshfsDataS} s: ${verdict(write < TARGETS.sshfsDataS)}; read < ${TARGETS.sshfsDataS} s: ${verdict(read < TARGETS.sshfsDataS)}; sshfs Create < ${TARGETS.createMs} ms: ${verdict(create < TARGETS.createMs)}`,
  );
}

await main();
