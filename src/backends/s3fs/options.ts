/**
 * The pure half of the s3fs backend: options -> typed spec (allow-list, strict
 * bucket/prefix/endpoint/region values; tuning in tuning.ts), the connection key
 * and the description. The argv is built in argv.ts. Nothing here touches the machine.
 */
import { createHash } from "node:crypto";
import { isIPv6 } from "node:net";
import { invalid } from "../../errors.ts";
import type { Options } from "../backend.ts";
import {
  COMMON_OPTIONS,
  type CommonOptions,
  checkAllowed,
  checkRefused,
  commonSessionKey,
  hostForUrl,
  isHostName,
  parseBool,
  parseCommon,
  refusedByName,
} from "../options.ts";
import { parseTuning, S3FS_TUNING_OPTIONS, type S3fsTuning } from "./tuning.ts";

export interface S3fsSpec {
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

export const S3FS_OPTIONS: readonly string[] = [
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

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const ENDPOINT_RE = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?\/?$/i;
const MAX_PREFIX = 1000;

/** A host name, IPv4 address, or IPv6 address in brackets; returns it lower case, without brackets. */
function parseEndpointHost(raw: string): string | undefined {
  if (raw.startsWith("[")) {
    const bare = raw.slice(1, -1);
    return isIPv6(bare) ? bare.toLowerCase() : undefined;
  }
  return isHostName(raw) ? raw.toLowerCase() : undefined;
}

/** S3 bucket naming rules (the DNS-compatible ones every S3 implementation accepts). */
function parseBucket(value: string): string {
  if (value.includes("/")) {
    throw invalid(
      `bucket="${value}" contains "/": give the bucket name alone and the directory inside it as -o prefix=...`,
    );
  }
  const ok =
    BUCKET_RE.test(value) &&
    !value.includes("..") &&
    !/^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$/.test(value) &&
    !/^(xn--|sthree-)/.test(value) &&
    !/(-s3alias|--ol-s3)$/.test(value);
  if (!ok) {
    throw invalid(
      `bucket="${value}" is not a valid S3 bucket name: use 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit`,
    );
  }
  return value;
}

const isControl = (ch: string) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f;

/** `a/b/c`: leading and trailing slashes dropped; no empty, `.` or `..` parts, no control characters. */
function parsePrefix(value: string): string {
  const trimmed = value.replace(/^\/+/, "").replace(/\/+$/, "");
  if (trimmed === "") return "";
  const parts = trimmed.split("/");
  if (
    [...trimmed].some(isControl) ||
    Buffer.byteLength(trimmed) > MAX_PREFIX ||
    parts.some((p) => p === "" || p === "." || p === "..")
  ) {
    throw invalid(
      `prefix="${[...value].map((ch) => (isControl(ch) ? "?" : ch)).join("")}" is not a usable directory in a bucket: use parts like a/b/c, without "..", ".", empty parts or control characters, at most ${MAX_PREFIX} bytes`,
    );
  }
  return trimmed;
}

/** `http(s)://host[:port]` and nothing else; returns it normalized. */
function parseEndpoint(value: string): string {
  const m = ENDPOINT_RE.exec(value);
  const scheme = m?.[1]?.toLowerCase();
  const rawHost = m?.[2];
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  const host = rawHost === undefined ? undefined : parseEndpointHost(rawHost);
  if (scheme === undefined || host === undefined || (port !== undefined && (port < 1 || port > 65535))) {
    throw invalid(
      `endpoint="${value}" must be a URL like https://s3.example.com or http://127.0.0.1:9000: scheme, host and port only (no path, user, query, spaces or quotes)`,
    );
  }
  const defaultPort = scheme === "https" ? 443 : 80;
  return `${scheme}://${hostForUrl(host)}${port === undefined || port === defaultPort ? "" : `:${port}`}`;
}

function parseRegion(value: string): string {
  if (!REGION_RE.test(value)) {
    throw invalid(
      `region="${value}" is not a region name: use lower-case letters, digits, - and _, like us-east-1`,
    );
  }
  return value;
}

/** The host part of a normalized endpoint, without brackets. */
function endpointHost(endpoint: string): string {
  const host = new URL(endpoint).hostname;
  return host.startsWith("[") ? host.slice(1, -1) : host;
}

/** Virtual-hosted buckets need a DNS name: an IP literal or localhost can only be addressed path-style. */
function pathStyleByDefault(endpoint: string): boolean {
  const host = endpointHost(endpoint);
  return host === "localhost" || /^[0-9.]+$/.test(host) || host.includes(":");
}

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
      `option sse="${value}" is not supported: use sse=true (S3-managed keys, AES256); customer or KMS keys are not available`,
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
