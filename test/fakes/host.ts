/**
 * A fake machine for unit and sanity tests: a CommandRunner that records every
 * argv and stdin, and a mount table that mount/umount/fakefs and started helpers
 * really change. Remote servers are a map of mount source -> directories; faults are switches.
 *
 * It plays the kernel's part as far as tests need: a mount over a mount stacks (FUSE), except
 * the same kernel filesystem at the same place (EBUSY, as for NFS); a FUSE helper killed by a
 * signal leaves its mount dead (stale), one that exits by itself takes its mount with it, and
 * one whose mount is unmounted exits.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CommandRunner,
  createRunner,
  type Helper,
  type RunOptions,
  type RunResult,
  type StartOptions,
} from "../../src/command.ts";
import type { BackendContext } from "../../src/host.ts";
import type { Logger } from "../../src/logger.ts";
import type { Liveness, MountEntry, MountTable } from "../../src/mountinfo.ts";

export interface Call {
  readonly file: string;
  readonly args: readonly string[];
  readonly stdin?: string;
}

/**
 * "fail": the command fails, its output echoing its stdin (a password); "hang": it never finishes
 * (a helper never mounts); `exit`: a helper says `said` and exits with `code`, after its mount
 * appeared for a moment when `mountFirst` (s3fs does that).
 */
export type Fault =
  | "fail"
  | "hang"
  | { readonly code: number; readonly said: string; readonly mountFirst?: boolean };

/** A long-running helper (sshfs -f, s3fs -f) the fake started. */
export interface FakeHelper extends Call {
  readonly pid: number;
  readonly source: string;
  readonly target: string;
  readonly options: StartOptions;
  /** Files named by `-o key=/path` when it started, as the helper would read them. */
  readonly read: ReadonlyMap<string, { readonly text: string; readonly mode: number }>;
  /** Whoever started it asked to kill it (it may have exited already). */
  killed: boolean;
  /** Exit code once it has exited (null: killed by a signal). */
  exitCode?: number | null;
}

const HELPER_DELAY_MS = 10;
/** File tools backends run on a mount (mount-files.ts): the real ones, on the fake's real directories. */
const FILE_TOOLS = new Set(["stat", "realpath", "mkdir", "ls"]);
const realRunner = createRunner(tmpdir());
let nextPid = 4000;
let nextDev = 100;

export class FakeHost {
  readonly calls: Call[] = [];
  /** The top mount at each mountpoint. */
  readonly table = new Map<string, MountEntry>();
  /** Mounts hidden under the top one at the same mountpoint, bottom first. */
  readonly under = new Map<string, MountEntry[]>();
  readonly stale = new Set<string>();
  /** fakefs servers that stopped answering behind mounts that still answer (as s3fs does with S3 gone). */
  readonly unanswering = new Set<string>();
  /** Mount source -> directories that exist on it (a fakefs server, `user@host:/`, a bucket, `host:/export`). */
  readonly servers = new Map<string, Set<string>>();
  /** Faults by mount source. */
  readonly faults = new Map<string, Fault>();
  /** Servers whose fakefs mount succeeds, this many ms later. */
  readonly slow = new Map<string, number>();
  /** Paths whose plain umount fails as busy. */
  readonly busy = new Set<string>();
  readonly helpers: FakeHelper[] = [];
  /** What `sshfs --version` prints (the sshfs backend reads it once, for max_conns). */
  sshfsVersion = "SSHFS version 3.7.3\nFUSE library version 3.14.0\n";
  /** How each started helper ends: exit with a code, killed (null). */
  private readonly exits = new Map<FakeHelper, (code: number | null) => void>();
  /** Directories a mount made appear in its target, removed when it goes. */
  private readonly shown = new Map<string, string[]>();

  readonly runner: CommandRunner = {
    run: (file, args, options) => this.run(file, args, options),
    start: (file, args, options) => this.start(file, args, options),
  };

  readonly mounts: MountTable = {
    entries: async () => [...[...this.under.values()].flat(), ...this.table.values()],
    find: async (path) => this.table.get(path),
    probe: async (path): Promise<Liveness> => {
      if (!this.table.has(path)) return "absent";
      return this.stale.has(path) ? "stale" : "live";
    },
  };

  /** A backend context on this machine. */
  context(options: {
    secretsDir: string;
    workDir: string;
    log: Logger;
    verifyHostKeys?: boolean;
  }): BackendContext {
    return { runner: this.runner, mounts: this.mounts, verifyHostKeys: true, ...options };
  }

  /** Every mount, those hidden under another included, as mountinfo would list them. */
  entries(): MountEntry[] {
    return [...[...this.under.values()].flat(), ...this.table.values()];
  }

  mountsOf(fsType: string): MountEntry[] {
    return [...this.table.values()].filter((e) => e.fsType === fsType);
  }

  callsOf(file: string): Call[] {
    return this.calls.filter((c) => c.file === file);
  }

  /** Helpers still running for `target`. */
  helpersAt(target: string): FakeHelper[] {
    return this.helpers.filter((h) => h.target === target && h.exitCode === undefined);
  }

  /** SIGKILL the helpers serving `target`: the mount stays, dead. */
  kill(target: string): void {
    for (const h of this.helpersAt(target)) this.exits.get(h)?.(null);
  }

  private async run(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
    this.calls.push({ file, args: [...args], ...(options.stdin !== undefined && { stdin: options.stdin }) });
    const ok = { code: 0, stdout: "", stderr: "" };
    const target = args[args.length - 1] ?? "";
    if (file === "mount" && args[0] === "--bind") {
      this.attach({
        mountPoint: target,
        fsType: "bind",
        source: args[1] ?? "",
        options: "rw",
        ...this.bindOf(args[1] ?? ""),
      });
      return ok;
    }
    if (file === "mount" && args[0] === "-o") {
      const entry = this.table.get(target);
      if (!entry) return { code: 32, stdout: "", stderr: `mount: ${target}: not mounted` };
      this.table.set(target, { ...entry, options: args[1] ?? "" });
      return ok;
    }
    if (file === "mount" && args[0] === "-t") return this.mountType(args, target, options);
    if (file === "umount") {
      const lazy = args[0] === "-l";
      if (!this.table.has(target)) return { code: 32, stdout: "", stderr: `umount: ${target}: not mounted` };
      if (!lazy && (this.busy.has(target) || this.stale.has(target))) {
        return { code: 32, stdout: "", stderr: `umount: ${target}: target is busy` };
      }
      this.detach(target);
      return ok;
    }
    if (file === "fakefs") return this.fakefs(args, target, options);
    if (file === "sshfs" && args[0] === "--version") return { ...ok, stdout: this.sshfsVersion };
    if (FILE_TOOLS.has(file)) return this.fileTool(file, args, target, options);
    throw new Error(`FakeHost: unexpected command ${file} ${args.join(" ")}`);
  }

  /** A file tool on `path`: through a dead mount it fails as the kernel says; elsewhere it really runs. */
  private async fileTool(file: string, args: readonly string[], path: string, options: RunOptions) {
    const dead = [...this.stale].some((m) => path === m || path.startsWith(`${m}/`));
    if (dead)
      return { code: 1, stdout: "", stderr: `${file}: '${path}': Transport endpoint is not connected\n` };
    return realRunner.run(file, args, options);
  }

  /** `mount -t TYPE -o OPTS -- SOURCE TARGET`, a kernel filesystem (nfs). */
  private async mountType(args: readonly string[], target: string, options: RunOptions): Promise<RunResult> {
    const source = args[args.length - 2] ?? "";
    const opts = args[args.indexOf("-o") + 1] ?? "";
    const fsType = args[1] === "nfs" && !/(^|,)vers=3(,|$)/.test(opts) ? "nfs4" : (args[1] ?? "");
    const fault = this.faults.get(source);
    if (fault === "hang") await hang("mount", options);
    if (fault !== undefined) {
      const said =
        typeof fault === "object" ? fault.said : `access denied by server while mounting ${source}`;
      return {
        code: typeof fault === "object" ? fault.code : 32,
        stdout: "",
        stderr: `mount.${args[1]}: ${said}\n`,
      };
    }
    const top = this.table.get(target);
    if (top?.source === source && top.fsType === fsType) {
      return { code: 32, stdout: "", stderr: `mount.${args[1]}: ${target} is busy or already mounted\n` };
    }
    this.attach({ mountPoint: target, fsType, source, options: opts }, this.servers.get(source));
    return { code: 0, stdout: "", stderr: "" };
  }

  /** `HELPER -f SOURCE TARGET [-o OPTS]...`: mounts fuse.HELPER after a moment, unless a fault says otherwise. */
  private start(file: string, args: readonly string[], options: StartOptions): Helper {
    const source = args[1] ?? "";
    const target = args[2] ?? "";
    const opts = args.filter((_, i) => args[i - 1] === "-o");
    const helper: FakeHelper = {
      file,
      args: [...args],
      ...(options.stdin !== undefined && { stdin: options.stdin }),
      pid: nextPid++,
      source,
      target,
      options,
      read: readNamedFiles(opts),
      killed: false,
    };
    this.calls.push({
      file,
      args: helper.args,
      ...(options.stdin !== undefined && { stdin: options.stdin }),
    });
    this.helpers.push(helper);
    let output = "";
    const say = (text: string) => {
      output += text;
      writeFileSync(options.logFile, output, { mode: 0o600 });
    };
    let mounted: MountEntry | undefined;
    const exited = new Promise<number | null>((resolve) => {
      this.exits.set(helper, (code) => {
        if (helper.exitCode !== undefined) return;
        helper.exitCode = code;
        // A FUSE daemon that exits on its own unmounts; one killed leaves its mount dead.
        if (mounted !== undefined && this.table.get(target) === mounted) {
          if (code === null) this.stale.add(target);
          else this.detach(target);
        }
        resolve(code);
      });
    });
    const exit = (code: number | null) => this.exits.get(helper)?.(code);
    say("");
    const fault = this.faults.get(source);
    setTimeout(() => {
      if (helper.exitCode !== undefined || fault === "hang") return;
      if (fault === "fail") {
        say(`${file}: login refused for password ${options.stdin ?? ""}\n`);
        exit(1);
        return;
      }
      const entry = { mountPoint: target, fsType: `fuse.${file}`, source, options: opts.join(",") };
      if (fault === undefined || fault.mountFirst) mounted = this.attach(entry, this.servers.get(source));
      if (fault === undefined) return;
      setTimeout(
        () => {
          say(fault.said);
          exit(fault.code);
        },
        fault.mountFirst ? 3 * HELPER_DELAY_MS : 0,
      );
    }, HELPER_DELAY_MS);
    const kill = () => {
      helper.killed = true;
      exit(null);
    };
    return { pid: helper.pid, exited, output: () => output, kill };
  }

  /**
   * Where a bind of `source` really lands, as the kernel resolves it (symlinks followed): the
   * file system of the fake mount holding that path, or the host's own.
   */
  private bindOf(source: string): Pick<MountEntry, "dev" | "root"> {
    let real: string;
    try {
      real = realpathSync(source);
    } catch {
      real = source;
    }
    let best: MountEntry | undefined;
    for (const e of this.table.values()) {
      const inside = real === e.mountPoint || real.startsWith(`${e.mountPoint}/`);
      if (inside && (best === undefined || e.mountPoint.length > best.mountPoint.length)) best = e;
    }
    if (!best) return { dev: "8:1", root: real };
    const rel = real.slice(best.mountPoint.length);
    return { dev: best.dev, root: best.root === "/" ? rel || "/" : `${best.root}${rel}` };
  }

  /** Put `entry` on top of whatever is mounted at its mountpoint; `dirs` appear inside it. */
  private attach(
    given: Omit<MountEntry, "dev" | "root"> & Partial<MountEntry>,
    dirs?: Iterable<string>,
  ): MountEntry {
    const entry: MountEntry = { dev: `0:${nextDev++}`, root: "/", ...given };
    const path = entry.mountPoint;
    const below = this.table.get(path);
    if (below !== undefined) this.under.set(path, [...(this.under.get(path) ?? []), below]);
    this.table.set(path, entry);
    this.stale.delete(path);
    const made: string[] = [];
    for (const dir of dirs ?? []) {
      mkdirSync(join(path, dir), { recursive: true });
      made.push(join(path, dir.split("/")[0] ?? dir));
    }
    if (made.length > 0) this.shown.set(path, made);
    return entry;
  }

  /** Unmount the top mount at `path`; the one under it, if any, shows again. */
  private detach(path: string): void {
    const top = this.table.get(path);
    const rest = this.under.get(path) ?? [];
    const below = rest.pop();
    if (below === undefined) this.table.delete(path);
    else this.table.set(path, below);
    if (rest.length === 0) this.under.delete(path);
    this.stale.delete(path);
    for (const dir of this.shown.get(path) ?? []) rmSync(dir, { recursive: true, force: true });
    this.shown.delete(path);
    for (const h of this.helpers) {
      if (h.target === path && h.exitCode === undefined && top?.fsType === `fuse.${h.file}`) {
        this.exits.get(h)?.(0);
      }
    }
  }

  /** `fakefs -o OPTS server TARGET`: mounts every directory of `server` under TARGET. */
  private async fakefs(args: readonly string[], target: string, options: RunOptions): Promise<RunResult> {
    const server = args[args.length - 2] ?? "";
    const fault = this.faults.get(server);
    if (fault === "hang") await hang("fakefs", options);
    if (fault === "fail") {
      return { code: 1, stdout: "", stderr: `fakefs: login refused for password ${options.stdin ?? ""}\n` };
    }
    const delay = this.slow.get(server);
    if (delay !== undefined) await new Promise((r) => setTimeout(r, delay));
    // As the kernel: the mountpoint must exist when the mount happens.
    if (!existsSync(target))
      return { code: 32, stdout: "", stderr: `fakefs: mount point ${target} does not exist\n` };
    for (const dir of this.servers.get(server) ?? []) mkdirSync(join(target, dir), { recursive: true });
    this.attach({ mountPoint: target, fsType: "fuse.fakefs", source: server, options: args[1] ?? "" });
    return { code: 0, stdout: "", stderr: "" };
  }
}

/** Never finish: fail like the real runner once the deadline is over (spent, or the request aborted). */
function hang(file: string, { deadline }: RunOptions): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    deadline.onEnd(() => reject(deadline.error(file)));
  });
}

/** The files a helper's `-o` options name (`key=/path`), read as it starts. */
function readNamedFiles(opts: readonly string[]): Map<string, { text: string; mode: number }> {
  const out = new Map<string, { text: string; mode: number }>();
  for (const item of opts.flatMap((o) => o.split(","))) {
    const path = item.slice(item.indexOf("=") + 1);
    if (!item.includes("=") || !path.startsWith("/")) continue;
    try {
      out.set(path, { text: readFileSync(path, "utf8"), mode: statSync(path).mode & 0o777 });
    } catch {
      // not a file (yet): the helper would fail on it later
    }
  }
  return out;
}
