/**
 * Who an s3fs session is: the keys from its credentials profile (only for the endpoints its
 * allowed_hosts lists, if it has one) or its inline options, and where they came from, for
 * messages. Read at each use, so a rotated profile needs no restart.
 */
import { checkAllowedHost, openProfile, readSecret } from "../../credentials.ts";
import { invalid } from "../../errors.ts";
import type { BackendContext } from "../../host.ts";
import { endpointAddress } from "./location.ts";
import { checkKeyText, type S3fsSpec } from "./options.ts";

export interface S3Access {
  readonly endpoint: string;
  readonly region: string;
  readonly pathStyle: boolean;
  readonly bucket: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Where the keys came from, for messages: `credentials profile "p"`, `the inline access_key_id option`. */
  readonly keySource: string;
}

/** The keys for a spec, from its credentials profile or its inline options. */
export async function resolveAccess(spec: S3fsSpec, ctx: BackendContext): Promise<S3Access> {
  const base = {
    endpoint: spec.endpoint,
    region: spec.region,
    pathStyle: spec.pathStyle,
    bucket: spec.bucket,
  };
  const name = spec.common.credentials;
  if (name === undefined) {
    if (spec.accessKeyId === undefined || spec.secretAccessKey === undefined) {
      throw invalid("backend s3fs needs credentials: pass -o credentials=PROFILE");
    }
    return {
      ...base,
      accessKeyId: spec.accessKeyId,
      secretAccessKey: spec.secretAccessKey,
      keySource: "the inline access_key_id option",
    };
  }
  const profile = await openProfile(ctx.secretsDir, name);
  const { host, port } = endpointAddress(spec.endpoint);
  await checkAllowedHost(profile, host, port);
  const accessKeyId = (await readSecret(profile, "access_key_id"))?.trim();
  const secretAccessKey = (await readSecret(profile, "secret_access_key"))?.trim();
  const missing = [
    ...(accessKeyId ? [] : ["access_key_id"]),
    ...(secretAccessKey ? [] : ["secret_access_key"]),
  ];
  if (accessKeyId === undefined || secretAccessKey === undefined || missing.length > 0) {
    throw invalid(
      `credentials profile "${name}" (${profile.dir}) lacks ${missing.join(" and ")}: add the file${missing.length > 1 ? "s" : ""} (mode 0600)`,
    );
  }
  checkKeyText(`access_key_id of credentials profile "${name}"`, accessKeyId);
  checkKeyText(`secret_access_key of credentials profile "${name}"`, secretAccessKey);
  return { ...base, accessKeyId, secretAccessKey, keySource: `credentials profile "${name}"` };
}
