/**
 * The nfs backend: the kernel NFS client through `mount -t nfs` (mount.nfs), no shell.
 * A connection mounts the export root (`server:/export`) once per key (server, export,
 * version, mount options); each volume is a directory (`path`) inside it. Options and aliases
 * are parsed in options.ts, mount options allow-listed in mount-options.ts, the argv built in
 * argv.ts; the server is checked in preflight.ts.
 *
 * Preflight resolves the server name, checks TCP to the NFS port (and rpcbind for v3), then mounts
 * the export in a private directory under the work dir to check that the export exists and holds
 * `path` (created with create=true), and unmounts it. That is the only way to get "export X does
 * not exist on S" before the first container starts; it costs one mount at create.
 */
import { mkdtemp, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { lastLines, type RunResult } from "../../command.ts";
import type { Deadline } from "../../deadline.ts";
import { backendError, VolgateError, workFileError } from "../../errors.ts";
import type { BackendContext } from "../../host.ts";
import { unmountPath } from "../../mountops.ts";
import type { Backend } from "../backend.ts";
import { checkTargetFree, waitForMount } from "../supervise.ts";
import { nfsMountArgs } from "./argv.ts";
import { describeNfs, type NfsSpec, nfsConnectionKey, nfsSource, parseNfs } from "./options.ts";
import { checkReachable, ensureDirectory } from "./preflight.ts";

export type { NfsSpec } from "./options.ts";

/** mount.nfs's words, with what they mean for this volume. */
function mountFailure(spec: NfsSpec, result: RunResult): VolgateError {
  const said = lastLines(`${result.stdout}\n${result.stderr}`) || `exit code ${result.code}`;
  const source = nfsSource(spec);
  if (/No such file or directory|access denied by server/.test(said)) {
    return backendError(
      `export ${spec.export} does not exist on ${spec.server} or is not exported to this host (${said})`,
    );
  }
  if (/Protocol not supported|version or transport protocol is not supported/.test(said)) {
    return backendError(`${spec.server} does not serve NFS version ${spec.vers} (${said}): set -o vers`);
  }
  if (/Connection refused/.test(said)) {
    return backendError(`NFS server ${spec.server} refused the connection (${said})`);
  }
  return backendError(`mounting ${source} failed: ${said}`);
}

/** Mount the export root at `target` and wait until mountinfo shows it live; nothing left on failure. */
async function mountExport(spec: NfsSpec, target: string, ctx: BackendContext, deadline: Deadline) {
  const what = `NFS mount of ${nfsSource(spec)}`;
  await checkTargetFree(ctx, target, what);
  await checkReachable(spec, deadline);
  let result: RunResult;
  try {
    result = await ctx.runner.run("mount", nfsMountArgs(spec, target), { deadline });
  } catch (err) {
    // Killed mid-mount: the kernel may still have finished it.
    await unmountPath(ctx, target).catch(() => {});
    if (err instanceof VolgateError && err.kind === "timeout") {
      throw deadline.error(
        what,
        "the server accepts TCP connections but did not finish the mount; check the NFS server, or raise VOLGATE_MOUNT_TIMEOUT",
      );
    }
    throw err;
  }
  if (result.code !== 0) {
    await unmountPath(ctx, target).catch(() => {});
    throw mountFailure(spec, result);
  }
  try {
    // mount(8) may answer as the budget ends: the mount table still gets a look.
    await waitForMount(ctx, target, deadline.atLeast(1000), what);
  } catch (err) {
    await unmountPath(ctx, target).catch(() => {});
    throw err;
  }
}

export const nfsBackend: Backend<NfsSpec> = {
  name: "nfs",
  secretOptions: [],
  parse: parseNfs,
  connectionKey: nfsConnectionKey,
  describe: describeNfs,

  async preflight(spec, ctx, deadline) {
    const dir = await mkdtemp(join(ctx.workDir, "nfs-check-")).catch((err: unknown) => {
      throw workFileError(ctx.workDir, err);
    });
    try {
      await mountExport(spec, dir, ctx, deadline);
      try {
        await ensureDirectory(spec, dir, ctx.runner, deadline);
      } finally {
        await unmountPath(ctx, dir);
      }
    } finally {
      await rmdir(dir).catch(() => {});
    }
    return spec.path;
  },

  mount: (spec, target, ctx, deadline) => mountExport(spec, target.dir, ctx, deadline),
};
