/**
 * `npm run bench:backends`: per backend, create-time check (preflight), connection mount and
 * unmount times, and 64 MiB write (with fsync) and read throughput through the real mount.
 * Peers run on 127.0.0.1 (test sshd, s3rver); nfs needs a kernel nfsd and is measured inside
 * the UML guest by test/integration/nfs-daemon.test.ts. Needs root, /dev/fuse, sshfs, s3fs.
 */
import { chown, mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Backend, Options, Spec } from "../src/backends/backend.ts";
import { s3fsBackend } from "../src/backends/s3fs/index.ts";
import { sshfsBackend } from "../src/backends/sshfs/index.ts";
import { Deadline } from "../src/deadline.ts";
import { unmountPath } from "../src/mountops.ts";
import { type Machine, realMachine, targetAt } from "../test/support/machine.ts";
import { writeProfile } from "../test/support/profile.ts";
import { startS3 } from "../test/support/s3.ts";
import { startSshd } from "../test/support/sshd.ts";

const SIZE = 64 * 1024 * 1024;
const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);
const ROUNDS = 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await work();
  return [value, performance.now() - started];
}

async function writeFile64(path: string): Promise<void> {
  const file = await open(path, "w");
  for (let written = 0; written < SIZE; written += CHUNK.length) await file.write(CHUNK);
  await file.sync();
  await file.close();
}

async function measure<S extends Spec>(label: string, backend: Backend<S>, opts: Options, machine: Machine) {
  const { ctx } = machine.harness;
  const spec = backend.parse(opts);
  /** Each step its own budget, as each Docker request has. */
  const deadline = () => Deadline.after(20_000);
  const preflights: number[] = [];
  let subdir = "";
  for (let i = 0; i < ROUNDS; i++) {
    const [dir, ms] = await timed(() => backend.preflight(spec, ctx, deadline()));
    subdir = dir;
    preflights.push(ms);
  }
  const mounts: number[] = [];
  const unmounts: number[] = [];
  const target = await machine.harness.newTarget();
  for (let i = 0; i < ROUNDS; i++) {
    mounts.push((await timed(() => backend.mount(spec, targetAt(target), ctx, deadline())))[1]);
    unmounts.push((await timed(() => unmountPath(ctx, target)))[1]);
  }
  await backend.mount(spec, targetAt(target), ctx, deadline());
  const file = join(target, subdir, "bench-64MiB");
  const [, writeMs] = await timed(() => writeFile64(file));
  await unmountPath(ctx, target); // a fresh mount: the read cannot come from this mount's page cache
  await backend.mount(spec, targetAt(target), ctx, deadline());
  const [data, readMs] = await timed(() => readFile(file));
  if (data.length !== SIZE) throw new Error(`${label}: read ${data.length} bytes, wrote ${SIZE}`);
  await rm(file);
  await unmountPath(ctx, target);
  const mbps = (ms: number) => (SIZE / 1024 / 1024 / (ms / 1000)).toFixed(0);
  console.log(
    `${label.padEnd(7)} preflight ${median(preflights).toFixed(0).padStart(5)} ms  mount ${median(mounts).toFixed(0).padStart(5)} ms  unmount ${median(unmounts).toFixed(0).padStart(4)} ms  write ${mbps(writeMs).padStart(5)} MiB/s  read ${mbps(readMs).padStart(5)} MiB/s`,
  );
}

async function sshfs(): Promise<void> {
  const sshd = await startSshd();
  const machine = await realMachine("sshfs");
  try {
    const remote = join(sshd.home, "bench");
    await mkdir(remote, { recursive: true });
    await chown(remote, sshd.uid, sshd.gid);
    await writeProfile(machine.secretsDir, "key", {
      private_key: await readFile(sshd.privateKeyPath, "utf8"),
      known_hosts: `${sshd.knownHostsLine}\n`,
    });
    const opts = {
      host: sshd.host,
      port: String(sshd.port),
      user: sshd.user,
      path: remote,
      credentials: "key",
    };
    await measure("sshfs", sshfsBackend, opts, machine);
  } finally {
    await machine.close();
    await sshd.stop();
  }
}

async function s3fs(): Promise<void> {
  const s3 = await startS3(["bench"]);
  const machine = await realMachine("s3fs");
  try {
    await writeProfile(machine.secretsDir, "s3", {
      access_key_id: s3.accessKeyId,
      secret_access_key: s3.secretAccessKey,
    });
    const opts = {
      bucket: "bench",
      prefix: "vol",
      create: "true",
      endpoint: s3.endpoint,
      credentials: "s3",
      norenameapi: "",
    };
    await measure("s3fs", s3fsBackend, opts, machine);
  } finally {
    await machine.close();
    await s3.stop();
  }
}

console.log(
  `backends on 127.0.0.1, medians of ${ROUNDS}; 64 MiB in 1 MiB writes + fsync, read after a remount`,
);
await sshfs();
await s3fs();
console.log("nfs: measured inside the UML guest, see test/integration/nfs-daemon.test.ts output");
