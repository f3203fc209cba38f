/**
 * The pure half of the s3fs backend: options -> typed spec (allow-list, strict
 * bucket/prefix/endpoint/region values, typed tuning), the connection key, and
 * the s3fs argv. Nothing here touches the machine.
 */
import { createHash } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { invalid, VolgateError } from "../errors.ts";
import {
  COMMON_OPTIONS,
  type CommonOptions,
  checkAllowed,
  fuseSessionOptions,
  type Options,
  parseBool,
  parseCommon,
  parseIntRange,
} from "./backend.ts";

/** One allow-listed s3fs tuning option: how its value is checked and how s3fs spells it. */
type TuningRule =
  | { readonly kind: "int"; readonly min: number; readonly max: number }
  | { readonly kind: "flag" }
  | { readonly kind: "enum"; readonly values: readonly string[] };

const int = (min: number, max: number): TuningRule => ({ kind: "int", min, max });
const FLAG: TuningRule = { kind: "flag" };

/** Tuning options passed to s3fs under their own names, with typed, comma-free values. */
const TUNING_RULES: Readonly<Record<string, TuningRule>> = {
  multipart_size: int(5, 5120),
  multipart_threshold: int(5, 5120),
  parallel_count: int(1, 100),
  multireq_max: int(1, 100),
  max_stat_cache_size: int(0, 10_000_000),
  stat_cache_expire: int(0, 31_536_000),
  stat_cache_interval_expire: int(0, 31_536_000),
  list_object_max_keys: int(1000, 100_000),
  connect_timeout: int(1, 300),
  readwrite_timeout: int(1, 3600),
  retries: int(1, 20),
  ensure_diskfree: int(0, 10_000_000),
  enable_noobj_cache: FLAG,
  nomultipart: FLAG,
  norenameapi: FLAG,
  nocopyapi: FLAG,
  nomixupload: FLAG,
  listobjectsv2: FLAG,
  complement_stat: FLAG,
  notsup_compat_dir: FLAG,
  enable_content_md5: FLAG,
  requester_pays: FLAG,
  storage_class: {
    kind: "enum",
    values: [
      "standard",
      "standard_ia",
      "onezone_ia",
      "reduced_redundancy",
      "intelligent_tiering",
      "glacier",
      "deep_archive",
    ],
  },
  default_acl: {
    kind: "enum",
    values: [
      "private",
      "public-read",
      "public-read-write",
      "authenticated-read",
      "bucket-owner-read",
      "bucket-owner-full-control",
    ],
  },
};

/** Tuning as s3fs options: `name=value`, or `true` for a bare flag. Keys sorted, so keys compare equal. */
type S3fsTuning = Readonly<Record<string, string | number | true>>;

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
  ...Object.keys(TUNING_RULES),
];

export const S3FS_SECRET_OPTIONS: readonly string[] = ["access_key_id", "secret_access_key"];

/** s3fs options people try that would hand a volume this host's files, trust or secrets: refused by name. */
const FILES = "it makes s3fs read or write files on this host";
const LIBS = "it makes s3fs load a library on this host";
const TLS = "it weakens TLS certificate checks (volgate always verifies the endpoint's certificate)";
const LOGS = "it makes s3fs log request details that can carry credentials";
const CREDS = "volgate passes credentials itself: use -o credentials=PROFILE";
const OURS = "volgate sets it itself: use endpoint=, region= and path_style=";
const ALWAYS = "volgate always mounts nosuid,nodev";
const REFUSED = new Map<string, string>(
  Object.entries({
    passwd_file: FILES,
    use_cache: FILES,
    del_cache: FILES,
    check_cache_dir_exist: FILES,
    tmpdir: FILES,
    ahbe_conf: FILES,
    mime: FILES,
    logfile: FILES,
    load_sse_c: FILES,
    use_sse: "it can name a key file on this host: use sse=true for S3-managed keys",
    set_check_cache_sigusr1: FILES,
    ssl_client_cert: FILES,
    credlib: LIBS,
    credlib_opts: LIBS,
    no_check_certificate: TLS,
    ssl_verify_hostname: TLS,
    cipher_suites: TLS,
    curldbg: LOGS,
    dbglevel: LOGS,
    debug: LOGS,
    profile: CREDS,
    iam_role: CREDS,
    ecs: CREDS,
    imdsv1only: CREDS,
    ibm_iam_auth: CREDS,
    ibm_iam_endpoint: CREDS,
    use_session_token: CREDS,
    public_bucket: CREDS,
    url: OURS,
    host: OURS,
    servicepath: OURS,
    use_path_request_style: OURS,
    suid: ALWAYS,
    dev: ALWAYS,
  }),
);

const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const ENDPOINT_RE = /^(https?):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?\/?$/i;
const MAX_PREFIX = 1000;
const HOST_LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const HOSTNAME_RE = new RegExp(`^${HOST_LABEL}(?:\\.${HOST_LABEL})*$`);

/** A host name, IPv4 address, or IPv6 address in brackets; returns it lower case, without brackets. */
function parseEndpointHost(raw: string): string | undefined {
  if (raw.startsWith("[")) {
    const bare = raw.slice(1, -1);
    return isIPv6(bare) ? bare.toLowerCase() : undefined;
  }
  if (/^[0-9.]+$/.test(raw)) return isIPv4(raw) ? raw : undefined;
  return raw.length <= 253 && HOSTNAME_RE.test(raw) ? raw.toLowerCase() : undefined;
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
  const shown = host.includes(":") ? `[${host}]` : host;
  const defaultPort = scheme === "https" ? 443 : 80;
  return `${scheme}://${shown}${port === undefined || port === defaultPort ? "" : `:${port}`}`;
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

function parseTuning(opts: Options): S3fsTuning {
  const out: Record<string, string | number | true> = {};
  for (const name of Object.keys(TUNING_RULES).sort()) {
    const rule = TUNING_RULES[name];
    const value = opts[name];
    if (rule === undefined || value === undefined) continue;
    if (rule.kind === "int") out[name] = parseIntRange(name, value, rule.min, rule.max);
    else if (rule.kind === "flag") {
      if (parseBool(name, value, false)) out[name] = true;
    } else {
      const v = value.toLowerCase();
      if (!rule.values.includes(v)) {
        throw invalid(`option ${name}="${value}" must be one of ${rule.values.join(", ")}`);
      }
      out[name] = v;
    }
  }
  if (
    out.nomultipart === true &&
    (out.multipart_size !== undefined || out.multipart_threshold !== undefined)
  ) {
    throw invalid("nomultipart cannot be combined with multipart_size or multipart_threshold");
  }
  return out;
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
  for (const key of Object.keys(opts)) {
    const why = key.startsWith("-") ? "command-line flags cannot be passed" : REFUSED.get(key.toLowerCase());
    if (why !== undefined) {
      throw invalid(`option "${key}" is refused: ${why}; allowed: ${[...S3FS_OPTIONS].sort().join(", ")}`);
    }
  }
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
    uid: c.uid ?? null,
    gid: c.gid ?? null,
    umask: c.umask ?? null,
    allowOther: c.allowOther,
    tuning: spec.tuning,
  });
}

export function describeS3fs(spec: S3fsSpec): string {
  return `s3://${spec.bucket}/${spec.prefix} @ ${spec.endpoint}`;
}

interface S3fsArgvInput {
  readonly spec: S3fsSpec;
  readonly target: string;
  /** The passwd file volgate wrote for this connection (ACCESS:SECRET, 0600). */
  readonly passwdFile: string;
}

/** A file path inside a -o value: no commas (FUSE's option separator), no whitespace or quotes. */
function optionPath(path: string): string {
  if (!/^\/[^,\s"'\\]*$/.test(path)) {
    throw new VolgateError(
      "internal",
      `path ${path} cannot be passed to s3fs: it has a comma, space or quote`,
    );
  }
  return path;
}

/**
 * `s3fs -f BUCKET TARGET -o url=...,endpoint=REGION,...`: the bucket root, in the foreground
 * (the supervisor sees it exit and can kill it). Secrets never appear here, only our passwd file.
 */
export function buildS3fsArgv(input: S3fsArgvInput): string[] {
  const { spec } = input;
  const o = [`url=${spec.endpoint}`, `endpoint=${spec.region}`];
  if (spec.pathStyle) o.push("use_path_request_style");
  o.push(`passwd_file=${optionPath(input.passwdFile)}`);
  o.push(...fuseSessionOptions(spec.common));
  if (spec.common.umask !== undefined) o.push(`mp_umask=${spec.common.umask}`);
  if (spec.sse) o.push("use_sse");
  for (const [name, value] of Object.entries(spec.tuning)) o.push(value === true ? name : `${name}=${value}`);
  return ["-f", spec.bucket, input.target, "-o", o.join(",")];
}
