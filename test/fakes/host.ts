/**
 * A fake machine for unit and sanity tests: a CommandRunner that records every
 * argv and stdin, and a mount table that mount/umount/fakefs really change.
 * Remote servers are a map of server -> directories; faults are switches.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { CommandRunner, RunOptions, RunResult } from "../../src/command.ts";
import { VolgateError } from "../../src/errors.ts";
import type { Liveness, MountEntry, MountTable } from "../../src/mountinfo.ts";

export interface Call {
  readonly file: string;
  readonly args: readonly string[];
  readonly stdin?: string;
}

export class FakeHost {
  readonly calls: Call[] = [];
  readonly table = new Map<string, MountEntry>();
  readonly stale = new Set<string>();
  /** server -> directories that exist on it. */
  readonly servers = new Map<string, Set<string>>();
  /** Mount faults by server: "fail" (stderr echoes the password), "hang" (never returns). */
  readonly faults = new Map<string, "fail" | "hang">();
  /** Paths whose plain umount fails as busy. */
  readonly busy = new Set<string>();

  readonly runner: CommandRunner = {
    run: (file, args, options) => this.run(file, args, options),
    start: () => {
      throw new Error("FakeHost does not start long-running helpers");
    },
  };

  readonly mounts: MountTable = {
    entries: async () => [...this.table.values()],
    probe: async (path): Promise<Liveness> => {
      if (!this.table.has(path)) return "absent";
      return this.stale.has(path) ? "stale" : "live";
    },
  };

  mountsOf(fsType: string): MountEntry[] {
    return [...this.table.values()].filter((e) => e.fsType === fsType);
  }

  callsOf(file: string): Call[] {
    return this.calls.filter((c) => c.file === file);
  }

  private async run(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
    this.calls.push({ file, args: [...args], ...(options.stdin !== undefined && { stdin: options.stdin }) });
    const ok = { code: 0, stdout: "", stderr: "" };
    const target = args[args.length - 1] ?? "";
    if (file === "mount" && args[0] === "--bind") {
      this.table.set(target, { mountPoint: target, fsType: "bind", source: args[1] ?? "", options: "rw" });
      return ok;
    }
    if (file === "mount" && args[0] === "-o") {
      const entry = this.table.get(target);
      if (!entry) return { code: 32, stdout: "", stderr: `mount: ${target}: not mounted` };
      this.table.set(target, { ...entry, options: args[1] ?? "" });
      return ok;
    }
    if (file === "umount") {
      const lazy = args[0] === "-l";
      if (!this.table.has(target)) return { code: 32, stdout: "", stderr: `umount: ${target}: not mounted` };
      if (!lazy && (this.busy.has(target) || this.stale.has(target))) {
        return { code: 32, stdout: "", stderr: `umount: ${target}: target is busy` };
      }
      this.table.delete(target);
      this.stale.delete(target);
      return ok;
    }
    if (file === "fakefs") return this.fakefs(args, target, options);
    throw new Error(`FakeHost: unexpected command ${file} ${args.join(" ")}`);
  }

  /** `fakefs -o OPTS server TARGET`: mounts every directory of `server` under TARGET. */
  private async fakefs(args: readonly string[], target: string, options: RunOptions): Promise<RunResult> {
    const server = args[args.length - 2] ?? "";
    const fault = this.faults.get(server);
    if (fault === "hang") {
      await new Promise<void>((_resolve, reject) => {
        const timer = setTimeout(
          () => reject(new VolgateError("timeout", "fakefs did not finish and was killed")),
          options.timeoutMs,
        );
        options.signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(new VolgateError("timeout", "fakefs was cancelled: the request was aborted"));
        });
      });
    }
    if (fault === "fail") {
      return { code: 1, stdout: "", stderr: `fakefs: login refused for password ${options.stdin ?? ""}\n` };
    }
    for (const dir of this.servers.get(server) ?? []) mkdirSync(join(target, dir), { recursive: true });
    this.table.set(target, {
      mountPoint: target,
      fsType: "fuse.fakefs",
      source: server,
      options: args[1] ?? "",
    });
    return { code: 0, stdout: "", stderr: "" };
  }
}
