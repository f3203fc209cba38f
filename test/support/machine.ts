/**
 * The machines backends run on in tests: the fake host, and this one for real. Each gives a
 * backend context in its own temp dirs (secrets, work, connection targets), a log read back
 * through a sink, every command recorded, and what the conformance suite needs to see and
 * kill helpers.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { Target } from "../../src/backends/backend.ts";
import { type CommandRunner, createRunner } from "../../src/command.ts";
import { Deadline } from "../../src/deadline.ts";
import { systemMountTable } from "../../src/mountinfo.ts";
import type { Harness, RecordedCall } from "../conformance/suite.ts";
import type { FakeHost } from "../fakes/host.ts";
import { captureLog } from "../fakes/log.ts";
import { helpersFor, mountEntries, processes } from "./procs.ts";

export interface Machine {
  readonly harness: Harness;
  /** The temp dir everything lives in. */
  readonly root: string;
  /** Where credentials profiles go. */
  readonly secretsDir: string;
  /** Unmount what is left (lazily) and remove the temp dirs. */
  close(): Promise<void>;
}

/** Every mount below `root`, stacked ones included. */
const mountsUnder = async (root: string) =>
  (await mountEntries()).filter((e) => e.mountPoint.startsWith(`${root}/`));

/** A connection target at `dir`, named by the directory (Connections names it by a hash of its key). */
export const targetAt = (dir: string): Target => ({ dir, id: basename(dir) });

/** Records every command, then lets `inner` run it. */
function recording(inner: CommandRunner, calls: RecordedCall[]): CommandRunner {
  return {
    run(file, args, options) {
      calls.push({ file, args: [...args] });
      return inner.run(file, args, options);
    },
    start(file, args, options) {
      calls.push({ file, args: [...args] });
      return inner.start(file, args, options);
    },
  };
}

async function dirs(prefix: string) {
  const root = await mkdtemp(join(tmpdir(), prefix));
  const secretsDir = join(root, "secrets");
  const workDir = join(root, "work");
  await mkdir(secretsDir, { mode: 0o700 });
  await mkdir(workDir, { mode: 0o700 });
  let n = 0;
  const newTarget = async () => {
    const target = join(root, "conns", `c${++n}`);
    await mkdir(target, { recursive: true, mode: 0o700 });
    return target;
  };
  return { root, secretsDir, workDir, newTarget };
}

/** The fake host: helpers are records, killing one marks its mount dead; a mount without one is marked dead. */
export async function fakeMachine(host: FakeHost): Promise<Machine> {
  const d = await dirs("volgate-conformance-fake-");
  const { log, lines } = captureLog();
  const calls: RecordedCall[] = [];
  const ctx = host.context({ log, secretsDir: d.secretsDir, workDir: d.workDir });
  return {
    root: d.root,
    secretsDir: d.secretsDir,
    harness: {
      ctx: { ...ctx, runner: recording(host.runner, calls) },
      logs: lines,
      calls,
      processCommandLines: async () => [],
      mounts: async () => host.entries().filter((e) => e.mountPoint.startsWith(`${d.root}/`)),
      newTarget: d.newTarget,
      async killHelper(target) {
        if (host.helpersAt(target).length > 0) host.kill(target);
        else host.stale.add(target);
      },
      helpersAt: async (target) => host.helpersAt(target).length,
    },
    close: () => rm(d.root, { recursive: true, force: true }),
  };
}

/** This machine: the real runner and mount table; `helper` is the process name of the backend's helper. */
export async function realMachine(helper: string | undefined): Promise<Machine> {
  const d = await dirs("volgate-conformance-real-");
  const { log, lines } = captureLog();
  const calls: RecordedCall[] = [];
  return {
    root: d.root,
    secretsDir: d.secretsDir,
    harness: {
      ctx: {
        runner: recording(createRunner(d.workDir), calls),
        mounts: systemMountTable(createRunner(d.workDir)),
        log,
        secretsDir: d.secretsDir,
        workDir: d.workDir,
        verifyHostKeys: true,
      },
      logs: lines,
      calls,
      processCommandLines: async () => (await processes()).map((p) => p.argv.join(" ")),
      mounts: () => mountsUnder(d.root),
      newTarget: d.newTarget,
      async killHelper(target) {
        const found = helper === undefined ? [] : await helpersFor(helper, target);
        if (found.length === 0) throw new Error(`no ${helper ?? "helper"} process serves ${target}`);
        for (const p of found) process.kill(p.pid, "SIGKILL");
      },
      helpersAt: async (target) => (helper === undefined ? 0 : (await helpersFor(helper, target)).length),
    },
    async close() {
      // Stacked mounts come off one at a time: never remove the tree while anything is mounted in it.
      const runner = createRunner(d.workDir);
      for (let round = 0; round < 10; round++) {
        const left = await mountsUnder(d.root);
        if (left.length === 0) return rm(d.root, { recursive: true, force: true });
        for (const e of left)
          await runner.run("umount", ["-l", e.mountPoint], { deadline: Deadline.after(10_000) });
      }
      throw new Error(`mounts left under ${d.root}: not removing it`);
    },
  };
}
