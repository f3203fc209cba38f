/**
 * The s3fs control plane, through the AWS SDK: HeadBucket (endpoint, credentials,
 * bucket, region) and the volume's "directory" (a `prefix/` marker object or any
 * object under it), created on request. Everything runs within the deadline; messages
 * say what failed and what to do, and never carry a secret.
 */
import {
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import type { Deadline } from "../../deadline.ts";
import { backendError, invalid, messageOf, redact, timeout, VolgateError } from "../../errors.ts";

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

interface PrefixCheck {
  /** Without leading or trailing `/`; "" is the bucket root (nothing to check). */
  readonly prefix: string;
  readonly create: boolean;
  /** Owner recorded on a created directory marker, as s3fs records it (x-amz-meta-uid/gid). */
  readonly uid?: number;
  readonly gid?: number;
}

/** S3_IFDIR | 0755, the mode s3fs stores on a directory it makes itself. */
const DIR_MODE = 0o40755;

interface Failure {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

const NETWORK: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused (is the S3 server running there, on that port?)",
  ECONNRESET: "the connection was reset",
  EPIPE: "the connection was reset",
  ENOTFOUND: "the host name does not resolve (DNS lookup failed)",
  EAI_AGAIN: "the host name does not resolve (DNS lookup failed)",
  EHOSTUNREACH: "no route to host",
  ENETUNREACH: "no route to host",
  ETIMEDOUT: "the connection timed out",
  EPROTO: "the TLS handshake failed (is it an https endpoint?)",
};

const TLS_CODE = /^(CERT_|ERR_TLS_|UNABLE_TO_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)/;

/** The one message for each way an S3 call can fail; `what` says which call, for the rare odd cases. */
function explain(err: unknown, access: S3Access, what: string): VolgateError {
  if (err instanceof VolgateError) return err;
  const e = (err ?? {}) as Failure;
  const where = access.endpoint;
  const status = e.$metadata?.httpStatusCode;
  const code = e.code ?? "";
  const name = e.name ?? "";
  const secrets = [access.secretAccessKey, access.accessKeyId];
  if (NETWORK[code] !== undefined) return backendError(`cannot reach S3 endpoint ${where}: ${NETWORK[code]}`);
  if (TLS_CODE.test(code)) {
    return backendError(
      `cannot reach S3 endpoint ${where}: TLS certificate check failed (${redact(e.message ?? code, secrets)}): volgate always verifies certificates; use a certificate this host trusts`,
    );
  }
  if (name === "TimeoutError" || code === "ECONNABORTED") {
    return timeout(`cannot reach S3 endpoint ${where}: no answer in time`);
  }
  if (status === 301 || name === "PermanentRedirect" || name === "AuthorizationHeaderMalformed") {
    const actual = e.$response?.headers?.["x-amz-bucket-region"];
    return invalid(
      `bucket ${access.bucket} is not in region ${access.region}${actual ? ` (S3 says ${actual})` : ""}: pass -o region=${actual ?? "<its region>"}`,
    );
  }
  if (
    status === 403 ||
    ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"].includes(name)
  ) {
    const said = name && name !== "Unknown" && name !== "Forbidden" ? ` (${name})` : "";
    return backendError(
      `access denied to bucket ${access.bucket}${said}: check the access key in ${access.keySource}, and that it may use this bucket`,
    );
  }
  if (name === "NoSuchBucket" || (what === "HeadBucket" && (status === 404 || name === "NotFound"))) {
    return invalid(`bucket ${access.bucket} does not exist at ${where}: create it or check -o bucket`);
  }
  const detail = redact(
    `${name && name !== "Unknown" ? `${name}: ` : ""}${e.message ?? messageOf(err)}`,
    secrets,
  );
  return backendError(
    `S3 ${what} on bucket ${access.bucket} at ${where} failed${status ? ` (HTTP ${status})` : ""}: ${detail}`,
  );
}

const isNotFound = (err: unknown) => {
  const e = err as Failure;
  return e.$metadata?.httpStatusCode === 404 || e.name === "NotFound" || e.name === "NoSuchKey";
};

/** One S3 session bound to a deadline: every call aborts when it is over. */
class Session {
  private readonly client: S3Client;

  constructor(
    private readonly access: S3Access,
    private readonly deadline: Deadline,
  ) {
    const ms = deadline.left();
    this.client = new S3Client({
      endpoint: access.endpoint,
      region: access.region,
      forcePathStyle: access.pathStyle,
      credentials: { accessKeyId: access.accessKeyId, secretAccessKey: access.secretAccessKey },
      maxAttempts: 2,
      // Plain S3 semantics: many S3-compatible servers reject the newer default checksum headers.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      requestHandler: { connectionTimeout: ms, requestTimeout: ms },
    });
  }

  async call<T>(what: string, run: (client: S3Client, signal: AbortSignal) => Promise<T>): Promise<T> {
    const over = () =>
      this.deadline.error(`S3 check of ${this.access.endpoint}`, "check that it is reachable");
    if (this.deadline.over) throw over();
    try {
      return await run(this.client, this.deadline.signal);
    } catch (err) {
      throw this.deadline.over ? over() : explain(err, this.access, what);
    }
  }

  /** Like call, but a 404 answer is `undefined` rather than an error. */
  optional<T>(what: string, run: (client: S3Client, signal: AbortSignal) => Promise<T>) {
    return this.call(what, (c, s) =>
      run(c, s).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      }),
    );
  }

  close(): void {
    this.client.destroy();
  }
}

async function headBucket(session: Session, bucket: string): Promise<void> {
  await session.call("HeadBucket", (c, abortSignal) =>
    c.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal }),
  );
}

/** The endpoint answers, the keys are accepted, and the bucket exists in that region. */
export async function checkBucket(access: S3Access, deadline: Deadline): Promise<void> {
  const session = new Session(access, deadline);
  try {
    await headBucket(session, access.bucket);
  } finally {
    session.close();
  }
}

/**
 * HeadBucket, then the volume's directory: present when a `prefix/` marker or any object
 * under `prefix/` exists; created (as an empty `prefix/` marker, which s3fs shows as a
 * directory) when asked. Returns the prefix, the volume's directory inside the bucket mount.
 */
export async function s3Preflight(access: S3Access, dir: PrefixCheck, deadline: Deadline): Promise<string> {
  const session = new Session(access, deadline);
  const { bucket } = access;
  try {
    await headBucket(session, bucket);
    if (dir.prefix === "") return "";
    const listed = await session.call("ListObjectsV2", (c, abortSignal) =>
      c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${dir.prefix}/`, MaxKeys: 1 }), {
        abortSignal,
      }),
    );
    if ((listed.KeyCount ?? listed.Contents?.length ?? 0) > 0) return dir.prefix;
    const file = await session.optional("HeadObject", (c, abortSignal) =>
      c.send(new HeadObjectCommand({ Bucket: bucket, Key: dir.prefix }), { abortSignal }),
    );
    if (file !== undefined) {
      throw invalid(
        `s3://${bucket}/${dir.prefix} is an object (a file), not a directory: pick another prefix`,
      );
    }
    if (!dir.create) {
      throw invalid(
        `directory ${dir.prefix} does not exist in bucket ${bucket} at ${access.endpoint}: create it or pass -o create=true`,
      );
    }
    const now = String(Math.floor(Date.now() / 1000));
    await session.call("PutObject", (c, abortSignal) =>
      c.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${dir.prefix}/`,
          Body: new Uint8Array(0),
          ContentLength: 0,
          ContentType: "application/x-directory",
          Metadata: {
            mode: String(DIR_MODE),
            mtime: now,
            ...(dir.uid !== undefined && { uid: String(dir.uid) }),
            ...(dir.gid !== undefined && { gid: String(dir.gid) }),
          },
        }),
        { abortSignal },
      ),
    );
    return dir.prefix;
  } finally {
    session.close();
  }
}
