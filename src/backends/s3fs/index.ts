/**
 * The s3fs backend. A connection mounts a bucket's root once per session-shaping key;
 * each volume is a prefix ("directory") inside it. Keys come from a credentials profile
 * (access_key_id, secret_access_key) or, when the operator allows it, inline options
 * (access.ts). s3fs hides why it fails, so a mount asks S3 first (HeadBucket, preflight.ts),
 * then runs s3fs under supervision (start.ts).
 */
import type { BackendContext } from "../../host.ts";
import type { Backend } from "../backend.ts";
import { resolveAccess } from "./access.ts";
import { describeS3fs, parseS3fs, S3FS_SECRET_OPTIONS, type S3fsSpec, s3fsConnectionKey } from "./options.ts";
import { S3FS_PASSWD_FILES, startS3fs } from "./start.ts";

export type { S3fsSpec } from "./options.ts";

/** The AWS SDK is loaded on first use: it costs tens of MB a daemon without s3fs volumes need not pay. */
const loadSdk = () => import("./preflight.ts");

function warnIfPlain(spec: S3fsSpec, ctx: BackendContext): void {
  if (spec.endpoint.startsWith("http://")) {
    ctx.log.warn(
      { endpoint: spec.endpoint, bucket: spec.bucket },
      "S3 endpoint uses plain http: data travels unencrypted (requests are signed, the secret key is never sent)",
    );
  }
}

export const s3fsBackend: Backend<S3fsSpec> = {
  name: "s3fs",
  secretOptions: S3FS_SECRET_OPTIONS,
  secretWorkFiles: S3FS_PASSWD_FILES,
  parse: parseS3fs,
  connectionKey: s3fsConnectionKey,
  describe: describeS3fs,

  async preflight(spec, ctx, deadline) {
    const access = await resolveAccess(spec, ctx);
    warnIfPlain(spec, ctx);
    const c = spec.common;
    const { s3Preflight } = await loadSdk();
    return s3Preflight(
      access,
      {
        prefix: spec.prefix,
        create: c.create,
        ...(c.uid !== undefined && { uid: c.uid }),
        ...(c.gid !== undefined && { gid: c.gid }),
      },
      deadline,
    );
  },

  // s3fs answers statfs without asking S3: the health check asks S3 itself.
  async probe(spec, ctx, deadline) {
    await (await loadSdk()).checkBucket(await resolveAccess(spec, ctx), deadline);
  },

  async mount(spec, target, ctx, deadline) {
    const started = Date.now();
    const access = await resolveAccess(spec, ctx);
    warnIfPlain(spec, ctx);
    // s3fs hides why it failed (and may hang ~20 s on a dead endpoint): ask S3 first.
    await (await loadSdk()).checkBucket(access, deadline);
    const helper = await startS3fs(spec, access, target, ctx, deadline);
    ctx.log.info(
      { remote: describeS3fs(spec), target: target.dir, pid: helper.pid, ms: Date.now() - started },
      "s3fs connection mounted",
    );
  },
};
