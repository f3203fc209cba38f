/**
 * The s3fs command line for a connection: the bucket root in the foreground, the endpoint,
 * our passwd file, session options and tuning. Secrets never appear here.
 */
import { fuseSessionOptions, optionPath } from "../options.ts";
import type { S3fsSpec } from "./options.ts";

interface S3fsArgvInput {
  readonly spec: S3fsSpec;
  readonly target: string;
  /** The passwd file volgate wrote for this connection (ACCESS:SECRET, 0600). */
  readonly passwdFile: string;
}

/**
 * `s3fs -f BUCKET TARGET -o url=...,endpoint=REGION,...`: the bucket root, in the foreground
 * (the supervisor sees it exit and can kill it). Secrets never appear here, only our passwd file.
 */
export function buildS3fsArgv(input: S3fsArgvInput): string[] {
  const { spec } = input;
  const o = [`url=${spec.endpoint}`, `endpoint=${spec.region}`];
  if (spec.pathStyle) o.push("use_path_request_style");
  o.push(`passwd_file=${optionPath(input.passwdFile, "s3fs")}`);
  o.push(...fuseSessionOptions(spec.common));
  if (spec.common.umask !== undefined) o.push(`mp_umask=${spec.common.umask}`);
  if (spec.sse) o.push("use_sse");
  for (const [name, value] of Object.entries(spec.tuning)) o.push(value === true ? name : `${name}=${value}`);
  return ["-f", spec.bucket, input.target, "-o", o.join(",")];
}
