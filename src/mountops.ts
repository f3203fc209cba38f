/** The mount operations volgate does itself: bind a volume's directory, unmount with a lazy fallback. */
import { lastLines } from "./command.ts";
import { Deadline } from "./deadline.ts";
import { backendError, invalid } from "./errors.ts";
import type { Host } from "./host.ts";

const OP_TIMEOUT_MS = 10_000;
/** Each of these commands gets its own short budget, whatever the request has left. */
const opDeadline = () => ({ deadline: Deadline.after(OP_TIMEOUT_MS) });

/** Bind `source` at `target`, read-only when asked; always nosuid,nodev. */
export async function bindMount(ctx: Host, source: string, target: string, readOnly: boolean): Promise<void> {
  const bind = await ctx.runner.run("mount", ["--bind", source, target], opDeadline());
  if (bind.code !== 0) {
    throw backendError(`cannot bind ${source} at ${target}: ${lastLines(bind.stderr)}`);
  }
  const flags = `remount,bind,nosuid,nodev${readOnly ? ",ro" : ""}`;
  const remount = await ctx.runner.run("mount", ["-o", flags, target], opDeadline());
  if (remount.code !== 0) {
    await unmountPath(ctx, target);
    throw backendError(`cannot remount ${target} ${flags}: ${lastLines(remount.stderr)}`);
  }
}

const inside = (root: string, base: string) => base === "/" || root === base || root.startsWith(`${base}/`);

/**
 * After binding a volume's directory: the new mount must be a directory of the connection's own file
 * system, or a symlink on the share (swapped in at any moment, even between a check and the bind)
 * led the bind elsewhere; then it is taken down again. mountinfo tells both without touching the share.
 */
export async function verifyBind(ctx: Host, target: string, connDir: string, volume: string): Promise<void> {
  const [bound, conn] = await Promise.all([ctx.mounts.find(target), ctx.mounts.find(connDir)]);
  if (bound && conn && bound.dev === conn.dev && inside(bound.root, conn.root)) return;
  await unmountPath(ctx, target).catch(() => {});
  throw invalid(
    `the directory of volume ${volume} is a symlink leading outside its share: refusing to mount it`,
  );
}

/**
 * Unmount whatever is at `path`; a busy or dead mount falls back to a lazy
 * unmount so state stays consistent. Absent mounts are fine.
 */
export async function unmountPath(ctx: Host, path: string): Promise<void> {
  if ((await ctx.mounts.find(path)) === undefined) return;
  const plain = await ctx.runner.run("umount", [path], opDeadline()).catch(() => undefined);
  if (plain?.code === 0) return;
  ctx.log.warn({ path, stderr: plain?.stderr.trim() }, "unmount failed, detaching lazily");
  const lazy = await ctx.runner.run("umount", ["-l", path], opDeadline());
  if (lazy.code !== 0 && (await ctx.mounts.find(path)) !== undefined) {
    throw backendError(`cannot unmount ${path}: ${lastLines(lazy.stderr)}`);
  }
}
