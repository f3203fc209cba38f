/** The mount operations volgate does itself: bind a volume's directory, unmount with a lazy fallback. */
import type { BackendContext } from "./backends/backend.ts";
import { lastLines } from "./backends/supervise.ts";
import { backendError, invalid } from "./errors.ts";

type Ops = Pick<BackendContext, "runner" | "mounts" | "log">;

const OP_TIMEOUT_MS = 10_000;

/** Bind `source` at `target`, read-only when asked; always nosuid,nodev. */
export async function bindMount(ctx: Ops, source: string, target: string, readOnly: boolean): Promise<void> {
  const bind = await ctx.runner.run("mount", ["--bind", source, target], { timeoutMs: OP_TIMEOUT_MS });
  if (bind.code !== 0) {
    throw backendError(`cannot bind ${source} at ${target}: ${lastLines(bind.stderr)}`);
  }
  const flags = `remount,bind,nosuid,nodev${readOnly ? ",ro" : ""}`;
  const remount = await ctx.runner.run("mount", ["-o", flags, target], { timeoutMs: OP_TIMEOUT_MS });
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
export async function verifyBind(ctx: Ops, target: string, connDir: string, volume: string): Promise<void> {
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
export async function unmountPath(ctx: Ops, path: string): Promise<void> {
  if ((await ctx.mounts.find(path)) === undefined) return;
  const plain = await ctx.runner.run("umount", [path], { timeoutMs: OP_TIMEOUT_MS }).catch(() => undefined);
  if (plain?.code === 0) return;
  ctx.log.warn({ path, stderr: plain?.stderr.trim() }, "unmount failed, detaching lazily");
  const lazy = await ctx.runner.run("umount", ["-l", path], { timeoutMs: OP_TIMEOUT_MS });
  if (lazy.code !== 0 && (await ctx.mounts.find(path)) !== undefined) {
    throw backendError(`cannot unmount ${path}: ${lastLines(lazy.stderr)}`);
  }
}
