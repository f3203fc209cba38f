/**
 * The pure half of the s3fs backend: options -> typed spec (allow-list, refused options, inline
 * keys; bucket, prefix, endpoint and region in location.ts, tuning in tuning.ts), the connection
 * key and the description. The argv is built in argv.ts. Nothing here touches the machine.
 */
import { createHash } from "node:crypto";
import { invalid, shown } from "../../errors.ts";
import type { Options, Spec } from "../backend.ts";
import {
  COMMON_OPTIONS,
  type CommonOptions,
  checkAllowed,
  checkRefused,
  commonSessionKey,
  parseBool,
  parseCommon,
  parseReadOnly,
  refusedByName,
} from "../options.ts";
import { parseBucket, parseEndpoint, parsePrefix, parseRegion, pathStyleByDefault } from "./location.ts";
import { parseTuning, S3FS_TUNING_OPTIONS, type S3fsTuning } from "./tuning.ts";

export interface S3fsSpec extends Spec {
  readonly bucket: string;
  /** The volume's directory inside the bucket, without leading or trailing `/`; "" is the whole bucket. */
  readonly prefix: string;
  /** `scheme://host[:port]`, normalized (lower case, no default port, no path). */
  readonly endpoint: string;
  readonly region: string;
  readonly pathStyle: boolean;
  /** Server-side encryption with S3-managed keys (s3fs use_sse). */
  readonly sse: boolean;
  /** Inline secrets (refused by the driver unless the operator allows inline secrets). */
  readonly accessKeyId?: string;
  readonly secretAccessKey?: string;
  readonly common: CommonOptions;
  readonly tuning: S3fsTuning;
}

const S3FS_OPTIONS: readonly string[] = [
  ...COMMON_OPTIONS,
  "bucket",
  "prefix",
  "endpoint",
  "region",
  "path_style",
  "sse",
  "access_key_id",
  "secret_access_key",
  ...S3FS_TUNING_OPTIONS,
];

export const S3FS_SECRET_OPTIONS: readonly string[] = ["access_key_id", "secret_access_key"];

const S3_FILES = "it makes s3fs read or write files on this host";
const S3_LIBS = "it makes s3fs load a library on this host";
const S3_TLS = "it weakens TLS certificate checks (volgate always verifies the endpoint's certificate)";
const S3_LOGS = "it makes s3fs log request details that can carry credentials";
const S3_CREDS = "volgate passes credentials itself: use -o credentials=PROFILE";
const S3_OURS = "volgate sets it itself: use endpoint=, region= and path_style=";
const S3_ALWAYS = "volgate always mounts nosuid,nodev";

/** s3fs options that would touch files, load code, weaken TLS, log secrets or undo what volgate sets. */
const S3FS_REFUSED = refusedByName({
  passwd_file: S3_FILES,
  use_cache: S3_FILES,
  del_cache: S3_FILES,
  check_cache_dir_exist: S3_FILES,
  tmpdir: S3_FILES,
  ahbe_conf: S3_FILES,
  mime: S3_FILES,
  logfile: S3_FILES,
  load_sse_c: S3_FILES,
  use_sse: "it can name a key file on this host: use sse=true for S3-managed keys",
  set_check_cache_sigusr1: S3_FILES,
  ssl_client_cert: S3_FILES,
  credlib: S3_LIBS,
  credlib_opts: S3_LIBS,
  no_check_certificate: S3_TLS,
  ssl_verify_hostname: S3_TLS,
  cipher_suites: S3_TLS,
  curldbg: S3_LOGS,
  dbglevel: S3_LOGS,
  debug: S3_LOGS,
  profile: S3_CREDS,
  iam_role: S3_CREDS,
  ecs: S3_CREDS,
  imdsv1only: S3_CREDS,
  ibm_iam_auth: S3_CREDS,
  ibm_iam_endpoint: S3_CREDS,
  use_session_token: S3_CREDS,
  public_bucket: S3_CREDS,
  url: S3_OURS,
  host: S3_OURS,
  servicepath: S3_OURS,
  use_path_request_style: S3_OURS,
  suid: S3_ALWAYS,
  dev: S3_ALWAYS,
});

/**
 * An inline access key or secret as s3fs's passwd file needs it: printable, no spaces, no `:`
 * (the file's separator). The value itself never appears in the message.
 */
export function checkKeyText(what: string, value: string): void {
  if (!/^[\x21-\x7e]{1,512}$/.test(value) || value.includes(":") || /^[#[]/.test(value)) {
    throw invalid(
      `${what} must be 1-512 printable characters without spaces or ":" (and not starting with # or [): s3fs cannot use it`,
    );
  }
}

function parseSse(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.toLowerCase();
  if (v === "aes256" || v === "sse-s3") return true;
  try {
    return parseBool("sse", value, false);
  } catch {
    throw invalid(
      `option sse="${shown(value)}" is not supported: use sse=true (S3-managed keys, AES256); customer or KMS keys are not available`,
    );
  }
}

export function parseS3fs(opts: Options): S3fsSpec {
  checkRefused(opts, S3FS_REFUSED, S3FS_OPTIONS);
  checkAllowed("s3fs", opts, S3FS_OPTIONS);
  const bucket = opts.bucket;
  if (bucket === undefined || bucket === "") {
    throw invalid("backend s3fs needs option bucket (the S3 bucket name; the directory inside it is prefix)");
  }
  const common = parseCommon(opts);
  const { access_key_id: accessKeyId, secret_access_key: secretAccessKey } = opts;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw invalid("access_key_id and secret_access_key go together: pass both, or neither and credentials=");
  }
  if (accessKeyId !== undefined && common.credentials !== undefined) {
    throw invalid(
      "pass either credentials=PROFILE or access_key_id/secret_access_key, not both: a profile is the safer choice",
    );
  }
  if (accessKeyId === undefined && common.credentials === undefined) {
    throw invalid(
      "backend s3fs needs credentials: pass -o credentials=PROFILE naming a directory in the secrets dir that holds access_key_id and secret_access_key",
    );
  }
  if (accessKeyId !== undefined) checkKeyText("access_key_id", accessKeyId);
  if (secretAccessKey !== undefined) checkKeyText("secret_access_key", secretAccessKey);
  const region = parseRegion(opts.region || "us-east-1");
  const endpoint = parseEndpoint(opts.endpoint || `https://s3.${region}.amazonaws.com`);
  return {
    bucket: parseBucket(bucket),
    prefix: parsePrefix(opts.prefix ?? ""),
    endpoint,
    region,
    pathStyle: parseBool("path_style", opts.path_style, pathStyleByDefault(endpoint)),
    sse: parseSse(opts.sse),
    ...(accessKeyId !== undefined && { accessKeyId }),
    ...(secretAccessKey !== undefined && { secretAccessKey }),
    readOnly: parseReadOnly(opts),
    common,
    tuning: parseTuning(opts),
  };
}

/** Who the session is: the profile name, or a hash of the inline access key id. Never a secret. */
function identity(spec: S3fsSpec): string {
  if (spec.common.credentials !== undefined) return `profile:${spec.common.credentials}`;
  return `inline:${createHash("sha256")
    .update(spec.accessKeyId ?? "")
    .digest("hex")}`;
}

/** Everything that shapes the session; never the prefix, ro, create, or a secret. */
export function s3fsConnectionKey(spec: S3fsSpec): string {
  const c = spec.common;
  return JSON.stringify({
    backend: "s3fs",
    endpoint: spec.endpoint,
    region: spec.region,
    bucket: spec.bucket,
    pathStyle: spec.pathStyle,
    identity: identity(spec),
    sse: spec.sse,
    ...commonSessionKey(c),
    tuning: spec.tuning,
  });
}

export function describeS3fs(spec: S3fsSpec): string {
  return `s3://${spec.bucket}/${spec.prefix} @ ${spec.endpoint}`;
}
