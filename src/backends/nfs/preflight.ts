/**
 * The nfs backend's checks of the server, each within the deadline: the name resolves and the NFS
 * port (and rpcbind for v3) accepts TCP, before every mount; and, at create, that the mounted
 * export holds the volume's directory `path` (created with create=true, one component at a time,
 * never through a symlink that leaves the export).
 */
import { lookup } from "node:dns/promises";
import { lstat, mkdir, realpath, stat } from "node:fs/promises";
import { Socket } from "node:net";
import { join } from "node:path";
import { backendError, invalid, timeout, VolgateError } from "../../errors.ts";
import { within } from "../../time.ts";
import type { Deadline } from "../backend.ts";
import { hostForUrl } from "../options.ts";
import { nfsPorts } from "./argv.ts";
import type { NfsSpec } from "./options.ts";

/** Milliseconds left, never below 1 so timers still fire. */
export const left = (until: number) => Math.max(1, until - Date.now());

export const cancelled = (what: string) => timeout(`${what} was cancelled: Docker aborted the request`);
const noAnswer = (what: string, deadline: Deadline) =>
  timeout(`${what}: no answer within ${Math.round(deadline.timeoutMs / 1000)}s`);

/** `work`'s value, or a timeout error at the deadline (the work itself cannot be cancelled: a hung NFS stat). */
async function settle<T>(work: Promise<T>, until: number, deadline: Deadline, what: string): Promise<T> {
  if (deadline.signal?.aborted) throw cancelled(what);
  const result = await within(work, left(until));
  if (result === "late") throw noAnswer(what, deadline);
  if (deadline.signal?.aborted) throw cancelled(what);
  return result;
}

/** One TCP connection to address:port, closed at once; the socket never outlives the deadline. */
function tcpConnect(address: string, port: number, until: number, deadline: Deadline, what: string) {
  return new Promise<void>((resolve, reject) => {
    const socket = new Socket();
    const done = (err?: Error) => {
      clearTimeout(timer);
      deadline.signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => done(cancelled(what));
    const timer = setTimeout(() => done(noAnswer(what, deadline)), left(until));
    if (deadline.signal?.aborted) return onAbort();
    deadline.signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("connect", () => done());
    socket.once("error", (err) => done(backendError(`${what}: ${err.message}`, err)));
    socket.connect({ host: address, port });
  });
}

/** The server name resolves and its ports accept TCP connections, within the deadline. */
export async function checkReachable(spec: NfsSpec, until: number, deadline: Deadline): Promise<void> {
  const naming = `cannot resolve NFS server name ${spec.server}`;
  const { address } = await settle(lookup(spec.server), until, deadline, naming).catch((err: unknown) => {
    if (err instanceof VolgateError) throw err;
    throw backendError(`${naming}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, err);
  });
  for (const { port, role } of nfsPorts(spec)) {
    const where = `${hostForUrl(spec.server)}:${port}${role === "NFS" ? "" : ` (${role})`}`;
    await tcpConnect(address, port, until, deadline, `cannot reach NFS server ${where}`);
  }
}

const inside = (path: string, root: string) => path === root || path.startsWith(`${root}/`);

/** Why mkdir failed, in the terms of an NFS export. */
function mkdirHint(code: string | undefined): string {
  if (code === "EACCES" || code === "EPERM")
    return " (the server squashes root, or the directory is not writable)";
  if (code === "EROFS") return " (the export is read-only)";
  return "";
}

type Step = <T>(work: Promise<T>, fail?: (err: NodeJS.ErrnoException) => VolgateError) => Promise<T>;

/** One file system call within the deadline; errno errors become messages without local paths. */
function stepper(what: string, until: number, deadline: Deadline): Step {
  const fallback = (err: NodeJS.ErrnoException) => backendError(`${what}: ${err.code ?? err.message}`, err);
  return (work, fail = fallback) =>
    settle(work, until, deadline, what).catch((err: NodeJS.ErrnoException) => {
      throw err instanceof VolgateError ? err : fail(err);
    });
}

/** An errno error other than `code` still fails; `code` itself means "nothing there". */
const unless = (code: string) => (err: NodeJS.ErrnoException) => {
  if (err.code !== code) throw err;
  return undefined;
};

/** Walk (and with create, make) the volume's directory inside the mounted export `root`. */
export async function ensureDirectory(
  spec: NfsSpec,
  root: string,
  until: number,
  deadline: Deadline,
): Promise<void> {
  const where = `in export ${spec.export} on ${spec.server}`;
  const step = stepper(`checking "${spec.path}" ${where}`, until, deadline);
  const realRoot = await step(realpath(root));
  let current = realRoot;
  for (const segment of spec.path === "" ? [] : spec.path.split("/")) {
    const next = join(current, segment);
    const info = await step(lstat(next).catch(unless("ENOENT")));
    if (info === undefined) {
      if (!spec.create) {
        throw invalid(`directory "${spec.path}" does not exist ${where}: create it, or pass -o create=true`);
      }
      await step(mkdir(next, { mode: 0o755 }).catch(unless("EEXIST")), (err) =>
        backendError(
          `cannot create directory "${spec.path}" ${where}: ${err.code}${mkdirHint(err.code)}`,
          err,
        ),
      );
      current = next;
      continue;
    }
    if (info.isSymbolicLink()) {
      current = await step(realpath(next));
      if (!inside(current, realRoot)) {
        throw invalid(`"${spec.path}" ${where} leads outside the export through a symlink: refusing it`);
      }
    } else current = next;
    if (!(await step(stat(current))).isDirectory()) {
      throw invalid(`"${spec.path}" ${where} is not a directory`);
    }
  }
}
