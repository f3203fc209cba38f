/**
 * The volume's directory on the server, over SFTP: the user's path (absolute, or relative to the
 * login home) resolved to its real absolute path, made one component at a time when asked.
 */
import { posix } from "node:path";
import type { SFTPWrapper, Stats } from "ssh2";
import { backendError, invalid, messageOf, shown } from "../../errors.ts";

export interface RemoteDir {
  /** As the user gave it: absolute, or relative to the login home ("" = home). */
  readonly path: string;
  readonly create: boolean;
}

type Sftp = Pick<SFTPWrapper, "realpath" | "stat" | "mkdir">;

const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

const call = <T>(fn: (cb: (err: Error | undefined | null, value: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
const codeOf = (err: unknown) => (err as { code?: unknown }).code;
const realpath = (sftp: Sftp, p: string) => call<string>((cb) => sftp.realpath(p, cb));
const statOf = (sftp: Sftp, p: string) =>
  call<Stats>((cb) => sftp.stat(p, cb)).catch((err: unknown) => {
    if (codeOf(err) === NO_SUCH_FILE) return undefined;
    throw err;
  });

/**
 * The real absolute path of the volume's directory; creates missing components when asked.
 * `where` names the server in messages. An existing absolute path costs two requests (realpath,
 * stat): each is a round trip to the server.
 */
export async function resolveRemoteDir(sftp: Sftp, dir: RemoteDir, where: string): Promise<string> {
  const joined = posix.isAbsolute(dir.path) ? dir.path : posix.join(await realpath(sftp, "."), dir.path);
  const wanted = posix.normalize(joined).replace(/\/+$/, "") || "/";
  const found = await realpath(sftp, wanted).then(
    async (real) => {
      const info = await statOf(sftp, real);
      return info && { real, info };
    },
    (err: unknown) => {
      if (codeOf(err) === NO_SUCH_FILE) return undefined;
      throw err;
    },
  );
  const { real, info } = found ?? (await makeDir(sftp, dir, wanted, where));
  if (!info?.isDirectory()) {
    throw invalid(`remote path ${shown(real)} on ${where} is not a directory: point path at a directory`);
  }
  return real;
}

/** Make each missing component of `wanted` (with create=true), then resolve it. */
async function makeDir(sftp: Sftp, dir: RemoteDir, wanted: string, where: string) {
  if (!dir.create) {
    throw invalid(
      `remote directory ${shown(wanted)} does not exist on ${where}: create it or pass -o create=true`,
    );
  }
  let prefix = "/";
  for (const part of wanted.split("/").filter((p) => p !== "")) {
    prefix = posix.join(prefix, part);
    if (await statOf(sftp, prefix)) continue;
    await call<void>((cb) => sftp.mkdir(prefix, (err) => cb(err, undefined))).catch((err: unknown) => {
      const why = codeOf(err) === PERMISSION_DENIED ? "permission denied" : messageOf(err);
      throw backendError(`cannot create remote directory ${shown(prefix)} on ${where}: ${why}`);
    });
  }
  const real = await realpath(sftp, wanted);
  return { real, info: await statOf(sftp, real) };
}
