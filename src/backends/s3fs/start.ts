/**
 * Running s3fs for a connection. s3fs cannot take a secret on stdin or argv, so each mount gets a
 * passwd file (0600) that volgate writes in its work dir and deletes as soon as s3fs has read it
 * (s3fs reads it once, at start). s3fs also "succeeds" when it fails (exit 0, a mount that may
 * appear and vanish), so it runs in the foreground under supervision, and the mount counts only
 * once a real lookup through it has reached S3.
 */
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Helper, lastLines } from "../../command.ts";
import type { Deadline } from "../../deadline.ts";
import { backendError, messageOf, redact, VolgateError, workFileError } from "../../errors.ts";
import type { BackendContext } from "../../host.ts";
import { unmountPath } from "../../mountops.ts";
import { sleep } from "../../time.ts";
import type { Target } from "../backend.ts";
import { FileCallError, MountFiles } from "../mount-files.ts";
import { checkTargetFree, waitForMount } from "../supervise.ts";
import type { S3Access } from "./access.ts";
import { buildS3fsArgv } from "./argv.ts";
import { describeS3fs, type S3fsSpec } from "./options.ts";

/** Every connection's passwd file: `s3fs-<connection id>.passwd` in the work dir. */
export const S3FS_PASSWD_FILES = /^s3fs-.+\.passwd$/;

/** What s3fs said, without timestamps, source locations and its chatty [INF] start-up lines. */
function s3fsSaid(log: string): string {
  const lines = log
    .split("\n")
    // [INF] lines are start-up chatter; the sigv2 retry note reads like a network error and is not one.
    .filter((l) => !/\[(INF|DBG)\]/.test(l) && !/retry to connect by signature version 2/.test(l))
    .map((l) =>
      l
        .replace(/^\d{4}-\d\d-\d\dT[0-9:.]+Z\s+/, "")
        .replace(/^\[(CRT|ERR|WAN)\]\s+/, "")
        .replace(/^[\w.]+\.cpp:\w+\(\d+\):\s*/, ""),
    );
  return lastLines(lines.join("\n"), 2);
}

/** Add what to do to the words s3fs printed. */
function withHint(err: unknown, access: S3Access): unknown {
  if (!(err instanceof VolgateError)) return err;
  const m = err.message;
  const hint = /invalid credentials/i.test(m)
    ? `the access key was refused: check ${access.keySource}`
    : /bucket or key not found/i.test(m)
      ? `bucket ${access.bucket} does not exist at ${access.endpoint}, or the key cannot see it`
      : /unable to connect/i.test(m)
        ? `cannot reach S3 endpoint ${access.endpoint}`
        : /exit code 127/.test(m)
          ? "s3fs is not installed on this host"
          : undefined;
  return hint ? new VolgateError(err.kind, `${m}: ${hint}`, { cause: err }) : err;
}

/**
 * Proof that s3fs talks to S3, not just that FUSE answers: s3fs mounts before it has
 * checked the bucket, answers lookups locally while failing, and exits 0 tens of ms later.
 * The volume's directory must be seen as a directory (a HeadObject/List through s3fs),
 * or, for a whole-bucket volume, the bucket root must list. Both go through the mount to S3,
 * which may hang: they run as children (mount-files.ts), killed at the deadline.
 */
async function provesS3(files: MountFiles, target: string, prefix: string): Promise<void> {
  if (prefix === "") {
    await files.list(target);
    return;
  }
  const kind = await files.kind(join(target, prefix));
  if (kind !== "directory") {
    throw new FileCallError(`${prefix} is not a directory`, kind === undefined ? "ENOENT" : "ENOTDIR");
  }
}

/**
 * Start s3fs in the foreground for `spec` at `target`, and return once the mount is live and
 * has reached S3; on any failure the helper is killed and nothing stays mounted. The passwd
 * file exists only while s3fs starts, and only once its command line is known to be good.
 */
export async function startS3fs(
  spec: S3fsSpec,
  access: S3Access,
  { dir: target, id }: Target,
  ctx: BackendContext,
  deadline: Deadline,
): Promise<Helper> {
  const what = `s3fs mount of ${describeS3fs(spec)}`;
  await checkTargetFree(ctx, target, what);
  const passwdFile = join(ctx.workDir, `s3fs-${id}.passwd`);
  const argv = buildS3fsArgv({ spec, target, passwdFile });
  await rm(passwdFile, { force: true });
  try {
    await writeFile(passwdFile, `${access.accessKeyId}:${access.secretAccessKey}\n`, {
      mode: 0o600,
      flag: "wx",
    }).catch((err: unknown) => {
      throw workFileError(ctx.workDir, err);
    });
    const raw = ctx.runner.start("s3fs", argv, { logFile: join(ctx.workDir, `s3fs-${id}.log`) });
    const helper: Helper = {
      pid: raw.pid,
      exited: raw.exited,
      output: () => redact(s3fsSaid(raw.output()), [access.secretAccessKey, access.accessKeyId]),
      kill: () => raw.kill(),
    };
    await untilProven(spec, helper, target, ctx, deadline, what).catch(async (err: unknown) => {
      helper.kill();
      await unmountPath(ctx, target).catch(() => {});
      throw withHint(err, access);
    });
    return helper;
  } finally {
    await rm(passwdFile, { force: true });
  }
}

/** Resolve once s3fs's mount is live and a lookup through it has reached S3. */
async function untilProven(
  spec: S3fsSpec,
  helper: Helper,
  target: string,
  ctx: BackendContext,
  deadline: Deadline,
  what: string,
): Promise<void> {
  let exitCode: number | null | undefined;
  void helper.exited.then((code) => {
    exitCode = code;
  });
  await waitForMount(ctx, target, deadline, what, helper);
  const files = new MountFiles(
    ctx.runner,
    deadline,
    what,
    `no answer through the mount; check that ${spec.endpoint} is reachable, or raise VOLGATE_MOUNT_TIMEOUT`,
  );
  await provesS3(files, target, spec.prefix).catch(async (err: unknown) => {
    if (err instanceof VolgateError) throw err;
    // A failing s3fs exits right after its check: give it a moment, then quote it.
    await Promise.race([helper.exited, sleep(1000)]);
    if (exitCode !== undefined) {
      throw backendError(`${what} failed: ${helper.output() || `exit code ${exitCode}`}`);
    }
    const why = (err as FileCallError).code ?? messageOf(err);
    throw backendError(
      spec.prefix === ""
        ? `${what} failed: the bucket cannot be listed through s3fs (${why})`
        : `${what} failed: directory ${spec.prefix} is not visible through s3fs (${why}): check that it still exists in the bucket`,
    );
  });
  if (exitCode !== undefined || (await ctx.mounts.probe(target)) !== "live") {
    throw backendError(`${what} failed: ${helper.output() || "s3fs exited right after mounting"}`);
  }
}
