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
import type { Deadline } from "../../deadline.ts";
import { backendError, invalid, VolgateError } from "../../errors.ts";
import { hostForUrl } from "../options.ts";
import { serverPorts } from "./mount-options.ts";
import type { NfsSpec } from "./options.ts";

/** One TCP connection to address:port, closed at once; the socket never outlives the deadline. */
function tcpConnect(address: string, port: number, where: string, deadline: Deadline) {
  return new Promise<void>((resolve, reject) => {
    const socket = new Socket();
    const done = (err?: Error) => {
      stopWatching();
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const stopWatching = deadline.onEnd(() =>
      done(
        deadline.error(`connecting to NFS server ${where}`, "check that it is up and reachable from here"),
      ),
    );
    socket.once("connect", () => done());
    socket.once("error", (err) =>
      done(backendError(`cannot reach NFS server ${where}: ${err.message}`, err)),
    );
    socket.connect({ host: address, port });
  });
}

/** The server name resolves and its ports accept TCP connections, within the deadline. */
export async function checkReachable(spec: NfsSpec, deadline: Deadline): Promise<void> {
  const lookingUp = deadline.race(lookup(spec.server), `looking up NFS server name ${spec.server}`);
  const { address } = await lookingUp.catch((err: unknown) => {
    if (err instanceof VolgateError) throw err;
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw backendError(`cannot resolve NFS server name ${spec.server}: ${why}`, err);
  });
  // At once: for v3 (NFS and rpcbind) one round trip rather than two; the first failure is reported.
  await Promise.all(
    serverPorts(spec.vers, spec.opts).map(({ port, role }) => {
      const where = `${hostForUrl(spec.server)}:${port}${role === "NFS" ? "" : ` (${role})`}`;
      return tcpConnect(address, port, where, deadline);
    }),
  );
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
function stepper(what: string, deadline: Deadline): Step {
  const fallback = (err: NodeJS.ErrnoException) => backendError(`${what}: ${err.code ?? err.message}`, err);
  return (work, fail = fallback) =>
    deadline.race(work, what).catch((err: NodeJS.ErrnoException) => {
      throw err instanceof VolgateError ? err : fail(err);
    });
}

/** An errno error other than `code` still fails; `code` itself means "nothing there". */
const unless = (code: string) => (err: NodeJS.ErrnoException) => {
  if (err.code !== code) throw err;
  return undefined;
};

/** Walk (and with create, make) the volume's directory inside the mounted export `root`. */
export async function ensureDirectory(spec: NfsSpec, root: string, deadline: Deadline): Promise<void> {
  const where = `in export ${spec.export} on ${spec.server}`;
  const step = stepper(`checking "${spec.path}" ${where}`, deadline);
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
    // lstat already answered for anything but a symlink: one round trip to the server per component.
    const isDir = info.isSymbolicLink() ? (await step(stat(current))).isDirectory() : info.isDirectory();
    if (!isDir) throw invalid(`"${spec.path}" ${where} is not a directory`);
  }
}
