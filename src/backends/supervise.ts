/**
 * Waiting for a mount to appear: helpers report success before the kernel has
 * the mount (or, like s3fs, even when they failed), so the mount table is the
 * only truth. Polls mountinfo (a text search that never touches the mount), ever
 * less often, until the target shows up; only then asks once whether it answers
 * (a child, killed if it hangs). Gives up when the helper exits or the deadline
 * passes; on failure the helper is killed and nothing is left mounted.
 */
import { type Helper, lastLines } from "../command.ts";
import type { Deadline } from "../deadline.ts";
import { backendError, busy } from "../errors.ts";
import type { BackendContext } from "../host.ts";
import { sleep } from "../time.ts";

/** The first look comes soon (a mount takes milliseconds), then ever later, up to the last. */
const FIRST_POLL_MS = 5;
const LAST_POLL_MS = 100;

/**
 * A helper mounts only where nothing is mounted: over a live mount it would stack a second one
 * (FUSE) or fail as busy (kernel filesystems), and its rollback would then unmount the mount
 * that was there. Connections never asks for that; this makes a caller that does fail clearly.
 */
export async function checkTargetFree(ctx: BackendContext, target: string, what: string): Promise<void> {
  const state = await ctx.mounts.probe(target);
  if (state !== "absent") {
    throw busy(`${what} refused: ${target} is already mounted (${state}); unmount it first`);
  }
}

/**
 * Resolve once `target` is a live mount. `helper` (optional) is a foreground
 * helper whose early exit means failure; its output explains why.
 */
export async function waitForMount(
  ctx: BackendContext,
  target: string,
  deadline: Deadline,
  what: string,
  helper?: Helper,
): Promise<void> {
  let exitCode: number | null | undefined;
  helper?.exited.then((code) => {
    exitCode = code;
  });
  for (let pause = FIRST_POLL_MS; ; pause = Math.min(2 * pause, LAST_POLL_MS)) {
    if (await isLive(ctx, target, deadline, what)) return;
    if (exitCode !== undefined) {
      throw backendError(`${what} failed: ${lastLines(helper?.output() ?? "") || `exit code ${exitCode}`}`);
    }
    if (deadline.over) {
      helper?.kill();
      const said = lastLines(helper?.output() ?? "");
      throw deadline.error(
        `${what}${said ? ` (${said})` : ""}`,
        "check that the server is reachable, or raise VOLGATE_MOUNT_TIMEOUT",
      );
    }
    await sleep(pause);
  }
}

/** Mounted (mountinfo says) and answering (one probe); false when the deadline ends the probe. */
async function isLive(ctx: BackendContext, target: string, deadline: Deadline, what: string) {
  if ((await ctx.mounts.find(target)) === undefined) return false;
  // A probe of a hung mount can take seconds: never let it carry us past the deadline.
  const state = await deadline.race(ctx.mounts.probe(target), what).catch((err: unknown) => {
    if (!deadline.over) throw err;
  });
  return state === "live";
}
