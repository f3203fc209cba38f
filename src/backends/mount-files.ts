/**
 * File calls through a mount that may hang (a FUSE helper or an NFS server that stopped answering),
 * each a coreutils child run through the runner and killed at the deadline. Called in the daemon,
 * such a call would hold one of libuv's four pool threads in the kernel until the mount answered
 * (forever, on a hard NFS mount), and four of them would stall every file call of the daemon:
 * state writes, the mount table, every other volume's mount.
 */
import type { CommandRunner, RunResult } from "../command.ts";
import type { Deadline } from "../deadline.ts";
import { VolgateError } from "../errors.ts";

export type FileKind = "directory" | "symlink" | "other";

/** What the tools print (LANG=C) for the errors callers tell apart, as errno names. */
const ERRNO: Readonly<Record<string, string>> = {
  "No such file or directory": "ENOENT",
  "File exists": "EEXIST",
  "Permission denied": "EACCES",
  "Operation not permitted": "EPERM",
  "Read-only file system": "EROFS",
  "Not a directory": "ENOTDIR",
  "Transport endpoint is not connected": "ENOTCONN",
  "Input/output error": "EIO",
  "Stale file handle": "ESTALE",
  "Too many levels of symbolic links": "ELOOP",
  "No space left on device": "ENOSPC",
  "Disk quota exceeded": "EDQUOT",
};

/** A file call that failed, with the errno name when the tool's words tell it (as node's errors have it). */
export class FileCallError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "FileCallError";
  }
}

/** The error a tool's exit means: its last words are `...: <strerror>`. */
function failed(result: RunResult): FileCallError {
  const said = result.stderr.trim().split("\n").at(-1) ?? "";
  const reason = said.slice(said.lastIndexOf(": ") + 2);
  return new FileCallError(reason || `exit code ${result.code}`, ERRNO[reason]);
}

/**
 * The file calls of one step (a mount's proof, a preflight's walk), all on one deadline; when it
 * is over, the child is killed and the call fails as `what` timing out, with `hint`.
 */
export class MountFiles {
  constructor(
    private readonly runner: CommandRunner,
    private readonly deadline: Deadline,
    private readonly what: string,
    private readonly hint?: string,
  ) {}

  /** What `path` is, without following a final symlink (lstat); undefined when it does not exist. */
  async kind(path: string): Promise<FileKind | undefined> {
    const result = await this.run("stat", ["-c", "%F", "--", path]);
    if (result.code !== 0) {
      const err = failed(result);
      if (err.code === "ENOENT") return undefined;
      throw err;
    }
    const kind = result.stdout.trim();
    return kind === "directory" ? "directory" : kind === "symbolic link" ? "symlink" : "other";
  }

  /** `path` with every symlink resolved; it must exist. */
  async realPath(path: string): Promise<string> {
    // NUL-terminated: a symlink on the remote side may point at a name with a newline.
    const result = await this.run("realpath", ["-e", "-z", "--", path]);
    if (result.code !== 0) throw failed(result);
    return result.stdout.replace(/\0$/, "");
  }

  /** Make one directory (not its parents); fails with EEXIST when something is there. */
  async makeDir(path: string, mode = "755"): Promise<void> {
    const result = await this.run("mkdir", ["-m", mode, "--", path]);
    if (result.code !== 0) throw failed(result);
  }

  /** Read the directory `path` (its entries are not needed: that it lists is what counts). */
  async list(path: string): Promise<void> {
    const result = await this.run("ls", ["-A", "-U", "--", path]);
    if (result.code !== 0) throw failed(result);
  }

  private async run(file: string, args: readonly string[]): Promise<RunResult> {
    return this.runner.run(file, args, { deadline: this.deadline }).catch((err: unknown) => {
      if (err instanceof VolgateError && err.kind === "timeout") {
        throw this.deadline.error(this.what, this.hint);
      }
      throw err;
    });
  }
}
