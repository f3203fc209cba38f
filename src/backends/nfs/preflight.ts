/**
 * The nfs backend's checks of the server, each within the deadline: the name resolves and the NFS
 * port (and rpcbind for v3) accepts TCP, before every mount; and, at create, that the mounted
 * export holds the volume's directory `path` (created with create=true, one component at a time,
 * never through a symlink that leaves the export).
 */
import { lookup } from "node:dns/promises";
import { Socket } from "node:net";
import { join } from "node:path";
import type { CommandRunner } from "../../command.ts";
import type { Deadline } from "../../deadline.ts";
import { backendError, invalid, VolgateError } from "../../errors.ts";
import { type FileCallError, MountFiles } from "../mount-files.ts";
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

/** A failed file call as a message without local paths; timeouts and VolgateErrors pass as they are. */
const asBackendError = (what: string) => (err: unknown) => {
  if (err instanceof VolgateError) throw err;
  const e = err as FileCallError;
  throw backendError(`${what}: ${e.code ?? e.message}`, err);
};

/**
 * Walk (and with create, make) the volume's directory inside the mounted export `root`, one
 * component at a time, through children (mount-files.ts): the server may stop answering mid-walk.
 * A symlink is followed only to a directory inside the export; nothing is made through one that
 * leaves it.
 */
export async function ensureDirectory(
  spec: NfsSpec,
  root: string,
  runner: CommandRunner,
  deadline: Deadline,
): Promise<void> {
  const where = `in export ${spec.export} on ${spec.server}`;
  const what = `checking "${spec.path}" ${where}`;
  const files = new MountFiles(runner, deadline, what, "check that the NFS server is answering");
  const fail = asBackendError(what);
  const realRoot = await files.realPath(root).catch(fail);
  let current = realRoot;
  for (const segment of spec.path === "" ? [] : spec.path.split("/")) {
    const next = join(current, segment);
    let kind = await files.kind(next).catch(fail);
    if (kind === undefined) {
      if (!spec.create) {
        throw invalid(`directory "${spec.path}" does not exist ${where}: create it, or pass -o create=true`);
      }
      await files.makeDir(next).catch((err: unknown) => {
        const code = (err as FileCallError).code;
        if (code === "EEXIST") return;
        if (err instanceof VolgateError) throw err;
        throw backendError(`cannot create directory "${spec.path}" ${where}: ${code}${mkdirHint(code)}`, err);
      });
      current = next;
      continue;
    }
    current = next;
    if (kind === "symlink") {
      current = await files.realPath(next).catch(fail);
      if (!inside(current, realRoot)) {
        throw invalid(`"${spec.path}" ${where} leads outside the export through a symlink: refusing it`);
      }
      kind = await files.kind(current).catch(fail);
    }
    if (kind !== "directory") throw invalid(`"${spec.path}" ${where} is not a directory`);
  }
}
