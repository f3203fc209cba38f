/**
 * The s3fs control plane, through the AWS SDK: HeadBucket (endpoint, credentials,
 * bucket, region) and the volume's "directory" (a `prefix/` marker object or any
 * object under it), created on request. Everything runs within the deadline; messages
 * say what failed and what to do, and never carry a secret. Clients are reused (clients.ts);
 * each call carries its own deadline as an AbortSignal.
 */
import {
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import type { Deadline } from "../../deadline.ts";
import { invalid } from "../../errors.ts";
import type { S3Access } from "./access.ts";
import { ClientCache, type Lease } from "./clients.ts";
import { explain, isNotFound } from "./failures.ts";

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

/** Clients outlive a call (clients.ts): built on first use of an endpoint and key. */
const clients = new ClientCache(
  (id) =>
    new S3Client({
      endpoint: id.endpoint,
      region: id.region,
      forcePathStyle: id.pathStyle,
      credentials: { accessKeyId: id.accessKeyId, secretAccessKey: id.secretAccessKey },
      maxAttempts: 2,
      // Plain S3 semantics: many S3-compatible servers reject the newer default checksum headers.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    }),
);

/** One S3 session bound to a deadline: every call aborts when it is over (the client is shared). */
class Session {
  private readonly lease: Lease<S3Client>;
  private readonly client: S3Client;

  constructor(
    private readonly access: S3Access,
    private readonly deadline: Deadline,
  ) {
    this.lease = clients.lease(access);
    this.client = this.lease.client;
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
    this.lease.release();
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
